#!/usr/bin/env bash
# The gRPC transport compiled for Windows: a syntax-only mingw-w64 compile of
# each plugin/transport/*.cc against gRPC's headers (Debian's public ones and
# the internal ones setup.sh fetches), with the defines of the Windows build
# (cmake/windows). Fails if any file does not compile; scripts/test.sh runs it
# after scripts/windows.sh. Nothing is linked or run: that would need gRPC,
# Abseil and protobuf built for Windows, which Debian does not ship (README,
# Status).
#
#   bash scripts/windows-transport-check.sh [BUILD_DIR]   (default build-win;
#                                                         GRPC_SHM_JOBS=N caps parallelism)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-win}"
jobs="${GRPC_SHM_JOBS:-$(nproc)}"
bash scripts/setup-windows.sh
grpc_src=$(ls -d "${GRPC_SHM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/grpc-shm}"/grpc-*/ | head -n1)
out="$build/transport-check"
rm -rf "$out"
mkdir -p "$out/include"
# Only gRPC's and its dependencies' headers from /usr/include: glibc's must
# not shadow mingw's.
for d in grpc grpcpp grpc++ absl google; do ln -sfn "/usr/include/$d" "$out/include/$d"; done

# One file: its log in $out/NAME.log, and NAME.ok when it compiles.
check_one() {
  local f="$1" name
  name=$(basename "$f" .cc)
  if x86_64-w64-mingw32-g++-posix -std=c++17 -fsyntax-only \
    -D_WIN32_WINNT=0x0602 -DWINVER=0x0602 -DUNICODE -D_UNICODE -I. \
    -Iplugin/include -isystem "$grpc_src" -isystem "$out/include" \
    -isystem "$grpc_src/third_party/upb" -isystem "$grpc_src/third_party/xxhash" \
    -isystem "$grpc_src/src/core/ext/upb-generated" \
    "$f" >"$out/$name.log" 2>&1; then
    touch "$out/$name.ok"
  fi
}
export -f check_one
export grpc_src out
printf '%s\n' plugin/transport/*.cc | xargs -P "$jobs" -I{} bash -c 'check_one "$1"' _ {}

ok=0
failed=0
for f in plugin/transport/*.cc; do
  name=$(basename "$f" .cc)
  if [ -f "$out/$name.ok" ]; then
    ok=$((ok + 1))
  else
    echo "FAILS     $f: $(grep -m1 'error' "$out/$name.log" | sed 's/.*error: //' | cut -c1-100)"
    failed=$((failed + 1))
  fi
done
echo "$ok of $((ok + failed)) transport files compile for Windows (logs in $out/)"
[ "$failed" -eq 0 ]
