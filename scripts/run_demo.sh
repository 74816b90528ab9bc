#!/usr/bin/env bash
# Runs the demo from an existing build directory ($1, default build/): the
# greeter server in one process, listening on shared memory and on TCP; a
# greeter client in another process calling it over shared memory; then the
# same server timed over both transports.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
bin="$build/examples/helloworld"
tmp=$(mktemp -d /tmp/grpc-shm-demo.XXXXXX)
sock="$tmp/greeter.sock"
"$bin/greeter_server" "shm://$sock" 127.0.0.1:0 >"$tmp/server.out" &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 200); do grep -q "TCP port" "$tmp/server.out" 2>/dev/null && break; sleep 0.05; done
cat "$tmp/server.out"
port=$(sed -n 's/.*TCP port \([0-9]*\).*/\1/p' "$tmp/server.out")
echo "greeter_client (a second process) calls it over shared memory:"
"$bin/greeter_client" "shm://$sock" world
"$bin/greeter_latency" "shm://$sock" "127.0.0.1:$port" 5000
