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
  # A suite that failed outside any test (a hook, a file that did not load) counts as one failure.
  status_file="${f%.log}.status"
  if [ "${x:-0}" = 0 ] && [ -f "$status_file" ] && [ "$(cat "$status_file")" != 0 ]; then
    echo "summarize: suite $(basename "${f%.log}") failed outside its tests" >&2
    failed=$((failed + 1))
  fi
done
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
