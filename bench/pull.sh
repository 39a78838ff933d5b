#!/usr/bin/env bash
# Cold `pull` of a ~48 MB, 3-layer image from a registry on this machine by
# isula, Debian's podman and Debian's docker.io (bench/pull.mjs says what is
# measured). Starts the bench registry (bench/registry.sh) and pushes the image
# (bench/make-pull-image.sh) if needed; leaves the registry running
# (bench/registry.sh stop).
#
#   bench/pull.sh [--engines isula,podman,docker] [--runs 5]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
"$ROOT/bench/registry.sh" start >&2
REF=$("$ROOT/bench/make-pull-image.sh")
exec "$NODE" "$ROOT/bench/pull.mjs" --ref "$REF" "$@"
