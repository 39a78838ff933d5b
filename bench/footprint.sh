#!/usr/bin/env bash
# Memory footprint of isula, Debian's podman and Debian's docker.io on this machine: the
# daemon's RSS and PSS idle, with 10 and with 100 running containers, and the PSS of each
# container's monitor process (bench/footprint.mjs says what is measured).
#
#   bench/footprint.sh [--engines isula,podman,docker] [--few 10] [--many 100] [--concurrency 10]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
exec "$NODE" "$ROOT/bench/footprint.mjs" "$@"
