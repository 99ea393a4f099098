#!/usr/bin/env bash
# Adds one real node, "ssj-node", to the local cluster (e2e/cluster/up.sh starts that first):
# containerd 2.x with Debian's runc and CNI plugins, a kubelet, kube-scheduler and kube-proxy, so
# Pods are scheduled, really run, reach the API server through Service "kubernetes" (the deployed
# operator does), and `kubectl logs` shows their output. Idempotent: a healthy node is
# left as it is; a half-started one is stopped (e2e/node/down.sh) and started again.
#
# Everything the node writes lives under .local/node, under one cgroup per controller
# (/sys/fs/cgroup/<controller>/ssj-node-<id>), on one bridge (ssj<id>) and on the host's
# address, so down.sh can remove all of it. Facts this relies on: e2e/README.md ("The node").
#
# Environment: SSJ_NODE_NAME (default ssj-node).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LOCAL="$ROOT/.local"
PKI="$LOCAL/cluster/pki"
STATE="$LOCAL/node"
NODE_NAME="${SSJ_NODE_NAME:-ssj-node}"
KUBECTL=("$LOCAL/bin/kubectl" --kubeconfig "$LOCAL/kubeconfig")
log() { printf 'node-up: %s\n' "$*" >&2; }

e2e/cluster/up.sh
# shellcheck source=e2e/node/identity.sh
. e2e/node/identity.sh

# shellcheck source=e2e/cluster/daemons.sh
. e2e/cluster/daemons.sh
node_ready() {
  [ "$("${KUBECTL[@]}" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
if alive containerd && alive kubelet && alive kube-scheduler && alive kube-proxy && node_ready; then
  log "already running (node $NODE_NAME)"
  exit 0
fi
[ -d "$STATE" ] && e2e/node/down.sh

# What Debian provides: runc, the CNI plugins and iptables (the bridge plugin calls it).
need=()
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian's ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

BIN=$(e2e/cluster/binaries.sh node)
IMAGES=$(e2e/node/images.sh "$BIN/umoci")
IMAGE_TAG=$(cat "$IMAGES/tag")
NODE_IP=$(e2e/node/ip.sh)
APISERVER=$(cat "$LOCAL/cluster/apiserver.url")

# Two folders are fixed in the binaries: the shims' sockets under /run/containerd/s, and the
# kubelet's device-plugin socket under /var/lib/kubelet. down.sh removes each if this node made it.
made_by_node=()
for fixed in /run/containerd /var/lib/kubelet; do [ -e "$fixed" ] || made_by_node+=("$fixed"); done
mkdir -p "$STATE/logs" "$STATE/pki" "$STATE/cni/net.d" "$STATE/kubelet" "$STATE/pod-logs"
printf '%s\n' "${made_by_node[@]}" >"$STATE/made-outside"
echo "$NODE_NAME" >"$STATE/node-name"
echo "$BIN" >"$STATE/bin"
# What the suites read: the image a Pod on this node can run.
echo "ssj.local/busybox:$IMAGE_TAG" >"$STATE/busybox-image"
for controller in "${NODE_CGROUP_CONTROLLERS[@]}"; do mkdir -p "/sys/fs/cgroup/$controller/$NODE_CGROUP"; done

# Identities: the kubelet as system:node:<name> in system:nodes (the Node authorizer and
# NodeRestriction admission apply to it), the scheduler as system:kube-scheduler and kube-proxy as
# system:kube-proxy (their bootstrap RBAC roles). The control plane's CA signs them.
client_kubeconfig() { # name, subject
  local name=$1 subject=$2
  ossl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$STATE/pki/$name.key" -out "$STATE/pki/$name.csr"
  ossl x509 -req -in "$STATE/pki/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 3650 -out "$STATE/pki/$name.crt"
  cat >"$STATE/$name.kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: ssj-local
  cluster: { server: "$APISERVER", certificate-authority: "$PKI/ca.crt" }
users:
- name: $name
  user: { client-certificate: "$STATE/pki/$name.crt", client-key: "$STATE/pki/$name.key" }
contexts:
- name: ssj-local
  context: { cluster: ssj-local, user: $name }
current-context: ssj-local
KCFG
}
client_kubeconfig kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
client_kubeconfig kube-scheduler "/CN=system:kube-scheduler"
client_kubeconfig kube-proxy "/CN=system:kube-proxy"

KUBELET_PORT=$(free_port)
PROXY_HEALTHZ_PORT=$(free_port "$KUBELET_PORT")
PROXY_METRICS_PORT=$(free_port "$KUBELET_PORT" "$PROXY_HEALTHZ_PORT")

# Pods get addresses on their own bridge; without masquerading they reach the host's own
# addresses (the API server listens there) but nothing beyond, which is all the suites need.
cat >"$STATE/cni/net.d/10-ssj-node.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "ssj-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$NODE_POD_SUBNET" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$STATE/cni/ipam"
      }
    }
  ]
}
CNI

# containerd 2.x, configuration version 3. The sandbox image is the local pause image, pinned
# so the kubelet never collects it; NRI is off (it would open /var/run/nri). Network namespaces
# are mounted under the state folder, not /var/run/netns, so down.sh finds them.
cat >"$STATE/containerd.toml" <<TOML
version = 3
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"

[grpc]
  address = "$STATE/containerd.sock"

[ttrpc]
  address = "$STATE/containerd.sock.ttrpc"

[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.internal.v1.opt']
  path = "$STATE/containerd/opt"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = 'ssj.local/pause-busybox:$IMAGE_TAG'

# The session's bounding set lacks CAP_SYS_RESOURCE, so no process here may lower its
# oom_score_adj (the kubelet asks -998 for sandboxes): containerd keeps it at its own instead.
[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '$(command -v runc)'
        Root = '$STATE/runc'
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = '$STATE/cni/net.d'
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
TOML

# The kubelet: cgroup v1 needs failCgroupV1: false from 1.35 on; PID 1 is not systemd, so the
# cgroupfs driver; its cgroups under $NODE_CGROUP. Local images cannot be pulled again, so image
# garbage collection never starts, and eviction only on a nearly full disk.
cat >"$STATE/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$NODE_CGROUP
containerRuntimeEndpoint: unix://$STATE/containerd.sock
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: "$PKI/ca.crt" }
authorization:
  mode: Webhook
failSwapOn: false
podLogsDirectory: "$STATE/pod-logs"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
evictionPressureTransitionPeriod: 10s
registerNode: true
serializeImagePulls: false
YAML

# kube-proxy in iptables mode: Service addresses, "kubernetes" (10.0.0.1:443) first. It leaves the
# host's conntrack limits alone, and no NodePort listens on localhost.
cat >"$STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: "$STATE/kube-proxy.kubeconfig"
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $NODE_POD_SUBNET
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
conntrack:
  maxPerCore: 0
iptables:
  localhostNodePorts: false
YAML

CTR=("$BIN/ctr" --address "$STATE/containerd.sock" --namespace k8s.io)

# The shim is found on PATH.
start containerd env PATH="$BIN:$PATH" "$BIN/containerd" --config "$STATE/containerd.toml" --log-level warn
wait_until 30 containerd "${CTR[@]}" version
# ctr warns on every call that cgroup v1 is deprecated: its output only when it fails.
quietly() { local out; out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }; }
quietly "${CTR[@]}" images import --base-name "ssj.local/busybox" "$IMAGES/busybox.tar"
quietly "${CTR[@]}" images import --base-name "ssj.local/pause-busybox" "$IMAGES/pause.tar"

start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$STATE/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/kube-scheduler.kubeconfig" --authorization-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
  --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 --v=1

start kubelet "$BIN/kubelet" --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$STATE/kubelet" \
  --cert-dir "$STATE/pki/kubelet-serving" --v=1
start kube-proxy "$BIN/kube-proxy" --config "$STATE/kube-proxy.yaml" --v=1
wait_until 120 "node $NODE_NAME Ready" node_ready
wait_until 30 "kube-proxy" curl -sf "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"
log "ready: node $NODE_NAME ($NODE_IP), images ssj.local/busybox:$IMAGE_TAG and ssj.local/pause-busybox:$IMAGE_TAG"
