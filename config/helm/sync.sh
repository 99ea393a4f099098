#!/usr/bin/env bash
# Copies into the chart the sources it shares with kustomize. Helm reads only files inside the
# chart, so the chart keeps byte-for-byte copies of the CRD and of the static manifests in
# config/ and renders those copies (templates/_sources.tpl) instead of restating them; this script
# is the one place that says which copy comes from where. test/integration/helm/chart.test.ts
# runs `sync.sh --check`, and compares the rendered chart with `kubectl kustomize config/default`.
#
# Usage: config/helm/sync.sh           refresh the copies (run by `make manifests`)
#        config/helm/sync.sh --check   change nothing; print a diff and exit 1 if a copy differs
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
chart="$root/config/helm/ssj-operator"

# "source destination": a directory is mirrored (its *.yaml files except kustomization.yaml, so
# that a new manifest there is rendered by the chart too); a file is copied if it exists.
copies=(
  "crds crds"
  "config/rbac files/rbac"
  "config/policy files/policy"
  "config/manager/disruption-budget.yaml files/manager/disruption-budget.yaml"
  "config/prometheus/rules.yaml files/prometheus/rules.yaml"
)

# Writes what the chart's copies should be into $1.
expected() {
  local out=$1 pair src dst file
  for pair in "${copies[@]}"; do
    read -r src dst <<<"$pair"
    if [ -d "$root/$src" ]; then
      mkdir -p "$out/$dst"
      for file in "$root/$src"/*.yaml; do
        [ "$(basename "$file")" = kustomization.yaml ] || cp "$file" "$out/$dst/"
      done
    elif [ -f "$root/$src" ]; then
      mkdir -p "$(dirname "$out/$dst")"
      cp "$root/$src" "$out/$dst"
    fi
  done
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
expected "$tmp"

status=0
for pair in "${copies[@]}"; do
  read -r src dst <<<"$pair"
  if [ "${1:-}" = --check ]; then
    if [ -e "$tmp/$dst" ] || [ -e "$chart/$dst" ]; then
      # From inside $tmp, so the diff names the expected side by its path in the chart.
      (cd "$tmp" && diff -ru "$dst" "$chart/$dst" 2>&1) | head -n 200 || status=1
    fi
  else
    rm -rf "${chart:?}/$dst"
    if [ -e "$tmp/$dst" ]; then
      mkdir -p "$(dirname "$chart/$dst")"
      cp -R "$tmp/$dst" "$chart/$dst"
    fi
  fi
done
if [ "$status" != 0 ]; then
  echo "sync.sh: the chart's copies differ from their sources: run config/helm/sync.sh" >&2
fi
exit "$status"
