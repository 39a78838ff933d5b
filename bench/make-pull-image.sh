#!/usr/bin/env bash
# The image the pull bench pulls, made offline: busybox's layer from the test
# images (scripts/make-test-images.sh) plus two layers of incompressible random
# data (/bench/random-25m, 25 MiB, and /bench/random-20m, 20 MiB): ~48 MB
# compressed, 3 layers, in an OCI layout made with skopeo and umoci, pushed
# with skopeo to the bench registry (bench/registry.sh, started if needed) as
#   127.0.0.1:5000/bench/pull:3layer
#
#   bench/make-pull-image.sh      prints the reference on stdout when done
#
# Cached: the layout is kept in /var/tmp/isula-bench-registry/pull-image (the
# random data, hence the digests, are made once); the push is skipped when the
# registry already serves the layout's manifest digest. As root (the test
# images need it).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${ISULA_BENCH_REGISTRY_DIR:-/var/tmp/isula-bench-registry}
LAYOUT=$DIR/pull-image
REF=127.0.0.1:5000/bench/pull:3layer
EPOCH=1700000000
CREATED=2023-11-14T22:13:20Z

die() { printf 'make-pull-image: %s\n' "$*" >&2; exit 1; }
for c in umoci skopeo jq tar sha256sum curl; do command -v "$c" >/dev/null || die "$c not found (scripts/setup.sh test installs it)"; done

IMAGES=$("$ROOT/scripts/make-test-images.sh")
"$ROOT/bench/registry.sh" start >&2

layout_digest() { jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "pull") | .digest' "$LAYOUT/index.json"; }

if [ ! -f "$LAYOUT/index.json" ] || [ -z "$(layout_digest 2>/dev/null)" ]; then
  echo "==> making the 3-layer pull image (busybox + 25 MiB + 20 MiB of random data)" >&2
  mkdir -p "$DIR"
  W=$(mktemp -d "$DIR/.pull-image.XXXXXX")
  trap 'rm -rf "$W"' EXIT
  umask 022
  # A fresh layout holding only busybox (skopeo copies just that image).
  skopeo --insecure-policy copy --quiet "oci:$IMAGES/oci:busybox" "oci:$W/oci:pull"
  for spec in 25:2 20:3; do
    mib=${spec%%:*} n=${spec##*:}
    mkdir -p "$W/l$n/bench"
    head -c $((mib * 1024 * 1024)) /dev/urandom >"$W/l$n/bench/random-${mib}m"
    chmod 0644 "$W/l$n/bench/random-${mib}m"
    find "$W/l$n" -exec touch -h -d "@$EPOCH" {} +
    tar --format=ustar --numeric-owner --owner=0 --group=0 --no-recursion -C "$W/l$n" -cf "$W/l$n.tar" bench "bench/random-${mib}m"
    umoci --log error raw add-layer --image "$W/oci:pull" --history.created "$CREATED" \
      --history.created_by "make-pull-image: /bench/random-${mib}m" "$W/l$n.tar"
  done
  umoci --log error config --image "$W/oci:pull" --no-history --created "$CREATED"
  umoci --log error gc --layout "$W/oci"
  rm -rf "$LAYOUT"
  mv -T "$W/oci" "$LAYOUT"
fi

want=$(layout_digest)
have=$(curl -fsS --max-time 10 -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o /dev/null -w '%header{docker-content-digest}' \
  "http://127.0.0.1:5000/v2/bench/pull/manifests/3layer" 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  echo "==> pushing $REF" >&2
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$LAYOUT:pull" "docker://$REF"
fi
size=$(jq -r '[.layers[].size] | add' "$LAYOUT/blobs/sha256/${want#sha256:}")
echo "==> $REF $want, 3 layers, $((size / 1000000)) MB compressed" >&2
echo "$REF"
