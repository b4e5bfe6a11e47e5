#!/usr/bin/env bash
# The soak: an edge, a router, the example handlers and a real nats-server
# under steady churn, sampled for growth and checked for wrong answers by
# `herald-bench soak` (see BENCHMARKS.md, "Soak").
#
#   scripts/soak.sh                          # one hour, release builds, into target/soak
#   scripts/soak.sh --duration 600 --interval 20
#   scripts/soak.sh --ci                     # what CI runs: 2 min, debug builds
#
# Other arguments go to `herald-bench soak` (--connections, --slow-every,
# --max-growth, --out; `herald-bench soak --help`). Installs nats-server
# and a font for the plot when they are missing.
set -euo pipefail

cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/tools.sh
source scripts/lib/tools.sh

ensure_nats_server
ensure_debian_packages /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf fonts-dejavu-core

if [ "${1:-}" = "--ci" ]; then
    shift
    # The binaries the suite has just built; 2 minutes of churn sampled
    # every 5 s (the issue's CI soak), a slow consumer every 40 s.
    # The workspace, as the suite builds it: building only these packages
    # would unify features differently and rebuild dependencies (a minute).
    cargo build --workspace
    exec target/debug/herald-bench soak --herald target/debug/herald --duration 120 --interval 5 \
        --connections 40 --slow-every 40 --out target/soak-ci "$@"
fi

cargo build --release -p herald -p herald-examples -p herald-bench
exec target/release/herald-bench soak "$@"
