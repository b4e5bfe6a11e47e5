#!/usr/bin/env bash
# Runs the Socket.IO tests: the real socket.io-client 4 against `herald edge`
# processes and a `herald router` on a real nats-server, with handlers on
# NATS and HTTP, which the tests start on free ports. nats-server must be on
# PATH (scripts/lib/tools.sh's ensure_nats_server).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

(cd "$repo" && cargo build -p herald)

cd "$here"
npm ci --no-audit --no-fund
node --test --test-timeout=60000 --test-concurrency=1 ./*.test.js
