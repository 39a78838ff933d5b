#!/usr/bin/env bash
# Times `isula load` against `podman load` (Debian's podman) on the same
# archives, on this machine, with hyperfine:
#   - busybox.docker.tar (scripts/make-test-images.sh, ~2 MB, one layer)
#   - big.docker.tar: ~100 MB in 4 layers of incompressible data, made here
#     once and cached next to the test images.
# Each run starts from an empty store (the image is removed in --prepare).
# isulad and podman get their own temporary roots; nothing touches the
# host's /var/lib/isulad or /var/lib/containers.
#
#   bench/load.sh [RESULTS_DIR]     (default bench/results)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=${1:-$ROOT/bench/results}
NODE=${ISULA_PREFIX:-/usr/local/lib/isula}/node/bin/node
RUNS=${RUNS:-10}
mkdir -p "$RESULTS"
for tool in hyperfine podman; do command -v $tool >/dev/null || { echo "bench: $tool is not installed (apt-get install $tool)" >&2; exit 1; }; done

IMAGES=$("$ROOT/scripts/make-test-images.sh")
BIG="$IMAGES/../bench-big.docker.tar"
if [ ! -s "$BIG" ]; then
  echo "==> making a ~100 MB 4-layer docker-archive" >&2
  W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
  diff_ids=(); layers=()
  for i in 1 2 3 4; do
    mkdir -p "$W/l$i/data"
    head -c $((25 * 1024 * 1024)) /dev/urandom > "$W/l$i/data/blob$i"
    for j in $(seq 1 200); do echo "file $i $j" > "$W/l$i/data/small-$i-$j"; done
    tar -C "$W/l$i" --owner=0 --group=0 -cf "$W/layer$i.tar" data
    diff_ids+=("\"sha256:$(sha256sum "$W/layer$i.tar" | cut -d' ' -f1)\""); layers+=("\"layer$i.tar\"")
  done
  printf '{"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$(IFS=,; echo "${diff_ids[*]}")" > "$W/config.json"
  printf '[{"Config":"config.json","RepoTags":["bench/big:latest"],"Layers":[%s]}]' "$(IFS=,; echo "${layers[*]}")" > "$W/manifest.json"
  tar -C "$W" -cf "$BIG.tmp" manifest.json config.json layer1.tar layer2.tar layer3.tar layer4.tar
  mv "$BIG.tmp" "$BIG"
fi

T=$(mktemp -d /tmp/isula-bench.XXXXXX)
cleanup() {
  [ -f "$T/state/isulad.pid" ] && kill "$(cat "$T/state/isulad.pid")" 2>/dev/null || true
  podman --root "$T/podman" --runroot "$T/podman-run" rmi -a -f >/dev/null 2>&1 || true
  umount -R "$T/podman/overlay" 2>/dev/null || true
  sleep 0.5; rm -rf "$T"
}
trap cleanup EXIT
echo '{"plugins":["@isula/image-oci"]}' > "$T/daemon.json"
"$NODE" "$ROOT/packages/core/dist/src/bin/isulad.js" --config-file "$T/daemon.json" --state "$T/state" --graph "$T/graph" >/dev/null 2>&1 &
ISULA="$NODE $ROOT/packages/cli/dist/isula.cjs -H unix://$T/state/isulad.sock"
for _ in $(seq 1 100); do $ISULA version >/dev/null 2>&1 && break; sleep 0.1; done
PODMAN="podman --root $T/podman --runroot $T/podman-run --storage-driver overlay --cgroup-manager cgroupfs --events-backend none"

for name in busybox big; do
  if [ $name = busybox ]; then file="$IMAGES/busybox.docker.tar"; ref=busybox:latest; else file=$BIG; ref=bench/big:latest; fi
  echo "==> load $name ($(du -h "$file" | cut -f1))" >&2
  hyperfine -w 1 -r "$RUNS" --export-json "$RESULTS/load-$name.json" \
    --prepare "$ISULA rmi -f $ref >/dev/null 2>&1 || true" -n "isula load ($name)" "$ISULA load -i $file" \
    --prepare "$PODMAN rmi -f $ref >/dev/null 2>&1 || true" -n "podman load ($name)" "$PODMAN load -q -i $file" \
    2>&1 | grep -vE '^\s*$' | grep -vi 'warning: command' || true
done
echo "results: $RESULTS/load-*.json" >&2
