#!/usr/bin/env bash
# Where a small unary call's time goes, per transport: the unary latency
# scenario of grpc_bench (22,300 sync calls: 32 B to 1 MiB) with `perf stat`
# counting, in each process, CPU time, context switches, wake-ups and the
# system calls that wait or wake (socket writes and reads, epoll_wait,
# futex), divided by the number of calls. Counts, unlike timings, hardly move
# with the VM's neighbours.
#
#   bench/profile_unary.sh [--build DIR] [--out FILE]
#
# Rows: shm with spinning off, shm with the library's default spin budget,
# UDS, TCP. Needs perf (Debian linux-perf) and permission to count tracepoints
# (root, or kernel.perf_event_paranoid <= 1).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
build=build
out=""
bench_parse_args build out -- "$@"
bench_require_bin "$build"
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 1; }
calls=22300
events=task-clock,context-switches,sched:sched_wakeup,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_recvfrom,syscalls:sys_enter_recvmsg,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex
tmp=$(mktemp -d /tmp/grpc-profile.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

measure() {  # label transport address spin_flags...
  local label=$1 transport=$2 address=$3
  shift 3
  if ! bench_start_server "$tmp" perf stat -x, -e "$events" -o "$tmp/server.csv" \
    "$bin" server --transport="$transport" --address="$address" "$@"; then
    bench_stop_server || true
    echo "| $label | FAILED: the server did not start | | | | | | | | |"
    return
  fi
  perf stat -x, -e "$events" -o "$tmp/client.csv" "$bin" client --transport="$transport" \
    --address="$server_addr" --server_pid="$server_grpc_pid" --scenarios=unary_latency "$@" \
    >"$tmp/result"
  bench_stop_server
  local p50
  p50=$(awk '$4 == "32B" && $5 == "p50_us" {print $6}' "$tmp/result")
  for side in client server; do
    awk -F, -v label="$label" -v side="$side" -v calls="$calls" -v p50="$p50" '
      NF > 2 && $1 != "" { v[$3] = $1 }
      END {
        wr = v["syscalls:sys_enter_sendto"] + v["syscalls:sys_enter_sendmsg"]
        rd = v["syscalls:sys_enter_recvfrom"] + v["syscalls:sys_enter_recvmsg"]
        printf "| %s | %s | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s |\n", label, side,
          v["task-clock"] * 1000 / calls, v["context-switches"] / calls,
          v["sched:sched_wakeup"] / calls, wr / calls, rd / calls,
          v["syscalls:sys_enter_epoll_wait"] / calls, v["syscalls:sys_enter_futex"] / calls,
          side == "client" ? p50 : ""
      }' "$tmp/$side.csv"
  done
}

{
  echo "Per call, unary latency scenario ($calls sync calls, 32 B to 1 MiB), $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
  echo
  echo "| transport | process | CPU us | context switches | wake-ups | socket writes | socket reads | epoll_wait | futex | 32 B p50 us |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  measure "shm, spin off" shm "shm://$tmp/shm.sock" --spin_us=0
  measure "shm, default spin" shm "shm://$tmp/shm2.sock"
  measure "UDS" uds "unix:$tmp/uds.sock"
  measure "TCP" tcp "127.0.0.1:0"
} | if [ -n "$out" ]; then tee "$out"; else cat; fi
