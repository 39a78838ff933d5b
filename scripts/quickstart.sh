#!/usr/bin/env bash
# Sets isula up on this machine (Debian 12, root), starts isulad in the
# background if it is not running, and runs the engine's main job: load a
# busybox image built offline, run a container on it, list what is there.
# Idempotent: a second run reuses the set-up and the running daemon.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/setup.sh" engine
export PATH="/usr/local/bin:$PATH"

STATE=/run/isulad
if isula version >/dev/null 2>&1; then
  echo "==> isulad is already running"
else
  echo "==> starting isulad (log: $STATE/isulad.log)"
  mkdir -p "$STATE"
  setsid isulad </dev/null >>"$STATE/isulad.stderr" 2>&1 &
  for _ in $(seq 1 100); do
    isula version >/dev/null 2>&1 && break
    sleep 0.1
  done
  isula version >/dev/null 2>&1 || { echo "isulad did not start; see $STATE/isulad.stderr" >&2; tail -5 "$STATE/isulad.stderr" >&2; exit 1; }
fi

IMAGES=$("$ROOT/scripts/make-test-images.sh")
echo "==> isula load -i $IMAGES/busybox.docker.tar  (busybox built offline from Debian's busybox-static)"
isula load -i "$IMAGES/busybox.docker.tar"
echo
echo "==> isula images"
isula images
echo
echo "==> isula run --rm busybox sh -c 'echo hello from \$(hostname), pid \$\$'  (runc, supervised by conmon)"
isula run --rm busybox sh -c 'echo hello from $(hostname), pid $$'
echo
echo "==> isula run -d --name quickstart-web --restart unless-stopped -m 64m busybox sleep 3600"
isula rm -f quickstart-web >/dev/null 2>&1 || true
isula run -d --name quickstart-web --restart unless-stopped -m 64m busybox sleep 3600
isula ps
echo
echo "==> isula info"
isula info
echo
echo "isulad is running: try 'isula ps -a', 'isula inspect quickstart-web', 'isula run --rm -it busybox sh', 'isula events --since 10m'."
echo "Stop it with: kill \$(cat $STATE/isulad.pid)"
