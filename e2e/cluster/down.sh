#!/usr/bin/env bash
# Stops the local control plane started by up.sh and removes its state. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE="$PWD/.local/cluster"
e2e/node/down.sh
[ -d "$STATE" ] || exit 0
log() { printf 'cluster-down: %s\n' "$*" >&2; }
# shellcheck source=e2e/cluster/daemons.sh
. e2e/cluster/daemons.sh
for name in kube-controller-manager kube-apiserver etcd; do stop "$name"; done
rm -rf "$STATE" "$PWD/.local/kubeconfig"
printf 'cluster-down: stopped\n' >&2
