#!/usr/bin/env bash
# Runs one gRPC interop case in two processes: starts interop_server on a
# fresh address (TCP port 0, i.e. a free port the kernel picks, or a unique
# shm socket path), waits until it is serving (bounded polling, no fixed
# sleep), runs interop_client for the case, stops the server.
#
#   run_case.sh SERVER_BIN CLIENT_BIN tcp|shm CASE [extra client flags...]
#
# A client still running after INTEROP_CLIENT_TIMEOUT_S (60) is taken for a
# hang: the thread stacks of client and server are dumped (gdb), exit 124.
#
# Exit status: the client's; also non-zero when the server could not start or
# crashed during the case. A server that does not shut down cleanly after
# the client passed is reported but fails the case only with
# INTEROP_STRICT_SHUTDOWN=1.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/interop_lib.sh"

if (( $# < 4 )); then
  echo "usage: $0 SERVER_BIN CLIENT_BIN tcp|shm CASE [client flags...]" >&2
  exit 2
fi
server_bin=$1 client_bin=$2 transport=$3 case_name=$4
shift 4

tmp=$(interop_make_tmpdir) || exit 2
server_pid=
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ready=$tmp/ready
case $transport in
  tcp)
    interop_start_server server_pid "$server_bin" --transport=tcp \
      --address=127.0.0.1:0 --ready_file="$ready"
    interop_wait_ready "$server_pid" "$ready" || exit 1
    address=127.0.0.1:$(interop_ready_value "$ready" tcp_port)
    ;;
  shm)
    sock=$tmp/s.sock
    interop_start_server server_pid "$server_bin" --transport=shm \
      --address="shm://$sock" --ready_file="$ready"
    interop_wait_ready "$server_pid" "$ready" "$sock" || exit 1
    address=shm://$sock
    ;;
  *)
    echo "unknown transport '$transport' (tcp | shm)" >&2
    exit 2
    ;;
esac

INTEROP_SERVER_PID=$server_pid
interop_log "$transport $case_name: server pid $server_pid at $address"
interop_run_client "$transport" "$address" "$case_name" "$client_bin" "$@"
client_rc=$?

if ! kill -0 "$server_pid" 2>/dev/null; then
  wait "$server_pid"; server_rc=$?
  server_pid=
  interop_log "server died during the case (status $server_rc)"
  exit $(( client_rc != 0 ? client_rc : 1 ))
fi
interop_stop_server "$server_pid"; stop_rc=$?
server_pid=
if (( stop_rc != 0 && client_rc == 0 )) && [[ ${INTEROP_STRICT_SHUTDOWN:-0} == 1 ]]; then
  exit 1
fi
interop_log "$transport $case_name: client status $client_rc"
exit "$client_rc"
