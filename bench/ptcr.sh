#!/usr/bin/env bash
# The ptcr workload against isula, Debian's podman and Debian's docker.io on this
# machine (bench/ptcr.mjs says what is measured).
#
#   bench/ptcr.sh [--engines isula,podman,docker] [--serial 10] [--parallel 100] [--sequential]
#
# The engines' calls alternate (all daemons up at once); --sequential runs one engine after
# the other, as before 2026-12-03 (--interleave, the default now, is still accepted).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
exec "$NODE" "$ROOT/bench/ptcr.mjs" "$@"
