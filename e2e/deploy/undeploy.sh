#!/usr/bin/env bash
# `make undeploy`: removes everything config/default installed, and leaves no Pod holding the
# tracking finalizer ssj.dev/run-record. In this order:
#   1. the operator: its Deployment is deleted and its Pods are waited for, so nothing adds a
#      finalizer, or records a run, from here on;
#   2. `node src/main.ts cleanup`: the finalizer is removed from every run's Pod, in every
#      namespace (it is never safe while an operator runs: that is why step 1 comes first);
#   3. every ScheduledSingletonJob, each with its Pods (foreground deletion: a job is gone only
#      once its Pods are, which the garbage collector deletes);
#   4. the rest of config/default (the namespace with its Secret ssj-ledger and the Lease, the
#      RBAC, the admission policies), then the CRD last;
#   5. a check that none of config/default's objects, and no Pod with the finalizer, is left.
# The PostgreSQL ledger's database, if any, is yours: it is left as it is.
#
# Removing the admission policies leaves every kube-apiserver with a frozen Lease cache
# (kubernetes#130887): a later `make deploy` fails its fence check until they are restarted.
# KEEP_LEASE_PARAM_KEEPER=1 leaves the keeper's policy and binding (two cluster-scoped objects,
# never evaluated) so that a reinstall needs no restart (docs/adr/0010-api-server-fence.md).
#
# KUBECONFIG (default: .local/kubeconfig) and KUBECTL (default: .local/bin/kubectl) choose the
# cluster and the client. Stop any operator you run outside the cluster (`make run`) first.
# Safe to run again after a failure, or on a cluster where nothing is installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export KUBECONFIG="${KUBECONFIG:-$ROOT/.local/kubeconfig}"
KUBECTL="${KUBECTL:-$ROOT/.local/bin/kubectl}"
TIMEOUT="${UNDEPLOY_TIMEOUT:-300s}"
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
log() { printf 'undeploy: %s\n' "$*" >&2; }
NS=ssj-system
OPERATOR=app.kubernetes.io/name=ssj-operator
CRD=singletonjobs.ssj.dev

log "removing the operator from $(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
k -n "$NS" delete deployment ssj-operator --ignore-not-found --wait --timeout="$TIMEOUT"
log "waiting for the operator's Pods to go"
deadline=$((SECONDS + ${TIMEOUT%s}))
while [ -n "$(k -n "$NS" get pods -l "$OPERATOR" -o name 2>/dev/null)" ]; do
  if [ $SECONDS -ge $deadline ]; then
    log "the operator's Pods are still there after $TIMEOUT:"; k -n "$NS" get pods -l "$OPERATOR" >&2
    exit 1
  fi
  sleep 1
done

log "removing the finalizer ssj.dev/run-record from every run's Pod"
e2e/toolchain/node src/main.ts cleanup

if k get crd "$CRD" >/dev/null 2>&1; then
  log "deleting every ScheduledSingletonJob and its Pods"
  k delete "$CRD" --all --all-namespaces --cascade=foreground --wait --timeout="$TIMEOUT"
fi

selector="$OPERATOR"
[ "${KEEP_LEASE_PARAM_KEEPER:-}" = 1 ] && selector="$selector,app.kubernetes.io/component!=lease-param-keeper"
log "deleting config/default's objects (selector $selector), the CRD last"
# Every object of config/default but the generated CRD carries the label $OPERATOR.
k delete -k config/default -l "$selector" --ignore-not-found --wait --timeout="$TIMEOUT"
k delete crd "$CRD" --ignore-not-found --wait --timeout="$TIMEOUT"

left=$(k kustomize config/default | k get -f - --ignore-not-found -o name)
if [ "${KEEP_LEASE_PARAM_KEEPER:-}" = 1 ]; then
  left=$(grep -v 'ssj-operator-lease-param-keeper' <<<"$left" || true)
fi
tracked=$(k get pods --all-namespaces -l ssj.dev/job \
  -o jsonpath='{range .items[?(@.metadata.finalizers)]}{.metadata.namespace}/{.metadata.name} {.metadata.finalizers}{"\n"}{end}' |
  grep -F 'ssj.dev/run-record' || true)
if [ -n "$left" ] || [ -n "$tracked" ]; then
  log "left behind:"
  printf '%s\n' "$left" "$tracked" | grep -v '^$' >&2
  exit 1
fi
log "done: nothing of config/default is left"
