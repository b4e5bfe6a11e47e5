#!/usr/bin/env bash
# The failure suite (tests/failures, docs/failures.md): a local cluster of
# real processes behind HAProxy, clients of Herald's JS client, and nodes
# killed, restarted and cut off while they work. Arguments go to
# tests/failures/run.mjs:
#
#   scripts/failures.sh --quick    # CI: 150 clients, each failure once, debug binaries (about 70 s)
#   scripts/failures.sh            # `just failures`: 300 clients, each failure 3 times, release
#
# Installs what it needs when missing (nats-server, HAProxy, curl, the
# suite's npm packages) and builds the binaries of the profile it runs.
set -euo pipefail

cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/tools.sh
source scripts/lib/tools.sh
ensure_cluster_tools

profile=release
previous=""
for arg in "$@"; do
    [ "$arg" = --quick ] && profile=debug
    [ "$previous" = --profile ] && profile="$arg"
    previous="$arg"
done
if [ "$profile" = release ]; then
    cargo build --release -p herald -p herald-examples
else
    cargo build -p herald -p herald-examples
fi

exec node tests/failures/run.mjs "$@"
