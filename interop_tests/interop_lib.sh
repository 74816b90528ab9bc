# Shared helpers of run_case.sh and run_mixed.sh (sourced, not executed).
#
# Environment knobs:
#   INTEROP_READY_TIMEOUT_S   longest wait for the server to be serving (30)
#   INTEROP_CLIENT_TIMEOUT_S  longest a client may run (60); then the stacks
#                             of client and server are dumped (gdb) and the
#                             client killed
#   INTEROP_STOP_TIMEOUT_S    longest wait for the server to exit on SIGTERM (10)

interop_log() { echo "[interop] $*" >&2; }

# Microseconds since the epoch (bash >= 5).
interop_now_us() { local t=${EPOCHREALTIME//[.,]/}; echo $(( 10#$t )); }

# interop_make_tmpdir: a fresh, short directory (Unix socket paths are limited
# to 107 bytes, so not under a possibly long $TMPDIR).
interop_make_tmpdir() {
  mktemp -d /tmp/grpc-shm-interop.XXXXXX
}

# interop_start_server OUTVAR SERVER_BIN ARGS...: start the server in the
# background (its output to stderr), store its pid in OUTVAR.
interop_start_server() {
  local __var=$1; shift
  "$@" 1>&2 &
  printf -v "$__var" '%s' "$!"
}

# interop_wait_ready PID READY_FILE [SOCKET_PATH]: poll, within a bounded time,
# until the server has written READY_FILE (and SOCKET_PATH exists as a socket,
# when given). Fails early if the server exits.
interop_wait_ready() {
  local pid=$1 ready=$2 sock=${3:-}
  local limit_us=$(( ${INTEROP_READY_TIMEOUT_S:-30} * 1000000 ))
  local start_us=$(interop_now_us)
  while :; do
    if [[ -s $ready ]] && { [[ -z $sock ]] || [[ -S $sock ]]; }; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"; local rc=$?
      interop_log "server exited (status $rc) before it was ready"
      return 1
    fi
    if (( $(interop_now_us) - start_us >= limit_us )); then
      interop_log "server not ready after ${INTEROP_READY_TIMEOUT_S:-30} s"
      return 1
    fi
    sleep 0.01
  done
}

# interop_ready_value READY_FILE KEY: the value of KEY=... in READY_FILE.
interop_ready_value() {
  sed -n "s/^$2=//p" "$1" | head -n1
}

# interop_stop_server PID: SIGTERM, wait (bounded) for a clean exit, else
# SIGKILL. Returns 0 if the server exited cleanly, 1 otherwise.
interop_stop_server() {
  local pid=$1
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"; local rc=$?
    interop_log "server had already exited (status $rc)"
    return 1
  fi
  kill -TERM "$pid" 2>/dev/null
  local limit_us=$(( ${INTEROP_STOP_TIMEOUT_S:-10} * 1000000 ))
  local start_us=$(interop_now_us)
  while kill -0 "$pid" 2>/dev/null; do
    if (( $(interop_now_us) - start_us >= limit_us )); then
      interop_log "server did not exit ${INTEROP_STOP_TIMEOUT_S:-10} s after SIGTERM: SIGKILL"
      interop_dump_stacks "server (shutdown)" "$pid"
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      return 1
    fi
    sleep 0.01
  done
  wait "$pid"; local rc=$?
  if (( rc != 0 )); then
    interop_log "server exit status $rc after SIGTERM"
    return 1
  fi
  return 0
}

# interop_dump_stacks WHAT PID: all thread backtraces of PID (if gdb exists),
# to diagnose a hang.
interop_dump_stacks() {
  local what=$1 pid=$2
  if ! command -v gdb >/dev/null 2>&1; then
    interop_log "(no gdb: cannot dump the $what's stacks)"
    return 0
  fi
  interop_log "---- $what (pid $pid) thread backtraces ----"
  timeout 60 gdb -p "$pid" -batch -nx -ex "set pagination off" \
    -ex "thread apply all bt" 2>&1 | grep -v '^\[New LWP\|^\[Thread debugging\|^Using host' >&2
  interop_log "---- end of $what backtraces ----"
}

# interop_run_client TRANSPORT ADDRESS CASES CLIENT_BIN [EXTRA...]: run the
# client, waiting at most INTEROP_CLIENT_TIMEOUT_S; returns its status, or 124
# after a timeout, in which case the stacks of the client and of the server
# (pid in INTEROP_SERVER_PID, if set) are dumped first.
interop_run_client() {
  local transport=$1 address=$2 cases=$3 client=$4; shift 4
  "$client" --transport="$transport" --address="$address" \
    --test_case="$cases" "$@" &
  local cpid=$!
  local limit_us=$(( ${INTEROP_CLIENT_TIMEOUT_S:-60} * 1000000 ))
  local start_us=$(interop_now_us)
  while kill -0 "$cpid" 2>/dev/null; do
    if (( $(interop_now_us) - start_us >= limit_us )); then
      interop_log "$transport client ($cases) still running after ${INTEROP_CLIENT_TIMEOUT_S:-60} s: hang?"
      interop_dump_stacks "$transport client" "$cpid"
      if [[ -n ${INTEROP_SERVER_PID:-} ]]; then
        interop_dump_stacks server "$INTEROP_SERVER_PID"
      fi
      kill -KILL "$cpid" 2>/dev/null
      wait "$cpid" 2>/dev/null
      return 124
    fi
    sleep 0.02
  done
  wait "$cpid"
}
