#!/usr/bin/env bash
# Builds the libFuzzer fuzzers (fuzz/) with clang into build-fuzz/ and runs
# each for [seconds] (default 60) from its seed corpus, with memory limits so
# that unbounded growth is a finding too. Exits non-zero on any finding
# (crash, sanitizer report, leak, timeout, out-of-memory) and copies the
# input that caused it to fuzz/crashes/: add it to the fuzzer's corpus as
# regression-<what>, next to the fix.
#
#   bash scripts/fuzz.sh [seconds] [fuzzer...]
#
# The repository's corpora are only read: each run works on a copy, so
# nothing it learns is committed by accident (to grow a corpus, merge the
# copy in by hand: <fuzzer> -merge=1 fuzz/corpus/<fuzzer> <copy>).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
build_dir="${GRPC_SHM_FUZZ_BUILD_DIR:-build-fuzz}"
all=(metadata_fuzzer ring_fuzzer handshake_fuzzer outbound_queue_fuzzer transport_inbound_fuzzer)
[ $# -gt 0 ] && fuzzers=("$@") || fuzzers=("${all[@]}")

bash scripts/setup.sh >/dev/null
clang_version=14  # Debian 12's clang, with libFuzzer in libclang-rt-14-dev
# -O1 and line tables only: the build is most of a short run's time, and
# stacks still name lines.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="clang-$clang_version" -DCMAKE_CXX_COMPILER="clang++-$clang_version" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DGRPC_SHM_BUILD_FUZZERS=ON -DGRPC_SHM_BUILD_TESTS=OFF -DGRPC_SHM_BUILD_BENCH=OFF \
  -DGRPC_SHM_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build_dir" -j"$(nproc)" --target "${fuzzers[@]}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS="abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
findings=0
printf '%-26s %8s %10s %8s %8s  %s\n' fuzzer seconds runs exec/s cov result
for f in "${fuzzers[@]}"; do
  flags=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1
         -artifact_prefix="$work/$f-")
  case "$f" in
    metadata_fuzzer) flags+=(-malloc_limit_mb=256 -dict=fuzz/dict/metadata.dict) ;;
    ring_fuzzer | handshake_fuzzer) flags+=(-malloc_limit_mb=256) ;;
    # Messages up to 5 MiB, held as slices and as the model's copy.
    outbound_queue_fuzzer) flags+=(-malloc_limit_mb=512) ;;
    # gRPC keeps per-process state (channels, pools, a server) that outlives
    # any one input, so leaks are not checked per input: the RSS limit (a
    # connection costs a 2 MiB segment) catches what does not come back.
    transport_inbound_fuzzer) flags+=(-malloc_limit_mb=512 -detect_leaks=0) ;;
  esac
  mkdir -p "$work/$f"
  if [ -d "fuzz/corpus/$f" ]; then cp -r "fuzz/corpus/$f/." "$work/$f/"; fi
  rc=0
  "$build_dir/fuzz/$f" "${flags[@]}" "$work/$f" >"$work/$f.log" 2>&1 || rc=$?
  done_line="$(grep -a 'DONE\|INITED' "$work/$f.log" | tail -1 || true)"
  runs="$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$done_line")"
  cov="$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$done_line")"
  execs="$(grep -a 'stat::average_exec_per_sec' "$work/$f.log" | awk '{print $2}' | tail -1 || true)"
  artifacts=("$work/$f"-*)
  if [ "$rc" -ne 0 ] || [ -e "${artifacts[0]}" ]; then
    findings=$((findings + 1))
    mkdir -p fuzz/crashes
    for a in "${artifacts[@]}"; do [ -e "$a" ] && cp "$a" fuzz/crashes/; done
    printf '%-26s %8s %10s %8s %8s  %s\n' "$f" "$seconds" "${runs:--}" "${execs:--}" "${cov:--}" "FINDING (exit $rc)"
    grep -a -m1 -B2 -A30 'ERROR\|runtime error\|invariant failed' "$work/$f.log" | head -60 || tail -40 "$work/$f.log"
    ls "${artifacts[@]}" 2>/dev/null | sed 's|.*/|  saved fuzz/crashes/|' || true
  else
    printf '%-26s %8s %10s %8s %8s  %s\n' "$f" "$seconds" "${runs:--}" "${execs:--}" "${cov:--}" ok
  fi
done
if [ "$findings" -ne 0 ]; then
  echo "fuzz: $findings fuzzer(s) found something; inputs in fuzz/crashes/"
  exit 1
fi
