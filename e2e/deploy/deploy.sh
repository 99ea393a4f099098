#!/usr/bin/env bash
# `make deploy`: installs or upgrades the operator (config/default) with server-side apply, waits
# for the CRD to be Established, then checks that the API-server fence refuses a stale term's
# Pod and follows the leader Lease (e2e/deploy/fence-check.ts; kubernetes#130887). Exits non-zero,
# saying what to do, when any step fails.
#
# KUBECONFIG (default: .local/kubeconfig, the local cluster) and KUBECTL (default:
# .local/bin/kubectl) choose the cluster and the client. Idempotent: running it again upgrades.
# It does not wait for the Deployment's rollout (the local cluster has no kubelet: its Pods stay
# Pending); on a real cluster: kubectl -n ssj-system rollout status deployment/ssj-operator.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export KUBECONFIG="${KUBECONFIG:-$ROOT/.local/kubeconfig}"
KUBECTL="${KUBECTL:-$ROOT/.local/bin/kubectl}"
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
log() { printf 'deploy: %s\n' "$*" >&2; }

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
log "done; the operator runs as Deployment ssj-system/ssj-operator (docs/deploying.md)"
