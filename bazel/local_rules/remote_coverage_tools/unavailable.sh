#!/bin/sh
echo "coverage tools are not available in grpc-shm's offline Bazel build" >&2
exit 1
