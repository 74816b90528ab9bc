#!/usr/bin/env bash
# Installs everything grpc-shm needs on Debian 12 and fetches the internal
# headers of the *installed* gRPC from Debian's source package.
# Safe to run repeatedly: each step is skipped when already done.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config ninja-build
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc
  libprotobuf-dev protobuf-compiler libabsl-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  dpkg-dev gnuplot-nox
  clang-14 libclang-rt-14-dev  # libFuzzer for the fuzzers (scripts/fuzz.sh)
  bazel-bootstrap  # Bazel 4, for the Bazel build (scripts/bazel.sh)
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Where the fetched gRPC source lives: outside the repository, reused across builds.
GRPC_SRC_CACHE="${GRPC_SHM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/grpc-shm}"

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

grpc_version=$(dpkg-query -W -f='${Version}' libgrpc-dev)   # e.g. 1.51.1-3+b1
upstream=${grpc_version%%-*}                                # 1.51.1
src_dir="$GRPC_SRC_CACHE/grpc-$upstream"

if [ ! -f "$src_dir/src/core/lib/transport/transport_impl.h" ]; then
  # Debian's source package needs a deb-src entry for the suites apt already uses.
  if ! apt-get indextargets 2>/dev/null | grep -q 'Created-By: Sources'; then
    echo "setup: adding deb-src entries"
    srcfile=/etc/apt/sources.list.d/grpc-shm-deb-src.sources
    if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1 &&
       grep -q '^Types: deb$' /etc/apt/sources.list.d/debian.sources 2>/dev/null; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $SUDO tee "$srcfile" >/dev/null
    else
      grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | sed 's/^deb /deb-src /' |
        $SUDO tee /etc/apt/sources.list.d/grpc-shm-deb-src.list >/dev/null
    fi
    $SUDO apt-get update -qq
  fi
  mkdir -p "$GRPC_SRC_CACHE"
  (
    cd "$GRPC_SRC_CACHE"
    # The source version may lack the binNMU suffix (+b1) of the binary package.
    src_version=${grpc_version%%+b*}
    echo "setup: fetching Debian source grpc=$src_version"
    apt-get source --download-only -qq "grpc=$src_version" >/dev/null
    orig=$(ls grpc_"$upstream".orig.tar.* | head -n1)
    rm -rf "$src_dir.tmp" && mkdir -p "$src_dir.tmp"
    tar -xf "$orig" -C "$src_dir.tmp" --strip-components=1
    rm -rf "$src_dir" && mv "$src_dir.tmp" "$src_dir"
  )
fi

echo "setup: gRPC $upstream, internal headers at $src_dir"
