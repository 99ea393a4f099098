#!/usr/bin/env bash
# Stops the node e2e/node/up.sh started and removes what it left on the host: its processes and
# every container's, its mounts, cgroups, bridge, the KUBE-* iptables chains of kube-proxy and
# the kubelet, the fixed folders it made, and its state.
# The Node object is deleted while the API server answers. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LOCAL="$ROOT/.local"
STATE="$LOCAL/node"
[ -d "$STATE" ] || exit 0
# shellcheck source=e2e/node/identity.sh
. e2e/node/identity.sh

log() { printf 'node-down: %s\n' "$*" >&2; }
# shellcheck source=e2e/cluster/daemons.sh
. e2e/cluster/daemons.sh

if [ -f "$STATE/node-name" ] && [ -f "$LOCAL/kubeconfig" ]; then
  "$LOCAL/bin/kubectl" --kubeconfig "$LOCAL/kubeconfig" delete node "$(cat "$STATE/node-name")" \
    --ignore-not-found --wait=false --request-timeout=5s >/dev/null 2>&1 || true
fi
stop kubelet
stop kube-scheduler
stop kube-proxy

# Every container process is in a cgroup under the node's root: kill them all, then the shims
# (they outlive containerd by design), then containerd.
for _ in 1 2 3; do
  pids=$(find "/sys/fs/cgroup/pids/$NODE_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null || true)
  [ -n "$pids" ] || break
  kill -KILL $pids 2>/dev/null || true
  sleep 0.2
done
pkill -KILL -f "containerd-shim-runc-v2 .*-address $STATE/containerd.sock" 2>/dev/null || true
stop containerd

# Mounts under the state folder (overlay root filesystems, shm, network namespaces, volumes),
# deepest first.
awk -v prefix="$STATE/" 'index($5, prefix) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
  while read -r mountpoint; do umount -l "$mountpoint" 2>/dev/null || true; done

for controller in "${NODE_CGROUP_CONTROLLERS[@]}"; do
  dir="/sys/fs/cgroup/$controller/$NODE_CGROUP"
  [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
done
ip link del "$NODE_BRIDGE" 2>/dev/null || true
# Every KUBE-* chain goes, with the rules that jump to it: kube-proxy's (`kube-proxy --cleanup`
# leaves KUBE-FIREWALL and its hints behind) and the kubelet's canaries.
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for table in mangle nat filter; do
    "$ipt-save" -t "$table" 2>/dev/null | grep -E '^-A .* -j KUBE-' | sed 's/^-A /-D /' |
      while read -r rule; do eval "\"$ipt\" -t $table $rule" 2>/dev/null || true; done || true
    for chain in $("$ipt-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
      "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $("$ipt-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
      "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
done
# The kubelet links each container's log into /var/log/containers, whatever its root folder.
find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true

# The fixed folders up.sh found absent: the shims' socket folder and the kubelet's.
while read -r fixed; do [ -n "$fixed" ] && rm -rf "$fixed"; done <"$STATE/made-outside" 2>/dev/null || true
rm -rf "$STATE"
printf 'node-down: stopped\n' >&2
