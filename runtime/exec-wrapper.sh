#!/bin/bash
# Lambda starts the Node.js runtime through this script (AWS_LAMBDA_EXEC_WRAPPER, set in serverless.yml),
# passing it the runtime's own command line: the node binary, node's flags, the runtime's entry point.
# It runs that same command with V8_FLAGS placed right after the binary: V8 flags that NODE_OPTIONS
# refuses, such as the defaults --no-concurrent-recompilation --max-opt=2 (README, "Benchmarks": memory).
# Nothing else changes; with V8_FLAGS empty the command runs exactly as Lambda gave it.
set -f # V8_FLAGS is split on spaces on purpose, and never expanded as a file pattern.
node="$1"
shift
# shellcheck disable=SC2086
exec "$node" $V8_FLAGS "$@"
