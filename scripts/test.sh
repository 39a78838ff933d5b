#!/usr/bin/env bash
# Installs what the tests need (idempotent) and runs the whole suite:
# every package's tests and the end-to-end tests in test/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/setup.sh" test
export PATH="${ISULA_PREFIX:-/usr/local/lib/isula}/node/bin:$PATH"
cd "$ROOT"
# The fuzzers replay one fixed seed here, so a green suite stays green; bugs
# are hunted by hand with FUZZ_SEED=random and a large FUZZ_RUNS (each
# fuzz test run on its own picks a random seed; see test/README.md).
if [ "${FUZZ_SEED:-}" = random ]; then unset FUZZ_SEED; else export FUZZ_SEED="${FUZZ_SEED:-20261202}"; fi
# The crash campaign's choice of kill points too (FAULT_SEED=random for a new one each run).
if [ "${FAULT_SEED:-}" = random ]; then unset FAULT_SEED; else export FAULT_SEED="${FAULT_SEED:-197929}"; fi
echo "==> running the tests with $(node --version)${FUZZ_SEED:+, fuzz seed $FUZZ_SEED}${FAULT_SEED:+, crash campaign seed $FAULT_SEED}"
npm test
