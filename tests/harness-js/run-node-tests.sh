#!/usr/bin/env bash
# Runs a Node test directory (tests/pusher, tests/socketio: its *.test.js,
# one file at a time, with node --test) against the repository's debug
# build of herald, which it builds first, after installing the directory's
# locked dependencies (npm ci). Usage: run-node-tests.sh <directory>
set -euo pipefail

dir="$(cd "$1" && pwd)"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

(cd "$repo" && cargo build -p herald)

cd "$dir"
npm ci --no-audit --no-fund
# --test-force-exit: pusher-js (faye-websocket) arms a 30 s close timer when
# it closes a socket the server already closed, which would keep a file
# waiting 30 s after its last test.
node --test --test-force-exit --test-timeout=60000 --test-concurrency=1 ./*.test.js
