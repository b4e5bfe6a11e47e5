#!/usr/bin/env bash
# `just php-demo`: the PHP example beside Herald, with no NATS: `herald dev`
# routes `$connect` and the chat's actions to herald.php (routes.toml), and
# `php -S` serves the app. Open http://127.0.0.1:8000/ in two browsers.
#
# HERALD_BIN runs that binary instead of building one. Against a real edge,
# router and NATS, run only the `php -S` line with HERALD_API_URL (the
# router's), HERALD_WS_URL (the edge's /ws), HERALD_API_KEY and
# HERALD_WEBHOOK_SECRET set, and give the router routes.toml.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

export HERALD_API_KEY="${HERALD_API_KEY:-php-demo-api-key}"
export HERALD_WEBHOOK_SECRET="${HERALD_WEBHOOK_SECRET:-php-demo-webhook-secret}"
export HERALD_API_URL="${HERALD_API_URL:-http://127.0.0.1:8080}"

herald="${HERALD_BIN:-}"
if [ -z "$herald" ]; then
    (cd "$repo" && cargo build --release -p herald)
    herald="$repo/target/release/herald"
fi

pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

HERALD_ROUTES_FILE="$here/routes.toml" HERALD_LISTEN=127.0.0.1:8080 "$herald" dev &
pids+=($!)
# Several workers: a page's request and Herald's call to herald.php can be
# in flight at once.
PHP_CLI_SERVER_WORKERS=4 php -S 127.0.0.1:8000 -t "$here/public" &
pids+=($!)

echo
echo "PHP example: open http://127.0.0.1:8000/ (two browsers, two names); Ctrl-C stops both."
wait -n
