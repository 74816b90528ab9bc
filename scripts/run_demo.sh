#!/usr/bin/env bash
# Runs the demo from an existing build directory ($1, default build/).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
sock="/tmp/grpc-shm-demo-$$.sock"
"$build/examples/ipc_ping_pong/ipc_ping_pong" server "$sock" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$sock"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
"$build/examples/ipc_ping_pong/ipc_ping_pong" client "$sock" 20000
wait $server
