#!/usr/bin/env bash
# Prints the folder that holds one set of the local cluster's binaries, building it first if
# the cache lacks it. Usage: binaries.sh [control-plane|node]
#
# - control-plane (the default): kube-apiserver, kube-controller-manager, kubectl and etcd.
#   KUBEBUILDER_ASSETS wins when set (the envtest convention).
# - node: kubelet, kube-scheduler and kube-proxy (the same pinned Kubernetes release), containerd,
#   containerd-shim-runc-v2 and ctr (containerd 2.x), and umoci, which packs the node's local
#   images (e2e/node/images.sh). Its own cache folder: a control plane alone never builds it.
#
# Each set is built from Go modules and cached by version outside the work tree, so only the
# first run on a machine pays for the build.
#
# k8s.io/kubernetes cannot be `go install`ed: it requires its staging modules at v0.0.0 and
# relies on replace directives that Go ignores in a dependency. A throw-away wrapper module
# requires it and replaces every staging module with its published v0.Y.Z twin.
set -euo pipefail

SET=${1:-control-plane}
K8S_VERSION="${SSJ_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${SSJ_ETCD_VERSION:-v3.6.16}"
CONTAINERD_VERSION="${SSJ_CONTAINERD_VERSION:-v2.4.2}"
UMOCI_VERSION="${SSJ_UMOCI_VERSION:-v0.6.0}"
CACHE_ROOT="${SSJ_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ssj-operator}"
case "$SET" in
  control-plane)
    OUT="$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
    NEEDED=(kube-apiserver kube-controller-manager kubectl etcd) ;;
  node)
    OUT="$CACHE_ROOT/node-k8s-$K8S_VERSION-containerd-$CONTAINERD_VERSION-umoci-$UMOCI_VERSION"
    NEEDED=(kubelet kube-scheduler kube-proxy containerd containerd-shim-runc-v2 ctr umoci) ;;
  *) echo "usage: binaries.sh [control-plane|node]" >&2; exit 2 ;;
esac

log() { printf 'binaries: %s\n' "$*" >&2; }

have_all() {
  local dir=$1 b
  for b in "${NEEDED[@]}"; do [ -x "$dir/$b" ] || return 1; done
}

if [ "$SET" = control-plane ] && [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  have_all "$KUBEBUILDER_ASSETS" || { log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks one of: ${NEEDED[*]}"; exit 1; }
  printf '%s\n' "$KUBEBUILDER_ASSETS"
  exit 0
fi

if have_all "$OUT"; then
  printf '%s\n' "$OUT"
  exit 0
fi

command -v go >/dev/null || { log "go is not installed: set KUBEBUILDER_ASSETS or install Go 1.26"; exit 1; }
mkdir -p "$CACHE_ROOT"
# One builder at a time per cache: two `make cluster-up` racing must not build twice.
exec 9>"$CACHE_ROOT/.build.lock"
flock 9
if have_all "$OUT"; then printf '%s\n' "$OUT"; exit 0; fi

work=$(mktemp -d "$CACHE_ROOT/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod"
rm -rf "$OUT.partial"
mkdir -p "$OUT.partial"

# build_kubernetes CMD...: k8s.io/kubernetes/cmd/CMD for each CMD, into $OUT.partial.
build_kubernetes() {
  local minor=${K8S_VERSION#v1.}   # 36.3
  local staging_version="v0.$minor" ldflags pkg b
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  mkdir -p "$work/k8s"
  {
    echo "module ssjbuild/k8s"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -E '^\s*k8s\.io/\S+ v0\.0\.0\s*$' "$gomod" | awk -v v="$staging_version" '{ printf "replace %s => %s %s\n", $1, $1, v }'
  } >"$work/k8s/go.mod"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*}"
  done
  (
    cd "$work/k8s"
    local gets=()
    for b in "$@"; do gets+=("k8s.io/kubernetes/cmd/$b@$K8S_VERSION"); done
    go get "${gets[@]}"
    for b in "$@"; do
      log "go build $b"
      go build -trimpath -ldflags "$ldflags" -o "$OUT.partial/$b" "k8s.io/kubernetes/cmd/$b"
    done
  )
}

case "$SET" in
  control-plane)
    log "building Kubernetes $K8S_VERSION and etcd $ETCD_VERSION into $OUT; a cold build takes tens of minutes"
    build_kubernetes kube-apiserver kube-controller-manager kubectl
    (
      mkdir -p "$work/etcd" && cd "$work/etcd"
      printf 'module ssjbuild/etcd\n\ngo 1.26\n' >go.mod
      go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
      log "go build etcd"
      go build -trimpath -ldflags "-s -w" -o "$OUT.partial/etcd" go.etcd.io/etcd/server/v3
    )
    ;;
  node)
    log "building the node (kubelet, kube-scheduler, kube-proxy $K8S_VERSION, containerd $CONTAINERD_VERSION, umoci $UMOCI_VERSION) into $OUT; a cold build takes about four minutes"
    build_kubernetes kubelet kube-scheduler kube-proxy
    # containerd's go.mod has no replace directives, so `go install` builds it as released.
    # Without cgo the btrfs snapshotter drops out by its own build tag; devmapper and zfs are
    # not used here either. overlayfs is the snapshotter (e2e/node/containerd.toml).
    for cmd in containerd containerd-shim-runc-v2 ctr; do
      log "go install $cmd"
      GOBIN="$OUT.partial" go install -trimpath -tags 'no_devmapper no_zfs' -ldflags '-s -w' \
        "github.com/containerd/containerd/v2/cmd/$cmd@$CONTAINERD_VERSION"
    done
    # umoci's go.mod replaces one dependency, which `go install` refuses: a wrapper module
    # requires it and repeats its replace directives.
    gomod=$(go mod download -json "github.com/opencontainers/umoci@$UMOCI_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [ -f "$gomod" ] || { log "could not download umoci@$UMOCI_VERSION"; exit 1; }
    mkdir -p "$work/umoci"
    {
      printf 'module ssjbuild/umoci\n\ngo 1.26\n\nrequire github.com/opencontainers/umoci %s\n\n' "$UMOCI_VERSION"
      grep -E '^replace ' "$gomod"
    } >"$work/umoci/go.mod"
    (
      cd "$work/umoci"
      go get "github.com/opencontainers/umoci/cmd/umoci@$UMOCI_VERSION"
      log "go build umoci"
      go build -trimpath -ldflags '-s -w' -o "$OUT.partial/umoci" github.com/opencontainers/umoci/cmd/umoci
    )
    ;;
esac

rm -rf "$OUT"
mv "$OUT.partial" "$OUT"
log "done: $OUT"
printf '%s\n' "$OUT"
