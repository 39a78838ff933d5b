#!/usr/bin/env bash
# run -d / rm -f with default networking: isula (CNI), Debian's podman and docker.io
# (bench/network.mjs says what is measured).
#
#   bench/network.sh [--engines isula,podman,docker] [--runs 10]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
exec "$NODE" "$ROOT/bench/network.mjs" "$@"
