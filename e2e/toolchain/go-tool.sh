#!/usr/bin/env bash
# Prints the path of a pinned Go tool (helm, promtool), building it from the Go module proxy on
# first use and caching it by version outside the work tree, like the Kubernetes binaries
# (e2e/cluster/binaries.sh): only the first run on a machine pays for the build.
# Usage: go-tool.sh helm|promtool
set -euo pipefail

tool=${1:?usage: go-tool.sh helm|promtool}
case "$tool" in
  # The newest helm the module proxy serves; the chart is apiVersion v2, so Helm 3 reads it too.
  helm) module=helm.sh/helm/v4/cmd/helm version="${SSJ_HELM_VERSION:-v4.3.1}" ;;
  # Prometheus publishes its Go module as v0.<minor>.<patch>: v0.316.0 is Prometheus 3.16.0.
  promtool) module=github.com/prometheus/prometheus/cmd/promtool version="${SSJ_PROMTOOL_VERSION:-v0.316.0}" ;;
  *) echo "go-tool: unknown tool '$tool'" >&2; exit 2 ;;
esac

CACHE_ROOT="${SSJ_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ssj-operator}"
out="$CACHE_ROOT/tools/$tool-$version"
if [ -x "$out/$tool" ]; then printf '%s\n' "$out/$tool"; exit 0; fi

export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "go-tool: go is not installed: install Go 1.26 to build $tool" >&2; exit 1; }
mkdir -p "$CACHE_ROOT/tools"
exec 9>"$CACHE_ROOT/tools/.build.lock"
flock 9
if [ -x "$out/$tool" ]; then printf '%s\n' "$out/$tool"; exit 0; fi

echo "go-tool: building $module@$version into $out (once per machine)" >&2
rm -rf "$out.partial"
mkdir -p "$out.partial"
CGO_ENABLED=0 GOBIN="$out.partial" go install "$module@$version" >&2
mv "$out.partial" "$out"
printf '%s\n' "$out/$tool"
