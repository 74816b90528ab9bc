#!/usr/bin/env bash
# Installs what the Windows cross build needs (scripts/windows.sh), from the
# Debian archive: the mingw-w64 C++ compiler with the posix thread model
# (std::thread, std::mutex) and wine64 to run the tests. GoogleTest is built
# from Debian's source (googletest, installed by scripts/setup.sh).
# A no-op when everything is there.
set -euo pipefail

PACKAGES=(g++-mingw-w64-x86-64-posix wine64 wine googletest)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-windows: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
