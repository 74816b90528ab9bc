#!/usr/bin/env bash
# Large one-way unary calls with glibc's allocator as it comes and with its
# freed pages kept, per transport, with the fresh pages (minor faults) each
# call costs the client and the server.
#
# gRPC serialises a large message into new 1 MiB slices and protobuf parses
# it into a new string of its size; whether those pages are fresh on every
# call depends on glibc's malloc: by default it hands freed memory at the top
# of the heap back to the kernel once more than twice its (adaptive) mmap
# threshold is free, so each call faults every page in again; in a process
# that has freed a larger mapped block (inproc: the server's parse in the
# client's process) the threshold is higher and the pages stay. "kept" runs
# every transport with the thresholds fixed high (GLIBC_TUNABLES below, what
# a deployment that moves large messages might set), so what is left is the
# transports' own work. Rounds alternate the modes and transports; figures
# are medians over the rounds, MB/s as in bench/run.sh's large scenario.
#
#   bench/large_allocator.sh [--build DIR] [--rounds N] [--mib 1,16,64] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
build=build
rounds=3
mib=1,16,64
out=""
bench_parse_args build rounds mib out -- "$@"
bench_require_bin "$build"
kept_tunables="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"
tmp=$(mktemp -d /tmp/grpc-large-allocator.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
raw="$tmp/raw.txt"
: >"$raw"

run() {  # mode transport
  local mode=$1 transport=$2 address rc=0
  local env=(env -u GLIBC_TUNABLES)
  [ "$mode" = default ] || env=(env GLIBC_TUNABLES="$kept_tunables")
  local flags=(--scenarios=large --large_mib="$mib")
  case $transport in
    tcp) address=127.0.0.1:0 ;;
    uds) address=unix:$tmp/uds.sock ;;
    shm) address=shm://$tmp/shm.sock ;;
  esac
  if [ "$transport" = inproc ]; then
    "${env[@]}" "$bin" inproc "${flags[@]}" >"$tmp/out" || rc=$?
  elif ! bench_start_server "$tmp" "${env[@]}" "$bin" server --transport="$transport" \
    --address="$address"; then
    echo "RUNFAILED $mode $transport server did not start" >>"$raw"
    bench_stop_server || true
    return
  else
    "${env[@]}" "$bin" client --transport="$transport" --address="$server_addr" \
      --server_pid="$server_grpc_pid" "${flags[@]}" >"$tmp/out" || rc=$?
    bench_stop_server || rc=$?
  fi
  sed "s/^/$mode /" "$tmp/out" >>"$raw"
  [ "$rc" = 0 ] || echo "RUNFAILED $mode $transport exit status $rc" >>"$raw"
}

for round in $(seq "$rounds"); do
  for mode in default kept; do
    for transport in shm uds tcp inproc; do
      echo "round $round: $mode allocator, $transport" >&2
      run "$mode" "$transport"
    done
  done
done

report=$(python3 - "$raw" "$kept_tunables" "$rounds" <<'EOF'
import collections, statistics, sys
raw, tunables, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
vals, failures = collections.defaultdict(list), []
for line in open(raw):
    p = line.split()
    if len(p) == 7 and p[1] == "RESULT":
        vals[(p[0], p[2], p[3], p[4], p[5])].append(float(p[6]))
    elif len(p) >= 2 and (p[1] == "FAILED" or p[0] == "RUNFAILED"):
        failures.append(line.strip())
med = {k: statistics.median(v) for k, v in vals.items()}
def fmt(v):
    return "n/a" if v is None else f"{v:,.0f}"
def cell(k):
    v = med.get(k)
    n = len(vals.get(k, []))
    return fmt(v) + ("" if v is None or n == rounds else f" ({n} of {rounds} runs)")
sizes = sorted({k[3] for k in vals if k[2] == "large_unary"}, key=lambda s: int(s[:-3]))
out = []
if failures:
    out += ["FAILED: " + f for f in failures] + [""]
out += [f"Medians of {rounds} rounds; 'kept': GLIBC_TUNABLES={tunables} in client and server.",
        "Page faults: minor faults per call (4 KiB each unless a huge page); inproc's one process is",
        "counted as the client.", ""]
out += ["| allocator | size | transport | MB/s | client faults/call | server faults/call | shm/this MB/s |",
        "|---|---|---|---|---|---|---|"]
for mode in ("default", "kept"):
    for size in sizes:
        shm = med.get((mode, "shm", "large_unary", size, "MB_per_s"))
        for t in ("shm", "uds", "tcp", "inproc"):
            k = lambda m: (mode, t, "large_unary", size, m)
            mb = med.get(k("MB_per_s"))
            r = f"{shm / mb:.2f}x" if shm and mb else "n/a"
            out.append(f"| {mode} | {size} | {t} | {cell(k('MB_per_s'))} | "
                       f"{cell(k('client_faults_per_call'))} | {cell(k('server_faults_per_call'))} | {r} |")
print("\n".join(out))
EOF
)
report="Large one-way unary calls and the allocator, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores

$report"
echo "$report"
[ -z "$out" ] || echo "$report" >"$out"
! grep -q "FAILED" "$raw"
