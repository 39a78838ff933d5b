#!/usr/bin/env bash
# Installs what the tests need (idempotent) and runs the whole suite:
# every package's tests and the end-to-end tests in test/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/setup.sh" test
export PATH="${ISULA_PREFIX:-/usr/local/lib/isula}/node/bin:$PATH"
cd "$ROOT"
echo "==> running the tests with $(node --version)"
npm test
