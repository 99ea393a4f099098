# Sourced by e2e/cluster/{up,down}.sh and e2e/node/{up,down}.sh: the local cluster's processes,
# each in its own session with its pid in $STATE/<name>.pid and its log in $STATE/logs/, and the
# helpers their start-up shares. Needs STATE and a `log` function, and the repository as the
# working directory.

free_port() { # [taken...]: a free loopback port, none of those given
  local port taken
  while :; do
    port=$(e2e/toolchain/node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    for taken in "$@"; do [ "$port" = "$taken" ] && continue 2; done
    printf '%s\n' "$port"
    return
  done
}

ossl() { openssl "$@" 2>/dev/null; }

start() { # name, then the command line; its own session, so `stop` can end its whole group
  local name=$1; shift
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
}

alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

wait_until() { # seconds, description, command...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then log "timed out waiting for $what; see $STATE/logs"; tail -n 20 "$STATE/logs/"*.log >&2 || true; exit 1; fi
    sleep 0.3
  done
}

stop() { # name: TERM to its process group, KILL after 10 s
  local pidfile="$STATE/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}
