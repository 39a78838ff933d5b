# Sourced by the bench scripts: Node 24 and the build (scripts/setup.sh test), the peers to
# compare with (Debian's podman and docker.io: benchmark-only, never needed by the engine or
# the tests) and the offline test images. Sets NODE and ROOT.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE=${ISULA_PREFIX:-/usr/local/lib/isula}/node/bin/node
[ -x "$NODE" ] || "$ROOT/scripts/setup.sh" test
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v dockerd >/dev/null || missing+=(docker.io)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing the peers to compare with: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # docker.io's package starts its own daemon where systemd runs; the benches start their own.
fi
"$ROOT/scripts/make-test-images.sh" >/dev/null
