#!/usr/bin/env bash
# Runs the Socket.IO tests: the real socket.io-client 4 against `herald edge`
# processes and a `herald router` on a real nats-server, with handlers on
# NATS and HTTP, which the tests start on free ports. nats-server must be on
# PATH (scripts/lib/tools.sh's ensure_nats_server).
set -euo pipefail

here="$(dirname "${BASH_SOURCE[0]}")"
exec "$here/../harness-js/run-node-tests.sh" "$here"
