#!/usr/bin/env bash
# Builds everything, then runs the main demo: a server and a client in two
# processes talking over shared memory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh build
exec bash scripts/run_demo.sh build
