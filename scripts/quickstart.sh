#!/usr/bin/env bash
# Sets isula up on this machine (Debian 12, root), starts isulad in the
# background if it is not running, and runs the engine's main job: load a
# busybox image built offline, run a container on it, serve a page from one
# on a published port of the default CNI bridge, list what is there.
# QUICKSTART_PORT picks the host port (default 18080).
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
PORT=${QUICKSTART_PORT:-18080}
echo "==> isula run -d --name quickstart-web --restart unless-stopped -m 64m -p $PORT:80 busybox httpd ...  (on the default CNI bridge)"
isula rm -f quickstart-web >/dev/null 2>&1 || true
isula run -d --name quickstart-web --restart unless-stopped -m 64m -p "$PORT:80" busybox \
  sh -c 'mkdir -p /www && echo "hello from $(hostname), served by busybox httpd in an isula container" > /www/index.html && exec httpd -f -p 80 -h /www'
isula ps
echo
echo "==> busybox wget -qO- http://127.0.0.1:$PORT/  (the published port, from the host)"
for _ in $(seq 1 50); do
  busybox wget -qO- "http://127.0.0.1:$PORT/" 2>/dev/null && break
  sleep 0.1
done
echo "    container address: $(isula inspect -f '{{.NetworkSettings.IPAddress}}' quickstart-web)"
echo
echo "==> isula info"
isula info
echo
echo "isulad is running: try 'isula ps -a', 'isula inspect quickstart-web', 'isula port quickstart-web', 'isula network ls', 'isula run --rm -it busybox sh', 'isula events --since 10m'."
echo "Stop it with: kill \$(cat $STATE/isulad.pid)"
