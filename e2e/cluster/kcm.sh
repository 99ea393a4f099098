#!/usr/bin/env bash
# Restarts the local cluster's kube-controller-manager with extra flags, for the benchmark's
# CronJob baseline (e.g. raised client rate limits).
#
#   e2e/cluster/kcm.sh restart [extra flags...]   up.sh's own flags, then the extra ones
#   e2e/cluster/kcm.sh restart                    back to up.sh's flags alone (the defaults)
#   e2e/cluster/kcm.sh flags                      the effective client rate limits (from its log)
#
# up.sh's command line is not restated here (it would drift): the first restart copies it from
# the running process (/proc/<pid>/cmdline) to .local/cluster/kube-controller-manager.cmdline,
# and every restart starts from that copy. down.sh removes .local/cluster, so a new cluster takes
# a new copy. The new process runs in its own session (setsid) with its pid in the same pid
# file, so down.sh stops it as it stops up.sh's. Its output is appended to the same log file.
#
# Resolves once the new process has started its Job and CronJob controllers and its informers
# have synced; exits non-zero (with the log's tail) if it does not within 60 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE="$PWD/.local/cluster"
PIDFILE="$STATE/kube-controller-manager.pid"
BASE="$STATE/kube-controller-manager.cmdline"
LOG="$STATE/logs/kube-controller-manager.log"
log() { printf 'kcm: %s\n' "$*" >&2; }
usage() { sed -n '5,7p' "$0" | sed 's/^# *//' >&2; exit 2; }

alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

stop_kcm() { # the whole session's process group, as down.sh does
  local pid
  pid=$(cat "$PIDFILE")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  log "kube-controller-manager ($pid) did not stop"
  exit 1
}

effective_flags() { # the last value each rate-limit flag was logged with at start-up
  grep -oE 'FLAG: --kube-api-(qps|burst)="[^"]*"' "$LOG" | tail -n 2 | sed 's/^FLAG: //' | tr '\n' ' '
  echo
}

restart() {
  [ -d "$STATE" ] || { log "no local cluster: run make cluster-up"; exit 1; }
  if [ ! -s "$BASE" ]; then
    alive || { log "kube-controller-manager is not running: run make cluster-up"; exit 1; }
    cp "/proc/$(cat "$PIDFILE")/cmdline" "$BASE.tmp" && mv "$BASE.tmp" "$BASE"
  fi
  local -a cmd=()
  mapfile -d '' -t cmd <"$BASE"
  [ "${#cmd[@]}" -gt 0 ] || { log "empty saved command line in $BASE"; exit 1; }

  if alive; then stop_kcm; fi
  local offset
  offset=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
  printf '\n==== kcm.sh restart %s: extra flags: %s\n' "$(date -u +%FT%TZ)" "${*:-(none)}" >>"$LOG"
  setsid "${cmd[@]}" "$@" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"

  local deadline=$((SECONDS + 60)) segment
  for (( ; ; )); do
    if ! alive; then
      log "kube-controller-manager exited at start-up:"; tail -c +"$((offset + 1))" "$LOG" | tail -n 20 >&2; exit 1
    fi
    segment=$(tail -c +"$((offset + 1))" "$LOG")
    if grep -q 'controller="cronjob-controller"' <<<"$segment" &&
      grep -q 'controller="job-controller"' <<<"$segment" &&
      grep -q 'Caches are synced' <<<"$segment"; then
      break
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "kube-controller-manager did not start its controllers within 60 s:"; tail -n 20 "$LOG" >&2; exit 1
    fi
    sleep 0.3
  done
  log "restarted (pid $(cat "$PIDFILE")): $(effective_flags)"
}

case "${1:-}" in
  restart) shift; restart "$@" ;;
  flags) effective_flags ;;
  *) usage ;;
esac
