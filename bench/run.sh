#!/usr/bin/env bash
# Compares grpc-shm with gRPC over TCP loopback, a Unix domain socket and
# inproc, in one run, and writes a report.
#
#   bench/run.sh [--quick] [--build DIR] [--out DIR] [--repeat N] [--spin-us N]
#                [--tail-rounds N]
#
# --spin-us: shm's spin budget for the main shm runs (default: the library's,
# ShmOptions::spin_budget). Whatever it is, every round also runs unary
# latency and CPU per call with spinning off (shm_spin0) and at 200 us
# (shm_spin200), so spin settings are compared in the same run.
#
# --quick: a smoke run (< 2 min) that proves every scenario works; CI runs it.
# Each scenario runs in its own server and client processes, so that no
# figure depends on what ran before it in the same process.
# Full mode repeats each transport's run (default 3 times), then runs the
# unary latency scenario N more times (default 4) with transports alternating,
# and reports medians (and, in the CSV and JSON, the best of the runs, labelled
# so). Results: DIR/results.csv, results.json, results.md, results.png.
# A failed call fails its measurement and its run: the report lists the
# failures, and this script exits 1 naming the runs that failed, after
# finishing the others.
# Where shm is built, each round also runs unary latency against the layout
# users deploy: one server listening on shm, UDS and TCP at once, called over
# shm (reported as transport shm_mixed).
# The fairness scenario (shm only) starts its own flooding processes
# (grpc_bench flood): raw connections that keep the server reading cheap
# frames while one client measures its unary latency.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

quick=""
build=build
out=""
repeat=""
spin_us=""
tail_rounds=4
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=--quick ;;
    --build) build="$2"; shift ;;
    --out) out="$2"; shift ;;
    --repeat) repeat="$2"; shift ;;
    --spin-us) spin_us="$2"; shift ;;
    --tail-rounds) tail_rounds="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$repeat" ] || repeat=$([ -n "$quick" ] && echo 1 || echo 3)
[ -n "$out" ] || out=bench/results/$([ -n "$quick" ] && echo quick || echo latest)
mkdir -p "$out"
bench_require_bin "$build"

transports="tcp uds inproc"
mixed=""
probe=$("$bin" server --transport=shm --address=/dev/null/x </dev/null 2>&1 || true)
if grep -q "built without" <<<"$probe"; then
  echo "note: built without the shm transport; comparing gRPC's own transports only" >&2
else
  transports="shm tcp uds inproc"
  mixed="shm_mixed shm_spin0 shm_spin200"
fi

raw="$out/raw.txt"
: >"$raw"
failures=()
label=""  # the run in progress, for failure messages
fail() {  # transport what
  failures+=("$label: $1: $2")
  echo "RUNFAILED $1 $2" >>"$raw"
  echo "  FAILED: $label: $1: $2" >&2
}
tmp=$(mktemp -d /tmp/grpc-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

server_flags=()  # extra server flags for the next run_with_server
run_with_server() {  # transport address [extra client flags]
  local transport=$1 address=$2
  shift 2
  local spin=() rc=0
  [ -z "$spin_us" ] || spin=(--spin_us="$spin_us")
  if ! bench_start_server "$tmp" "$bin" server --transport="$transport" --address="$address" \
    ${spin[@]+"${spin[@]}"} ${server_flags[@]+"${server_flags[@]}"}; then
    fail "$transport" "server did not start"
  else
    # pipefail: rc is the client's status when it fails.
    "$bin" client --transport="$transport" --address="$server_addr" \
      --server_pid="$server_grpc_pid" ${spin[@]+"${spin[@]}"} $quick "$@" | tee -a "$raw" |
      sed "s/^/  /" || rc=$?
    [ "$rc" = 0 ] || fail "$transport" "client exited with status $rc"
  fi
  rc=0
  bench_stop_server || rc=$?
  [ "$rc" = 0 ] || fail "$transport" "server exited with status $rc"
}

{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "kernel: $(uname -sr)"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "mode: $([ -n "$quick" ] && echo quick || echo full), repeats: $repeat, shm spin: ${spin_us:-library default} us"
} >"$out/machine.txt"
cat "$out/machine.txt"

run_transport() {  # transport [extra client flags]
  local t=$1
  shift
  # Which runs each figure should have values from: report.py marks figures
  # that have fewer (a run that failed) instead of taking the median of the rest.
  local scenarios=all
  for a in "$@"; do case $a in --scenarios=*) scenarios=${a#--scenarios=} ;; esac; done
  case $t in
    shm_mixed) scenarios=unary_latency ;;
    shm_spin*) scenarios=unary_latency,cpu ;;
  esac
  echo "RUN $t $scenarios" >>"$raw"
  case $t in
    tcp) run_with_server tcp "127.0.0.1:0" "$@" ;;
    uds) run_with_server uds "unix:$tmp/uds.sock" "$@" ;;
    shm) run_with_server shm "shm://$tmp/shm.sock" "$@" ;;
    # The layout users deploy: one server listening on shm, UDS and TCP at
    # once; the client calls over shm. Unary latency only.
    shm_mixed)
      server_flags=(--also_listen="unix:$tmp/mixed.sock,127.0.0.1:0")
      run_with_server shm "shm://$tmp/mixed-shm.sock" --label=shm_mixed \
        --scenarios=unary_latency
      server_flags=()
      ;;
    # Spin settings next to the default: off, and a long budget.
    shm_spin*)
      local saved=$spin_us
      spin_us=${t#shm_spin}
      run_with_server shm "shm://$tmp/$t.sock" --label="$t" --scenarios=unary_latency,cpu
      spin_us=$saved
      ;;
    inproc)
      local rc=0
      "$bin" inproc $quick "$@" | tee -a "$raw" | sed "s/^/  /" || rc=$?
      [ "$rc" = 0 ] || fail inproc "exited with status $rc"
      ;;
  esac
}

# Each scenario in fresh processes: in one client process that ran them all,
# what earlier scenarios left in the allocator decided what later ones paid
# (16 MiB calls over shm lost 40% after the streaming scenario, in page
# faults of gRPC's serialisation buffers), so figures depended on the order.
scenarios_of() {  # transport
  case $1 in
    shm) echo unary_latency stream large sweep concurrency scale idle cpu fairness ;;
    tcp | uds) echo unary_latency stream large sweep concurrency scale idle cpu ;;
    inproc) echo unary_latency stream large sweep concurrency cpu ;;
    *) echo all ;;
  esac
}

for r in $(seq "$repeat"); do
  for t in $transports $mixed; do
    label="run $r/$repeat"
    echo "== $label: $t"
    for sc in $(scenarios_of "$t"); do
      if [ "$sc" = all ]; then run_transport "$t"; else run_transport "$t" --scenarios="$sc"; fi
    done
  done
done

# Tail latency is what this VM's neighbours disturb most (p99 of one
# transport moved 4x between repeats): in full mode the unary latency
# scenario runs $tail_rounds more times, transports alternating, so its
# medians come from runs spread over time and interleaved.
if [ -z "$quick" ]; then
  for r in $(seq "$tail_rounds"); do
    for t in $transports $mixed; do
      label="unary latency, extra round $r/$tail_rounds"
      echo "== $label: $t"
      run_transport "$t" --scenarios=unary_latency
    done
  done
fi

python3 bench/report.py "$out"
echo "report: $out/results.md"
if [ ${#failures[@]} -gt 0 ]; then
  echo "benchmark FAILED: ${#failures[@]} failed run(s) (FAILED lines above and in $raw):" >&2
  printf '  %s\n' "${failures[@]}" >&2
  exit 1
fi
