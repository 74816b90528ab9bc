#!/usr/bin/env bash
# Builds everything and runs the whole test suite:
#   1. the normal build: every ctest test (unit, cross-process, transport,
#      interop), plus a quick benchmark smoke run (checks it works, not timings);
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build of the IPC core
#      and transport tests; any sanitizer report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"

echo "== build (RelWithDebInfo)"
bash scripts/build.sh build
echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 900

echo "== benchmark smoke runs (they prove the harness works; timings are not checked)"
build/bench/ipc_bench --quick >/dev/null
bash bench/run.sh --quick --build build >/dev/null

echo "== build (ASan + UBSan)"
bash scripts/build.sh build-asan -DGRPC_SHM_SANITIZE=ON -DGRPC_SHM_BUILD_BENCH=OFF \
  -DGRPC_SHM_BUILD_EXAMPLES=OFF
echo "== tests under ASan + UBSan"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# Fewer stress frames: the normal build already proves ten million.
export GRPC_SHM_STRESS_MESSAGES=400000
ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 900 -L 'ipc|transport'

# ---- fuzzers (issue 11): the libFuzzer fuzzers of fuzz/, built with clang, 20 s
# each from their seed corpora (regression inputs included); any finding fails.
echo "== fuzzers (20 s each)"
bash scripts/fuzz.sh 20
