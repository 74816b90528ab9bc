#!/usr/bin/env bash
# Unary 32 B p50 with client and server pinned (taskset) to the same CPU and
# to different CPUs, per transport, in one run: the issue-12 rows that show
# what a cross-CPU wake-up costs each transport. Median of --rounds rounds
# (transports alternate within a round).
# A third placement, different CPUs with both kept awake, runs a busy loop of
# the idle scheduling class (chrt --idle) on each CPU: any woken task preempts
# it at once, but the CPU never halts. On a VM a halted vCPU is descheduled by
# the host, and waking it costs far more than the wake-up itself; this row
# shows how much of a transport's cross-CPU latency is that.
#
#   bench/pinned_unary.sh [--build DIR] [--rounds N] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
build=build
rounds=3
out=""
bench_parse_args build rounds out -- "$@"
bench_require_bin "$build"
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs" >&2; exit 1; }
tmp=$(mktemp -d /tmp/grpc-pinned.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

p50() {  # server_cpu client_cpu transport address [client flags]
  local scpu=$1 ccpu=$2 transport=$3 address=$4
  shift 4
  if ! bench_start_server "$tmp" taskset -c "$scpu" "$bin" server --transport="$transport" \
    --address="$address" "$@"; then
    bench_stop_server || true
    echo FAILED
    return
  fi
  local rc=0
  taskset -c "$ccpu" "$bin" client --transport="$transport" --address="$server_addr" \
    --server_pid="$server_grpc_pid" --scenarios=unary_latency "$@" >"$tmp/result" || rc=$?
  bench_stop_server || rc=$?
  if [ "$rc" != 0 ] || grep -q '^FAILED' "$tmp/result"; then echo FAILED; return; fi
  awk '$4 == "32B" && $5 == "p50_us" {print $6}' "$tmp/result"
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

rows=("shm, spin off|shm|--spin_us=0" "shm, default spin|shm|" "UDS|uds|" "TCP|tcp|")
declare -A got
for r in $(seq "$rounds"); do
  for placement in same different awake; do
    ccpu=0
    [ "$placement" = same ] && scpu=0 || scpu=1
    keepers=()
    if [ "$placement" = awake ]; then
      for cpu in 0 1; do
        chrt --idle 0 taskset -c "$cpu" sh -c 'while :; do :; done' &
        keepers+=($!)
      done
    fi
    for row in "${rows[@]}"; do
      IFS='|' read -r label transport flags <<<"$row"
      case $transport in
        shm) address="shm://$tmp/s.sock" ;;
        uds) address="unix:$tmp/u.sock" ;;
        tcp) address="127.0.0.1:0" ;;
      esac
      # shellcheck disable=SC2086
      got["$label|$placement"]+="$(p50 "$scpu" "$ccpu" "$transport" "$address" $flags) "
    done
    if [ ${#keepers[@]} -gt 0 ]; then kill "${keepers[@]}" && wait "${keepers[@]}" 2>/dev/null || true; fi
  done
done

{
  echo "Unary 32 B p50 (us), client and server pinned with taskset, median of $rounds rounds, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
  echo
  echo "| transport | same CPU | different CPUs | different CPUs, kept awake | runs (same / different / awake) |"
  echo "|---|---|---|---|---|"
  for row in "${rows[@]}"; do
    label=${row%%|*}
    same=${got["$label|same"]}
    diff=${got["$label|different"]}
    # A failed run is reported, never dropped: it makes the median FAILED.
    ms=$(grep -q FAILED <<<"$same" && echo FAILED || tr ' ' '\n' <<<"$same" | grep . | median)
    md=$(grep -q FAILED <<<"$diff" && echo FAILED || tr ' ' '\n' <<<"$diff" | grep . | median)
    awake=${got["$label|awake"]}
    ma=$(grep -q FAILED <<<"$awake" && echo FAILED || tr ' ' '\n' <<<"$awake" | grep . | median)
    echo "| $label | $ms | $md | $ma | $same/ $diff/ $awake|"
  done
} | if [ -n "$out" ]; then tee "$out"; else cat; fi
