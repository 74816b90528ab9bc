#!/usr/bin/env bash
# The Windows half of the IPC core: cross-builds plugin/ipc, the Windows
# platform backend (plugin/platform/windows) and their tests with mingw-w64
# (cmake/windows, cmake/toolchain-mingw64.cmake) and runs the tests under
# wine. The gRPC transport is not built for Windows (README, Status).
#
#   bash scripts/windows.sh [BUILD_DIR]     (default build-win; GRPC_SHM_JOBS=N caps parallelism)
#
# Wine's timings mean nothing: nothing here measures time.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-win}"
jobs="${GRPC_SHM_JOBS:-$(nproc)}"

bash scripts/setup-windows.sh
cmake -S cmake/windows -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchain-mingw64.cmake" >/dev/null
cmake --build "$build" -j"$jobs"

# A wine prefix of our own outside the repository, next to the gRPC sources
# setup.sh fetches (created on first use: about 10 s and 700 MB, reused
# after), no debug chatter, no Mono/Gecko installer prompts.
export WINEPREFIX="${GRPC_SHM_WINEPREFIX:-${GRPC_SHM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/grpc-shm}/wine}"
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
# One persistent wineserver for all of ctest's wine processes, and wine's
# background processes (services.exe, winedevice.exe, ...) started now with
# their output on /dev/null: started by the first test instead, they would
# inherit that test's stdout and keep it open after it exits, and ctest would
# wait for them until its timeout. Stopped on the way out, pass or fail.
mkdir -p "$WINEPREFIX"  # wineserver runs in it; wineboot fills it on first use
wineserver -p
trap 'wineserver -k 2>/dev/null || true' EXIT
if [ -f "$WINEPREFIX/system.reg" ]; then boot=""; else boot="-i"; fi
wineboot $boot >/dev/null 2>&1 </dev/null || true
ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 300
