#!/usr/bin/env bash
# Builds the container images the tests use, fully offline, from Debian's
# busybox-static (/bin/busybox) with umoci (0.4.7) and skopeo (1.9.3). As root.
#
#   scripts/make-test-images.sh [OUTDIR]      (default /var/cache/isula/test-images)
#
# Prints OUTDIR on stdout (and nothing else) when done. Takes ~2 s; ~0.05 s cached.
# Needs no network (verified under `unshare -n`).
#
# Cached: the key is the sha256 of this script, the busybox binary and version,
# the umoci/skopeo/tar versions and the host arch. When OUTDIR/.key matches,
# the script prints OUTDIR and exits at once. Otherwise it builds in a temp dir
# next to OUTDIR (same file system) and renames it into place at the end: a
# half-built OUTDIR is never visible. A stale OUTDIR is first renamed aside, so
# for a moment OUTDIR may be absent (never partial). Concurrent runs serialise
# on a flock next to OUTDIR (the file .<name>.lock stays there).
#
# Layout of OUTDIR:
#   oci/                 OCI image layout; tags busybox, layered, shared
#   busybox.docker.tar   skopeo docker-archive, busybox:latest
#   busybox.oci.tar      skopeo oci-archive; index ref.name annotation "busybox:latest"
#   layered.docker.tar   docker-archive, layered:latest
#   shared.docker.tar    docker-archive, shared:latest
#   busybox.2tags.docker.tar  docker-archive, ONE image under two tags,
#                        busybox:latest and busybox:extra (skopeo --additional-tag).
#   (no multi-image docker-archive: skopeo 1.9 writes one image per archive and
#   refuses an existing one: "docker-archive doesn't support modifying existing
#   images"; only the c/image Go API / podman save -m can write several.)
#   NB: skopeo writes RepoTags fully qualified: "docker.io/library/busybox:latest".
#   images.json          {"busybox": {"ref", "manifestDigest", "configDigest",
#                         "diffIds": [...], "layers": [...], "archives": {...}}, ...}
#                        configDigest is the docker image id; layers are the gzip
#                        blobs in oci/, diffIds the uncompressed layers. The
#                        docker-archives hold <diffid-hex>.tar, <config-hex>.json,
#                        <v1id>/{layer.tar -> ../<diffid-hex>.tar,VERSION,json},
#                        manifest.json and repositories.
#   .key                 the cache key
#
# Images (host arch, linux; config.created and every history entry are
# 2023-11-14T22:13:20Z = SOURCE_DATE_EPOCH):
#   busybox  1 layer: /bin/busybox + applet symlinks in /bin, /etc/passwd (root,
#            nobody), /etc/group, /tmp (1777), /root (0700).
#            Cmd ["sh"], Env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
#   layered  busybox's layer (same digest), then
#            L2 (umoci repack): /data/a.txt "a", /data/keep.txt "keep",
#               /data/dir/old.txt "old", /data/suid (4755, "suid"),
#               /data/hard = hard link of keep.txt, /data/link -> keep.txt.
#               NB: umoci writes tar entries in sorted path order, so in the tar
#               data/hard is the regular file and data/keep.txt the hard link
#               entry (linkname data/hard). Same inode either way.
#            L3 (GNU tar + umoci raw add-layer): data/.wh.a.txt (deletes a.txt),
#               data/dir/, data/dir/.wh..wh..opq (opaque), data/dir/new.txt "new".
#               Hand-made because umoci repack never emits opaque whiteouts
#               (deleting and re-creating a dir gives per-file .wh.old.txt) and
#               refuses rootfs files named .wh.*; umoci insert --opaque can make
#               an opaque layer but not one that also whites out a.txt.
#            Cmd ["sh"]. Result: /data/{keep.txt,hard,link,suid,dir/new.txt}.
#   shared   busybox's layer (same digest) + /hello.txt "hello from shared\n".
#            Cmd ["cat","/hello.txt"]
#
# Determinism: digests are stable. Built into two fresh dirs: identical
# images.json, oci/ and docker-archives byte for byte. The one exception is the
# busybox.oci.tar FILE: skopeo tars its temp dir with the wall-clock mtimes and
# uname root, so its sha256 changes per run; its content (index.json, blobs,
# hence every digest) is identical. We keep skopeo's bytes as they are.
# What makes it so: all mtimes set to SOURCE_DATE_EPOCH (touch -h), umask 022,
# explicit modes, --history.created / --created fixed, config changes with
# --no-history. umoci's tar writer drops uname/gname and atime/ctime and sorts
# entries; its gzip (pgzip) writes a fixed header; skopeo's docker-archives
# use mtime 0 and 0/0. No workaround (recompression etc.) was needed.
# Layers written by umoci repack start with a "." entry (the root dir, 0755).
set -euo pipefail

EPOCH=1700000000
CREATED=2023-11-14T22:13:20Z
export SOURCE_DATE_EPOCH=$EPOCH
OUTDIR=${1:-/var/cache/isula/test-images}
SELF=$(readlink -f "${BASH_SOURCE[0]}")
BUSYBOX=/bin/busybox
ENV_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
APPLETS=(sh ls cat echo sleep true false env id mkdir rm touch wc head tail grep sed
  ps top hostname nc wget ip mount df uname date stat ln chmod find xargs sort tee
  printf test '[' kill pidof tr cut seq dd md5sum sha256sum whoami vi tar gzip)

die() { printf 'make-test-images: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (file ownership 0:0 and the setuid bit must be kept in the layers)"
for c in umoci skopeo jq tar sha256sum flock; do
  command -v "$c" >/dev/null || die "$c not found (scripts/setup.sh installs it)"
done
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found: install Debian's busybox-static"
case "$(uname -m)" in
  x86_64) ARCH=amd64 ;;
  aarch64) ARCH=arm64 ;;
  *) die "unsupported host arch $(uname -m)" ;;
esac
[ "$OUTDIR" != / ] || die "OUTDIR must not be /"
OUTDIR=$(realpath -m "$OUTDIR")

KEY=$({
  echo "make-test-images v1 $ARCH"
  sha256sum <"$SELF"
  sha256sum <"$BUSYBOX"
  "$BUSYBOX" 2>&1 | head -n1
  umoci --version; skopeo --version; tar --version | head -n1
} | sha256sum | cut -d' ' -f1)

cached() { [ -f "$OUTDIR/.key" ] && [ "$(cat "$OUTDIR/.key")" = "$KEY" ]; }
if cached; then echo "$OUTDIR"; exit 0; fi

PARENT=$(dirname "$OUTDIR")
NAME=$(basename "$OUTDIR")
mkdir -p "$PARENT"
exec 9>"$PARENT/.$NAME.lock"
flock -w 120 9 || die "timed out waiting for the lock $PARENT/.$NAME.lock"
if cached; then echo "$OUTDIR"; exit 0; fi   # another run built it meanwhile

TMP=$(mktemp -d "$PARENT/.$NAME.tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
OUT=$TMP/out W=$TMP/work
mkdir -p "$OUT" "$W"
export TMPDIR=$W
umask 022
cd "$W"

# Set every mtime under $1 (symlinks included) to the epoch.
stamp() { find "$1" -exec touch -h -d "@$EPOCH" {} +; }
# Quiet umoci: its warnings go to stderr; failures still abort.
um() { umoci --log error "$@"; }
OCI=$OUT/oci

# --- busybox ---------------------------------------------------------------
um init --layout "$OCI"
um new --image "$OCI:empty"
um unpack --image "$OCI:empty" bb
R=bb/rootfs
chmod 0755 "$R"
install -d -m 0755 "$R/bin" "$R/etc"
install -d -m 1777 "$R/tmp"
install -d -m 0700 "$R/root"
install -m 0755 "$BUSYBOX" "$R/bin/busybox"
have=$("$BUSYBOX" --list)
for a in "${APPLETS[@]}"; do
  grep -qxF -- "$a" <<<"$have" || die "busybox has no applet '$a'"
  ln -sfn busybox "$R/bin/$a"
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/home:/bin/false' >"$R/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$R/etc/group"
chmod 0644 "$R/etc/passwd" "$R/etc/group"
stamp "$R"
um repack --image "$OCI:busybox" --history.created "$CREATED" \
  --history.created_by "make-test-images: busybox-static rootfs" bb
um config --image "$OCI:busybox" --no-history --created "$CREATED" \
  --architecture "$ARCH" --os linux --config.cmd sh --config.env "PATH=$ENV_PATH"

# --- layered ---------------------------------------------------------------
um unpack --image "$OCI:busybox" ly
R=ly/rootfs
install -d -m 0755 "$R/data" "$R/data/dir"
echo a >"$R/data/a.txt"
echo keep >"$R/data/keep.txt"
echo old >"$R/data/dir/old.txt"
echo suid >"$R/data/suid"
chmod 0644 "$R/data/a.txt" "$R/data/keep.txt" "$R/data/dir/old.txt"
chmod 4755 "$R/data/suid"
ln "$R/data/keep.txt" "$R/data/hard"
ln -s keep.txt "$R/data/link"
stamp "$R"
# repack's tag is the new image's name; the bundle remembers its base image.
um repack --image "$OCI:layered" --history.created "$CREATED" \
  --history.created_by "make-test-images: /data files, setuid, hard link, symlink" ly

# Third layer by hand (see the header): GNU tar, fixed order, owner and mtime.
S=l3
install -d -m 0755 "$S/data/dir"
: >"$S/data/.wh.a.txt"
: >"$S/data/dir/.wh..wh..opq"
echo new >"$S/data/dir/new.txt"
chmod 0644 "$S/data/.wh.a.txt" "$S/data/dir/.wh..wh..opq" "$S/data/dir/new.txt"
stamp "$S"
tar --format=ustar --numeric-owner --owner=0 --group=0 --mtime="@$EPOCH" --no-recursion \
  -C "$S" -cf l3.tar data/.wh.a.txt data/dir data/dir/.wh..wh..opq data/dir/new.txt
um raw add-layer --image "$OCI:layered" --history.created "$CREATED" \
  --history.created_by "make-test-images: whiteout a.txt, opaque /data/dir, new.txt" l3.tar
um config --image "$OCI:layered" --no-history --created "$CREATED"

# --- shared ----------------------------------------------------------------
um unpack --image "$OCI:busybox" sh
printf 'hello from shared\n' >sh/rootfs/hello.txt
chmod 0644 sh/rootfs/hello.txt
stamp sh/rootfs
um repack --image "$OCI:shared" --history.created "$CREATED" \
  --history.created_by "make-test-images: /hello.txt" sh
um config --image "$OCI:shared" --no-history --created "$CREATED" \
  --config.cmd cat --config.cmd /hello.txt

um rm --image "$OCI:empty"
um gc --layout "$OCI"

# --- checks ----------------------------------------------------------------
blob() { printf '%s/blobs/sha256/%s' "$OCI" "${1#sha256:}"; }
mdigest() { jq -r --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$OCI/index.json"; }
manifest() { cat "$(blob "$(mdigest "$1")")"; }
base=$(manifest busybox | jq -r '.layers[0].digest')
for img in layered shared; do
  [ "$(manifest "$img" | jq -r '.layers[0].digest')" = "$base" ] || die "$img does not share busybox's layer $base"
done
[ "$(manifest busybox | jq '.layers | length')" = 1 ] || die "busybox must have one layer"
[ "$(manifest layered | jq '.layers | length')" = 3 ] || die "layered must have three layers"
[ "$(manifest shared | jq '.layers | length')" = 2 ] || die "shared must have two layers"
l3=$(tar -tzf "$(blob "$(manifest layered | jq -r '.layers[2].digest')")")
for e in data/.wh.a.txt data/dir/.wh..wh..opq data/dir/new.txt; do
  grep -qxF "$e" <<<"$l3" || die "layered's third layer lacks $e"
done
l2=$(tar -tzvf "$(blob "$(manifest layered | jq -r '.layers[1].digest')")")
grep -q '^-rwsr-xr-x 0/0 .* data/suid$' <<<"$l2" || die "layered's second layer lacks setuid data/suid"
grep -q ' data/keep.txt link to data/hard$' <<<"$l2" || die "layered's second layer lacks the hard link"
grep -q ' data/link -> keep.txt$' <<<"$l2" || die "layered's second layer lacks the symlink"

# --- archives (skopeo, local transports only) -------------------------------
sk() { skopeo --insecure-policy --tmpdir "$W" copy --quiet "$@"; }
sk "oci:$OCI:busybox" "docker-archive:$OUT/busybox.docker.tar:busybox:latest"
sk "oci:$OCI:busybox" "oci-archive:$OUT/busybox.oci.tar:busybox:latest"
sk "oci:$OCI:layered" "docker-archive:$OUT/layered.docker.tar:layered:latest"
sk "oci:$OCI:shared" "docker-archive:$OUT/shared.docker.tar:shared:latest"
sk --additional-tag busybox:extra "oci:$OCI:busybox" "docker-archive:$OUT/busybox.2tags.docker.tar:busybox:latest"

# The docker image id (config digest) must survive the conversion.
for img in busybox layered shared; do
  want=$(manifest "$img" | jq -r '.config.digest')
  got=$(tar -xOf "$OUT/$img.docker.tar" manifest.json | jq -r '.[0].Config')
  [ "sha256:${got%.json}" = "$want" ] || [ "$got" = "$want" ] || die "$img.docker.tar: config $got, expected $want"
done

# --- images.json -------------------------------------------------------------
{
  for img in busybox layered shared; do
    md=$(mdigest "$img")
    m=$(manifest "$img")
    cd_=$(jq -r '.config.digest' <<<"$m")
    case $img in
      busybox) arch='{"docker": "busybox.docker.tar", "oci": "busybox.oci.tar", "docker2tags": "busybox.2tags.docker.tar"}' ;;
      *) arch="{\"docker\": \"$img.docker.tar\"}" ;;
    esac
    jq -n --arg name "$img" --arg md "$md" --arg cd "$cd_" --argjson m "$m" \
      --argjson c "$(cat "$(blob "$cd_")")" --argjson a "$arch" \
      '{($name): {ref: ($name + ":latest"), manifestDigest: $md, configDigest: $cd,
        diffIds: $c.rootfs.diff_ids, layers: [$m.layers[].digest], archives: $a}}'
  done
} | jq -s 'add' >"$OUT/images.json"

echo "$KEY" >"$OUT/.key"

# --- publish -----------------------------------------------------------------
if [ -e "$OUTDIR" ] || [ -L "$OUTDIR" ]; then
  mv -T "$OUTDIR" "$TMP/old"
fi
mv -T "$OUT" "$OUTDIR"
echo "$OUTDIR"
