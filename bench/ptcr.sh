#!/usr/bin/env bash
# The ptcr workload against isula, Debian's podman and Debian's docker.io on this
# machine (bench/ptcr.mjs says what is measured). Installs the peers from Debian
# when missing: they are benchmark-only, never needed by the engine or the tests.
#
#   bench/ptcr.sh [--engines isula,podman,docker] [--serial 10] [--parallel 100]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE=${ISULA_PREFIX:-/usr/local/lib/isula}/node/bin/node
[ -x "$NODE" ] || "$ROOT/scripts/setup.sh" test
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v dockerd >/dev/null || missing+=(docker.io)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing the peers to compare with: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # docker.io's package starts its own daemon where systemd runs; the bench starts its own.
fi
"$ROOT/scripts/make-test-images.sh" >/dev/null
exec "$NODE" "$ROOT/bench/ptcr.mjs" "$@"
