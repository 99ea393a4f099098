#!/usr/bin/env bash
# Adds up the suites' counts and prints the closing line CI reads: "N passed, N failed".
set -euo pipefail
dir=${1:-.local/test-results}
passed=0 failed=0
for f in "$dir"/*.log; do
  [ -f "$f" ] || continue
  p=$(grep -Eo '^ℹ pass [0-9]+' "$f" | awk '{ print $3 }' | tail -n 1)
  x=$(grep -Eo '^ℹ fail [0-9]+' "$f" | awk '{ print $3 }' | tail -n 1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${x:-0}))
done
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
