#!/usr/bin/env bash
# `make deploy`: installs or upgrades the operator (config/default) with server-side apply, waits
# for the CRD to be Established, then checks that the API-server fence refuses a stale term's
# Pod and follows the leader Lease (e2e/deploy/fence-check.ts; kubernetes#130887). Exits non-zero,
# saying what to do, when any step fails.
#
# KUBECONFIG (default: .local/kubeconfig, the local cluster) and KUBECTL (default:
# .local/bin/kubectl) choose the cluster and the client. Idempotent: running it again upgrades.
#
# On the local cluster (KUBECONFIG unset, or .local/kubeconfig) it first starts the local node (e2e/node/up.sh), builds
# the operator's image from this checkout and imports it there (e2e/node/operator-image.sh), and
# at the end waits for the three replicas to be Ready on the node; a changed image restarts them.
# On any other cluster it does not wait; there: kubectl -n ssj-system rollout status
# deployment/ssj-operator.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export KUBECONFIG="${KUBECONFIG:-$ROOT/.local/kubeconfig}"
LOCAL_NODE=false
[ "$(realpath -m "$KUBECONFIG")" = "$ROOT/.local/kubeconfig" ] && LOCAL_NODE=true
KUBECTL="${KUBECTL:-$ROOT/.local/bin/kubectl}"
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
log() { printf 'deploy: %s\n' "$*" >&2; }

if $LOCAL_NODE; then
  e2e/node/up.sh
  had=$(k -n ssj-system get deployment ssj-operator -o name --ignore-not-found 2>/dev/null || true)
  old_digest=$(cat "$ROOT/.local/node/operator-image-digest" 2>/dev/null || true)
  log "building the operator's image and importing it into the node"
  digest=$(e2e/node/operator-image.sh)
  echo "$digest" >"$ROOT/.local/node/operator-image-digest"
fi

log "applying config/default to $(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
# Server-side: the CRD is larger than client-side apply's annotation limit, and a CRD upgrade is
# then an ordinary apply of the new schema.
k apply --server-side -k config/default

# `kubectl wait` fails, rather than waits, while a new CRD has no status conditions yet.
for _ in $(seq 1 60); do
  if k wait --for condition=Established --timeout=60s crd/singletonjobs.ssj.dev >/dev/null 2>&1; then
    break
  fi
  sleep 1
done
k wait --for condition=Established --timeout=1s crd/singletonjobs.ssj.dev >/dev/null ||
  { log "the CRD singletonjobs.ssj.dev did not become Established"; exit 1; }

e2e/toolchain/node e2e/deploy/fence-check.ts
if $LOCAL_NODE; then
  # Same tag, new bytes: the running replicas would keep the old image.
  if [ -n "$had" ] && [ "$digest" != "$old_digest" ]; then
    log "the image changed ($digest): restarting the replicas"
    k -n ssj-system rollout restart deployment/ssj-operator >/dev/null
  fi
  log "waiting for three Ready replicas on the node"
  k -n ssj-system rollout status deployment/ssj-operator --timeout=180s ||
    { k -n ssj-system get pods -o wide >&2; exit 1; }
fi
log "done; the operator runs as Deployment ssj-system/ssj-operator (docs/deploying.md)"
