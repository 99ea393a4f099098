#!/usr/bin/env bash
# Runs one suite with node's test runner and keeps its output for the summary line.
# Usage: run-tests.sh NAME GLOB... ; fails when the runner fails or when it ran no test.
set -euo pipefail
name=$1; shift
results="${RESULTS_DIR:-.local/test-results}"
mkdir -p "$results"
set +e
node --test --test-concurrency="${TEST_CONCURRENCY:-1}" --test-timeout="${TEST_TIMEOUT_MS:-300000}" \
  --test-reporter=spec "$@" 2>&1 | tee "$results/$name.log"
status=${PIPESTATUS[0]}
set -e
echo "$status" >"$results/$name.status"
tests=$(grep -Eo '^ℹ tests [0-9]+' "$results/$name.log" | awk '{ print $3 }' | tail -n 1)
if [ "${tests:-0}" = 0 ]; then
  echo "run-tests: suite '$name' ran no test" >&2
  exit 1
fi
exit "$status"
