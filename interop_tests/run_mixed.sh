#!/usr/bin/env bash
# The mixed-server test: ONE interop_server process serving the TestService on
# TCP and on shm at once, and two interop_client processes, one per
# transport, running the same batch of cases concurrently against it.
#
#   run_mixed.sh SERVER_BIN CLIENT_BIN CASES [extra client flags...]
#
# CASES is a comma-separated list (e.g. large_unary,ping_pong,rpc_soak).
# Exit status: 0 only if both clients passed and the server survived.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/interop_lib.sh"

if (( $# < 3 )); then
  echo "usage: $0 SERVER_BIN CLIENT_BIN CASES [client flags...]" >&2
  exit 2
fi
server_bin=$1 client_bin=$2 cases=$3
shift 3

tmp=$(interop_make_tmpdir) || exit 2
server_pid= tcp_pid= shm_pid=
cleanup() {
  local p
  for p in $tcp_pid $shm_pid $server_pid; do
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ready=$tmp/ready
sock=$tmp/s.sock
interop_start_server server_pid "$server_bin" --transport=both \
  --tcp_address=127.0.0.1:0 --shm_address="shm://$sock" --ready_file="$ready"
interop_wait_ready "$server_pid" "$ready" "$sock" || exit 1
tcp_address=127.0.0.1:$(interop_ready_value "$ready" tcp_port)
shm_address=shm://$sock
INTEROP_SERVER_PID=$server_pid
interop_log "mixed: server pid $server_pid on $tcp_address and $shm_address"

interop_run_client tcp "$tcp_address" "$cases" "$client_bin" "$@" \
  > >(sed 's/^/[tcp] /') 2>&1 &
tcp_pid=$!
interop_run_client shm "$shm_address" "$cases" "$client_bin" "$@" \
  > >(sed 's/^/[shm] /') 2>&1 &
shm_pid=$!
wait "$tcp_pid"; tcp_rc=$?; tcp_pid=
wait "$shm_pid"; shm_rc=$?; shm_pid=
interop_log "mixed: tcp client status $tcp_rc, shm client status $shm_rc"

rc=0
(( tcp_rc == 0 && shm_rc == 0 )) || rc=1
if ! kill -0 "$server_pid" 2>/dev/null; then
  wait "$server_pid"; server_rc=$?; server_pid=
  interop_log "server died during the run (status $server_rc)"
  exit 1
fi
interop_stop_server "$server_pid"; stop_rc=$?
server_pid=
if (( stop_rc != 0 )) && [[ ${INTEROP_STRICT_SHUTDOWN:-0} == 1 ]]; then
  rc=1
fi
exit "$rc"
