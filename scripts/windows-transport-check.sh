#!/usr/bin/env bash
# How far plugin/transport is from compiling for Windows: a syntax-only
# mingw-w64 compile of each file against gRPC's headers (Debian's public
# ones and the internal ones setup.sh fetches). Reports; fails nothing, and is
# not part of scripts/test.sh: the transport is not built for Windows yet
# (README, Status). Linking would need gRPC, Abseil and protobuf built for
# Windows, which Debian does not ship.
#
#   bash scripts/windows-transport-check.sh [BUILD_DIR]   (default build-win)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-win}"
bash scripts/setup-windows.sh
grpc_src=$(ls -d "${GRPC_SHM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/grpc-shm}"/grpc-*/ | head -n1)
out="$build/transport-check"
mkdir -p "$out/include"
# Only gRPC's and its dependencies' headers from /usr/include: glibc's must
# not shadow mingw's.
for d in grpc grpcpp grpc++ absl google; do ln -sfn "/usr/include/$d" "$out/include/$d"; done
# windows.h's Yield() and SendMessage macros would rename our methods.
printf '#include <winsock2.h>\n#include <windows.h>\n#undef Yield\n#undef SendMessage\n' \
  >"$out/windows_first.h"
ok=0
failed=0
for f in plugin/transport/*.cc; do
  name=$(basename "$f" .cc)
  if x86_64-w64-mingw32-g++-posix -std=c++17 -fsyntax-only -D_WIN32_WINNT=0x0602 -I. \
    -Iplugin/include -isystem "$grpc_src" -isystem "$out/include" \
    -isystem "$grpc_src/third_party/upb" -isystem "$grpc_src/third_party/xxhash" \
    -isystem "$grpc_src/src/core/ext/upb-generated" -include "$out/windows_first.h" \
    "$f" >"$out/$name.log" 2>&1; then
    echo "compiles  $f"
    ok=$((ok + 1))
  else
    echo "FAILS     $f: $(grep -m1 'error' "$out/$name.log" | sed 's/.*error: //' | cut -c1-100)"
    failed=$((failed + 1))
  fi
done
echo "$ok of $((ok + failed)) transport files compile for Windows (logs in $out/)"
