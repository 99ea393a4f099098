#!/usr/bin/env bash
# Builds the operator's image from this checkout (e2e/node/operator-image.ts: the Dockerfile's
# production tree, Node 24, non-root) and imports it into the local node's containerd as the
# name config/manager gives, ssj-operator:latest (docker.io/library/ssj-operator:latest once
# normalized). Prints the image's digest. Needs the node (e2e/node/up.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE="$PWD/.local/node"
[ -f "$STATE/bin" ] || { echo "operator-image: no node; run make node-up" >&2; exit 1; }
BIN=$(cat "$STATE/bin")
CTR=("$BIN/ctr" --address "$STATE/containerd.sock" --namespace k8s.io)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
e2e/toolchain/node e2e/node/operator-image.ts "$BIN/umoci" "$work/ssj-operator.tar"
# ctr warns on every call that cgroup v1 is deprecated: its stderr only when it fails.
out=$("${CTR[@]}" images import --base-name docker.io/library/ssj-operator "$work/ssj-operator.tar" 2>&1) ||
  { printf '%s\n' "$out" >&2; exit 1; }
"${CTR[@]}" images ls "name==docker.io/library/ssj-operator:latest" 2>/dev/null | awk 'NR == 2 { print $3 }' | grep .
