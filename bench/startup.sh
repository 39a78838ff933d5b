#!/usr/bin/env bash
# Client start-up of isula, Debian's podman and Debian's docker.io on this machine, timed by
# hyperfine: version, ps -a, inspect, and node -e 0 (bench/startup.mjs says what is measured).
#
#   bench/startup.sh [--engines isula,podman,docker] [--warmup 3] [--runs 20] [--containers 10]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
command -v hyperfine >/dev/null || { echo "bench/startup.sh: needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
exec "$NODE" "$ROOT/bench/startup.mjs" "$@"
