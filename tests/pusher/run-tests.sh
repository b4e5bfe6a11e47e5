#!/usr/bin/env bash
# Runs the Pusher-protocol tests: the real pusher-js 8 and Laravel Echo 2
# (and Pusher's own server SDK signing their channels) against `herald edge`
# processes on a real nats-server, which the tests start on free ports.
# nats-server must be on PATH (scripts/lib/tools.sh's ensure_nats_server).
set -euo pipefail

here="$(dirname "${BASH_SOURCE[0]}")"
exec "$here/../harness-js/run-node-tests.sh" "$here"
