#!/usr/bin/env bash
# Memory soak of isulad on this machine: 2000 run/rm -f cycles, isulad's RSS sampled every
# 100; PASS when the last RSS is within 10 % of the one after 100 cycles (bench/soak.mjs).
#
#   bench/soak.sh [--cycles 2000] [--every 100] [--via api|cli] [--tolerance 10]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
exec "$NODE" "$ROOT/bench/soak.mjs" "$@"
