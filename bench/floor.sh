#!/usr/bin/env bash
# The "runc floor": the ptcr operations done directly with runc on prepared
# bundles, no engine (bench/floor.mjs says what is measured).
#
#   bench/floor.sh [--serial 10] [--parallel 100]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
exec "$NODE" "$ROOT/bench/floor.mjs" "$@"
