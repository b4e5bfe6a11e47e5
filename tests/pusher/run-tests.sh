#!/usr/bin/env bash
# Runs the Pusher-protocol tests: the real pusher-js 8 and Laravel Echo 2
# (and Pusher's own server SDK signing their channels) against `herald edge`
# processes on a real nats-server, which the tests start on free ports.
# nats-server must be on PATH (scripts/lib/tools.sh's ensure_nats_server).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

(cd "$repo" && cargo build -p herald)

cd "$here"
npm ci --no-audit --no-fund
node --test --test-timeout=60000 --test-concurrency=1 ./*.test.js
