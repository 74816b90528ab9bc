#!/usr/bin/env bash
# Where a large one-way unary call's time goes, per transport: the large
# scenario of grpc_bench at 1 and 16 MiB (--mib; the 1 MiB calls first, as in
# bench/run.sh, so the allocator is in the state the benchmark measures),
# sampled with `perf record` in both processes, and each 16 MiB call split
# into the sender serialising the message (gRPC's GenericSerialize), the
# transfer (everything between: the transport's copies and wake-ups) and the
# receiver parsing it (GenericDeserialize). Medians over the calls, in ms.
# inproc has no transfer to speak of: its row is gRPC and protobuf alone.
#
#   bench/profile_large.sh [--build DIR] [--mib N] [--calls N] [--out FILE]
#
# Needs perf (Debian linux-perf) and permission to sample (root, or
# kernel.perf_event_paranoid <= 1).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
build=build
mib=16
calls=20
out=""
bench_parse_args build mib calls out -- "$@"
bench_require_bin "$build"
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 1; }
hz=2000
period_ms=$(awk -v hz=$hz 'BEGIN {print 1000 / hz}')
record=(perf record -q -k CLOCK_MONOTONIC -F "$hz" --call-graph=dwarf,4096)
flags=(--scenarios=large --large_mib="1,$mib" --large_calls="$calls")
tmp=$(mktemp -d /tmp/grpc-profile-large.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

measure() {  # transport address
  local transport=$1 address=$2
  rm -f "$tmp"/*.data
  if [ "$transport" = inproc ]; then
    "${record[@]}" -o "$tmp/client.data" "$bin" inproc "${flags[@]}" >"$tmp/result" 2>/dev/null
  else
    if ! bench_start_server "$tmp" "${record[@]}" -o "$tmp/server.data" "$bin" server \
      --transport="$transport" --address="$address"; then
      bench_stop_server || true
      echo "| $transport | FAILED: the server did not start | | | | |"
      return
    fi
    "${record[@]}" -o "$tmp/client.data" "$bin" client --transport="$transport" \
      --address="$server_addr" --server_pid="$server_grpc_pid" "${flags[@]}" >"$tmp/result" 2>/dev/null
    bench_stop_server
  fi
  if grep -q '^FAILED' "$tmp/result"; then
    echo "| $transport | FAILED: $(grep '^FAILED' "$tmp/result" | head -1) | | | | |"
    return
  fi
  python3 bench/profile_large.py --label "$transport" --calls "$calls" --period_ms "$period_ms" \
    "$tmp"/*.data
}

{
  echo "One-way unary $mib MiB, per call (ms, medians; sampled at $hz Hz, so each figure is good to about $period_ms ms), $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
  echo
  echo "| transport | call | serialise (sender) | transfer | parse (receiver) | calls |"
  echo "|---|---|---|---|---|---|"
  measure shm "shm://$tmp/shm.sock"
  measure uds "unix:$tmp/uds.sock"
  measure tcp "127.0.0.1:0"
  measure inproc ""
} | if [ -n "$out" ]; then tee "$out"; else cat; fi
