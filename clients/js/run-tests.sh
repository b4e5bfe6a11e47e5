#!/usr/bin/env bash
# Runs the JS client's tests against a real Herald.
#
# Builds the Rust binaries the tests start (herald, herald-examples), installs
# the client's dev dependencies (ws, typescript), checks the type
# declarations, and runs the Node tests. By default the tests use
# `herald dev`; HERALD_TEST_SETUP=split runs NATS, edge, router and examples
# as separate processes instead (nats-server must be on PATH).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

(cd "$repo" && cargo build -p herald -p herald-examples)

cd "$here"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run --silent typecheck
npm test
