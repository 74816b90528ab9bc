#!/usr/bin/env bash
# The Bazel build, offline, next to CMake's (README, "Using from Bazel"):
# builds every target, runs `bazel test //...`, then checks that Bazel and
# CMake build the same .cc/.h files under plugin/ (scripts/check_build_lists.py,
# against the CMake tree given, default build/; skipped with --no-parity when
# there is none).
#
#   bash scripts/bazel.sh [--cmake-build=DIR | --no-parity] [bazel flags...]
#
# Bazel 4 (Debian's bazel-bootstrap) against the system gRPC, protobuf, Abseil
# and GoogleTest and the gRPC internal headers scripts/setup.sh fetches;
# .bazelrc and bazel/downloader.cfg make any download an error.
set -euo pipefail
cd "$(dirname "$0")/.."

cmake_build=build
parity=1
bazel_flags=()
for arg in "$@"; do
  case $arg in
    --cmake-build=*) cmake_build=${arg#--cmake-build=} ;;
    --no-parity) parity=0 ;;
    *) bazel_flags+=("$arg") ;;
  esac
done

bash scripts/setup.sh
jobs="$(nproc)"
# Bazel runs tests in a clean environment: pass on the stress size that
# scripts/test.sh lowers for its later steps (connection_test's default is
# ten million frames).
if [ -n "${GRPC_SHM_STRESS_MESSAGES:-}" ]; then
  bazel_flags+=(--test_env=GRPC_SHM_STRESS_MESSAGES)
fi
start=$SECONDS
bazel build --jobs="$jobs" "${bazel_flags[@]}" //...
echo "bazel: build //... took $((SECONDS - start)) s"
start=$SECONDS
bazel test --jobs="$jobs" --local_test_jobs="$jobs" "${bazel_flags[@]}" //...
echo "bazel: test //... took $((SECONDS - start)) s"
if [ "$parity" -eq 1 ]; then
  python3 scripts/check_build_lists.py --cmake-build="$cmake_build"
fi
