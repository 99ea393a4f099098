#!/usr/bin/env bash
# Stops the local control plane started by up.sh and removes its state. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE="$PWD/.local/cluster"
[ -d "$STATE" ] || exit 0
for name in kube-controller-manager kube-apiserver etcd; do
  pidfile="$STATE/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
done
rm -rf "$STATE" "$PWD/.local/kubeconfig"
printf 'cluster-down: stopped\n' >&2
