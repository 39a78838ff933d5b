#!/usr/bin/env bash
# Pods through the CRI: isulad with @isula/cri against Debian's containerd 1.6 and its CRI
# plugin, N pods (pause + one busybox container) at once for N = 1, 10, 50: wall times and
# memory (daemon + monitors). bench/cri.mjs says what is measured.
#
#   bench/cri.sh [--engines isula,containerd] [--pods 1,10,50]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v catatonit >/dev/null || missing+=(catatonit)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
exec "$NODE" "$ROOT/bench/cri.mjs" "$@"
