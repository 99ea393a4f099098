#!/usr/bin/env bash
# Prints the folder that holds kube-apiserver, kube-controller-manager, kubectl and etcd.
#
# KUBEBUILDER_ASSETS wins when set (the envtest convention). Otherwise the binaries are built
# from the Go modules of one pinned Kubernetes release and etcd release, and cached by version
# outside the work tree, so only the first run on a machine pays for the build.
#
# k8s.io/kubernetes cannot be `go install`ed: it requires its staging modules at v0.0.0 and
# relies on replace directives that Go ignores in a dependency. A throw-away wrapper module
# requires it and replaces every staging module with its published v0.Y.Z twin.
set -euo pipefail

K8S_VERSION="${SSJ_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${SSJ_ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${SSJ_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ssj-operator}"
OUT="$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
NEEDED=(kube-apiserver kube-controller-manager kubectl etcd)

log() { printf 'binaries: %s\n' "$*" >&2; }

have_all() {
  local dir=$1 b
  for b in "${NEEDED[@]}"; do [ -x "$dir/$b" ] || return 1; done
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
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

minor=${K8S_VERSION#v1.}   # 36.3
staging_version="v0.$minor"
log "building Kubernetes $K8S_VERSION (staging $staging_version) and etcd $ETCD_VERSION into $OUT; a cold build takes tens of minutes"

gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[ -f "$gomod" ] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }

mkdir -p "$work/k8s" "$work/etcd" "$OUT.partial"
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
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION"
  for b in kube-apiserver kube-controller-manager kubectl; do
    log "go build $b"
    go build -trimpath -ldflags "$ldflags" -o "$OUT.partial/$b" "k8s.io/kubernetes/cmd/$b"
  done
)

(
  cd "$work/etcd"
  printf 'module ssjbuild/etcd\n\ngo 1.26\n' >go.mod
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  log "go build etcd"
  go build -trimpath -ldflags "-s -w" -o "$OUT.partial/etcd" go.etcd.io/etcd/server/v3
)

rm -rf "$OUT"
mv "$OUT.partial" "$OUT"
log "done: $OUT"
printf '%s\n' "$OUT"
