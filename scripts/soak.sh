#!/usr/bin/env bash
# Soak test: scripts/soak.sh [minutes] [options], default 10 minutes.
#   --seconds=N    run length in seconds instead (CI: about 60)
#   --clients=N --threads=N   client processes and threads in each (4 x 3)
#   --seed=S       replay the call mix of a run
#   --build=DIR    use the binary built in DIR (default: build/, built if missing)
# Many clients run mixed unary/streaming/large calls with a CRC-32 on every
# message, opening and closing channels; RSS, descriptors, threads and memfd
# mappings of every process are sampled once a second. Passes when nothing
# is lost or corrupted and no sample series rises after the warm-up; see
# reliability/soak.cc.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=10
build_dir=build
args=()
for arg in "$@"; do
  case "$arg" in
    --build=*) build_dir="${arg#--build=}" ;;
    --*) args+=("$arg") ;;
    *) minutes="$arg" ;;
  esac
done
binary="$build_dir/reliability/grpc_shm_reliability"
if [[ ! -x "$binary" ]]; then
  bash scripts/build.sh "$build_dir" >/dev/null
fi
exec "$binary" soak --seconds="$((minutes * 60))" "${args[@]}"
