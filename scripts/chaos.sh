#!/usr/bin/env bash
# kill -9 chaos harness: scripts/chaos.sh [trials] [options], default 1000
# trials (about 1.5 s each on a 2-core VM).
#   --seed=S       replay a run (the seed is printed first)
#   --trial=K      run only trial K of seed S (printed with each failure)
#   --modes=LIST   pollers, default "default,thread" (GRPC_SHM_POLLER unset / =thread)
#   --build=DIR    use the binary built in DIR (default: build/, built if missing)
# Each trial starts a server and a client, puts one scenario's calls in
# flight (handshakes, large messages, streams, paused reading, queued calls),
# SIGKILLs one of them and checks the survivor; see reliability/chaos_driver.cc.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=1000
build_dir=build
args=()
for arg in "$@"; do
  case "$arg" in
    --build=*) build_dir="${arg#--build=}" ;;
    --*) args+=("$arg") ;;
    *) trials="$arg" ;;
  esac
done
binary="$build_dir/reliability/grpc_shm_reliability"
if [[ ! -x "$binary" ]]; then
  bash scripts/build.sh "$build_dir" >/dev/null
fi
exec "$binary" chaos --trials="$trials" "${args[@]}"
