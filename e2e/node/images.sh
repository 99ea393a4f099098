#!/usr/bin/env bash
# Prints the folder holding the node's local images as OCI archives, building them first if the
# cache lacks them. No registry is involved: each image is packed here from Debian's files with
# umoci and imported into containerd by e2e/node/up.sh.
#
# - busybox.tar, imported as ssj.local/busybox:<busybox version>: Debian's busybox-static, the
#   binary at /bin/busybox and one symlink per applet beside it; Cmd ["sh"]. The dev sample and
#   the node suite run it.
# - pause.tar, imported as ssj.local/pause-busybox:<busybox version>: the same files, with
#   Entrypoint ["/bin/sleep", "2147483647"]; containerd's Pod sandbox ("pause") image. It only
#   has to hold the Pod's namespaces; containerd stops a sandbox with SIGKILL.
#
# Usage: images.sh [umoci]. The cache key is the busybox-static package version, so a Debian
# update builds new images.
set -euo pipefail
UMOCI=${1:-}
[ -n "$UMOCI" ] || UMOCI="$("$(dirname "$0")/../cluster/binaries.sh" node)/umoci"
CACHE_ROOT="${SSJ_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ssj-operator}"
log() { printf 'images: %s\n' "$*" >&2; }

if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
  log "installing Debian's busybox-static (the node's images are built from it)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
deb_version=$(dpkg-query -W -f='${Version}' busybox-static)   # 1:1.35.0-4+b3
tag=$(/bin/busybox 2>&1 | sed -n 's/^BusyBox v\([0-9]*\.[0-9]*\).*/\1/p' | head -n 1)   # 1.35
[ -n "$tag" ] || { log "could not read busybox's version from /bin/busybox"; exit 1; }
OUT="$CACHE_ROOT/images/busybox-static-${deb_version//[:+~]/_}"
if [ -f "$OUT/busybox.tar" ] && [ -f "$OUT/pause.tar" ] && [ -f "$OUT/tag" ]; then printf '%s\n' "$OUT"; exit 0; fi

mkdir -p "$CACHE_ROOT/images"
exec 9>"$CACHE_ROOT/images/.build.lock"
flock 9
if [ -f "$OUT/busybox.tar" ] && [ -f "$OUT/pause.tar" ] && [ -f "$OUT/tag" ]; then printf '%s\n' "$OUT"; exit 0; fi
work=$(mktemp -d "$CACHE_ROOT/images/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

rootfs="$work/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
chmod 1777 "$rootfs/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$rootfs/etc/group"

# pack NAME CONFIG-FLAGS...: an OCI layout with one layer (the rootfs) and tag $tag, archived.
pack() {
  local name=$1; shift
  local layout="$work/$name"
  "$UMOCI" init --layout "$layout"
  "$UMOCI" new --image "$layout:$tag"
  "$UMOCI" insert --image "$layout:$tag" "$rootfs" /
  "$UMOCI" config --image "$layout:$tag" --os linux --architecture amd64 \
    --author "ssj-operator e2e/node/images.sh" --config.env PATH=/bin "$@"
  "$UMOCI" gc --layout "$layout"
  tar -C "$layout" -cf "$work/$name.tar" .
}
pack busybox --config.cmd sh
pack pause --config.entrypoint /bin/sleep --config.entrypoint 2147483647

rm -rf "$OUT"
mkdir -p "$OUT.partial"
mv "$work/busybox.tar" "$work/pause.tar" "$OUT.partial/"
echo "$tag" >"$OUT.partial/tag"
mv "$OUT.partial" "$OUT"
log "built ssj.local/busybox:$tag and ssj.local/pause-busybox:$tag from busybox-static $deb_version into $OUT"
printf '%s\n' "$OUT"
