#!/usr/bin/env bash
# exec and logs latency of isula, Debian's podman and Debian's docker.io on this
# machine (bench/streams.mjs says what is measured).
#
#   bench/streams.sh [--engines isula,podman,docker] [--runs 20]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
exec "$NODE" "$ROOT/bench/streams.mjs" "$@"
