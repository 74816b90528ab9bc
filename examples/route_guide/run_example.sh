#!/usr/bin/env bash
# Runs route_guide_server and route_guide_client as two processes over shared
# memory on a socket in a fresh temporary directory; exits with the client's
# status.
#
#   run_example.sh <route_guide_server> <route_guide_client>
set -u
server_bin=$1
client_bin=$2

dir=$(mktemp -d "${TMPDIR:-/tmp}/route_guide.XXXXXX")
sock=$dir/route_guide.sock
server_pid=
# shellcheck disable=SC2317  # called via the EXIT trap
cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

"$server_bin" "shm://$sock" &
server_pid=$!

# Wait for the listening socket: at most 200 polls of 0.05 s (10 s).
for ((i = 0; i < 200; i++)); do
  [[ -S $sock ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run_example.sh: server exited before listening" >&2
    exit 1
  fi
  sleep 0.05
done
if [[ ! -S $sock ]]; then
  echo "run_example.sh: no socket at $sock after 10 s" >&2
  exit 1
fi

"$client_bin" "shm://$sock"
status=$?
echo "run_example.sh: client exited with status $status"
exit "$status"
