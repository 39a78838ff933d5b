#!/usr/bin/env bash
# The registry the benches pull from: Debian's docker-registry (distribution
# 2.8.2, PLATFORM.md §7) on 127.0.0.1:5000, plain http, no auth, storage under
# /var/tmp/isula-bench-registry (kept across stop/start, so a pushed image
# stays). Push with
#   skopeo copy --dest-tls-verify=false oci:DIR:tag docker://127.0.0.1:5000/name:tag
#
#   bench/registry.sh start|stop|status
#
# start: idempotent; waits (≤ 10 s) until /v2/ answers. stop: SIGTERM, then
# SIGKILL after 10 s. status: exit 0 when running, 3 when not (LSB).
# Only the pid in the pid file is ever signalled.
set -euo pipefail
DIR=${ISULA_BENCH_REGISTRY_DIR:-/var/tmp/isula-bench-registry}
ADDR=127.0.0.1:5000
BIN=${ISULA_REGISTRY_BIN:-/usr/bin/docker-registry}
PIDFILE=$DIR/registry.pid
LOG=$DIR/registry.log
CONFIG=$DIR/config.yml

die() { printf 'bench/registry.sh: %s\n' "$*" >&2; exit 1; }
pid() { cat "$PIDFILE" 2>/dev/null || true; }
running() {
  local p
  p=$(pid)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "docker-registry serve $CONFIG"
}
answering() { curl -fsS -o /dev/null --max-time 2 "http://$ADDR/v2/" 2>/dev/null; }

start() {
  if running; then echo "bench registry: running (pid $(pid)) on $ADDR, storage $DIR/data"; return 0; fi
  answering && die "something else already answers on http://$ADDR/v2/; stop it first"
  [ -x "$BIN" ] || die "$BIN not found: apt-get install docker-registry (scripts/setup.sh test does)"
  mkdir -p "$DIR/data"
  # JSON is YAML: docker-registry reads it as is.
  cat >"$CONFIG" <<EOF
{
  "version": 0.1,
  "log": { "level": "warn", "formatter": "text", "accesslog": { "disabled": true } },
  "storage": {
    "filesystem": { "rootdirectory": "$DIR/data" },
    "delete": { "enabled": true },
    "maintenance": { "uploadpurging": { "enabled": false } }
  },
  "http": { "addr": "$ADDR", "secret": "isula-bench-registry", "headers": { "X-Content-Type-Options": ["nosniff"] } }
}
EOF
  # Its own session: it outlives this script and the terminal that ran it.
  setsid "$BIN" serve "$CONFIG" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    if answering; then echo "bench registry: started (pid $(pid)) on $ADDR, storage $DIR/data"; return 0; fi
    running || break
    sleep 0.1
  done
  tail -n 20 "$LOG" >&2 || true
  stop >/dev/null 2>&1 || true
  die "docker-registry did not answer on http://$ADDR/v2/ (log: $LOG)"
}

stop() {
  if ! running; then rm -f "$PIDFILE"; echo "bench registry: not running"; return 0; fi
  local p
  p=$(pid)
  kill -TERM "$p"
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
  rm -f "$PIDFILE"
  echo "bench registry: stopped (storage kept in $DIR/data)"
}

status() {
  if running; then
    local repos
    repos=$(curl -fsS --max-time 2 "http://$ADDR/v2/_catalog" 2>/dev/null || echo '?')
    echo "bench registry: running (pid $(pid)) on $ADDR, storage $DIR/data, catalog $repos"
    return 0
  fi
  echo "bench registry: stopped"
  return 3
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: bench/registry.sh start|stop|status" >&2; exit 2 ;;
esac
