#!/usr/bin/env bash
# Starts a real local Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC,
# ServiceAccount token minting) and kube-controller-manager (garbage collection and the
# built-in controllers). Writes .local/kubeconfig and .local/bin/kubectl. Idempotent: a
# healthy cluster is left as it is; a half-started one is stopped and started again.
#
# There is no kubelet and no scheduler: Pods stay Pending unless a test writes their status
# as a kubelet would, or e2e/node/up.sh adds the real node (`make node-up`). For that node the
# API server also listens on the host's address (e2e/node/ip.sh) and advertises it as the
# endpoint of Service "kubernetes", where Pods reach it through kube-proxy; it authorizes
# kubelets with the Node authorizer, and has a client certificate for the kubelet's API (logs).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LOCAL="$ROOT/.local"
STATE="$LOCAL/cluster"
KUBECONFIG_OUT="$LOCAL/kubeconfig"
log() { printf 'cluster-up: %s\n' "$*" >&2; }

BIN=$(e2e/cluster/binaries.sh)
mkdir -p "$LOCAL/bin"
ln -sf "$BIN/kubectl" "$LOCAL/bin/kubectl"
KUBECTL=("$LOCAL/bin/kubectl" --kubeconfig "$KUBECONFIG_OUT")

# shellcheck source=e2e/cluster/daemons.sh
. e2e/cluster/daemons.sh
if alive etcd && alive kube-apiserver && alive kube-controller-manager &&
  "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1; then
  log "already running ($(cat "$STATE/apiserver.url"))"
  exit 0
fi
[ -d "$STATE" ] && e2e/cluster/down.sh

mkdir -p "$STATE/pki" "$STATE/logs"
ETCD_PORT=$(free_port); PEER_PORT=$(free_port "$ETCD_PORT"); API_PORT=$(free_port "$ETCD_PORT" "$PEER_PORT")

# Certificates: one CA signs the serving certificate and the admin client certificate.
pki="$STATE/pki"
ossl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ssj-local-ca" -keyout "$pki/ca.key" -out "$pki/ca.crt"
ossl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr"
NODE_IP=$(e2e/node/ip.sh)
printf 'subjectAltName=IP:127.0.0.1,IP:%s,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' "$NODE_IP" >"$pki/san.ext"
ossl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 -extfile "$pki/san.ext" -out "$pki/apiserver.crt"
ossl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=ssj-admin" -keyout "$pki/admin.key" -out "$pki/admin.csr"
ossl x509 -req -in "$pki/admin.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 -out "$pki/admin.crt"
ossl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" -keyout "$pki/kubelet-client.key" -out "$pki/kubelet-client.csr"
ossl x509 -req -in "$pki/kubelet-client.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 -out "$pki/kubelet-client.crt"
ossl genrsa -out "$pki/sa.key" 2048
ossl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

b64() { base64 -w0 <"$1"; }
SERVER="https://127.0.0.1:$API_PORT"
cat >"$KUBECONFIG_OUT" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: ssj-local
  cluster:
    server: $SERVER
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: ssj-admin
  user:
    client-certificate-data: $(b64 "$pki/admin.crt")
    client-key-data: $(b64 "$pki/admin.key")
contexts:
- name: ssj-local
  context: { cluster: ssj-local, user: ssj-admin }
current-context: ssj-local
KCFG
chmod 600 "$KUBECONFIG_OUT"
echo "$SERVER" >"$STATE/apiserver.url"

start etcd "$BIN/etcd" --name default --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "default=http://127.0.0.1:$PEER_PORT" --unsafe-no-fsync --log-level warn
wait_until 30 etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"

start kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" --bind-address 0.0.0.0 --advertise-address "$NODE_IP" \
  --secure-port "$API_PORT" --cert-dir "$pki" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --kubelet-client-certificate "$pki/kubelet-client.crt" --kubelet-client-key "$pki/kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP --service-cluster-ip-range 10.0.0.0/24 \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --allow-privileged=true --v=1
wait_until 90 kube-apiserver "${KUBECTL[@]}" get --raw /readyz

start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig "$KUBECONFIG_OUT" --leader-elect=false --controllers='*' \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --use-service-account-credentials=true --bind-address 127.0.0.1 --secure-port 0 --v=1

# Pods need their namespace's default ServiceAccount, which the controller-manager creates.
wait_until 60 "default ServiceAccount" "${KUBECTL[@]}" -n default get serviceaccount default
"${KUBECTL[@]}" create namespace ssj-system --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f - >/dev/null
log "ready: $SERVER (kubectl: .local/bin/kubectl --kubeconfig .local/kubeconfig)"
