#!/usr/bin/env bash
# The whole test suite: what `just test` and CI (.ci/run) run.
#
# Installs what the tests need when it is missing, then checks formatting and
# lints and runs every test. Any failing step fails the script.
set -euo pipefail

cd "$(dirname "$0")/.."

section() {
    printf '\n==> %s\n' "$*"
}

# shellcheck source=scripts/lib/tools.sh
source scripts/lib/tools.sh

section "Tools"
ensure_nats_server
ensure_php
ensure_pusher_sdks
# promtool (Debian's prometheus package) checks /metrics and the alert rules.
ensure_debian_packages promtool prometheus
cargo --version

section "Build"
# Integration tests run the herald binary itself (target/debug/herald), so
# it is built before them, with every other crate.
cargo build --workspace

section "Format (cargo fmt --check)"
cargo fmt --all --check

section "Lint (cargo clippy)"
cargo clippy --workspace --all-targets -- -D warnings

section "PHP SDK unit tests (phpunit)"
phpunit -c sdk/php/phpunit.xml.dist

section "Test (cargo test)"
# Includes the PHP tests (tests/tests/php): real php against real Herald;
# and every committed fuzz input replayed through its target (fuzz-targets).
cargo test --workspace

section "Alert rules (promtool check rules, promtool test rules)"
promtool check rules k8s/components/monitoring/herald-alerts.yaml
(cd k8s/components/monitoring && promtool test rules herald-alerts.test.yaml)

section "JS client (node --test against herald dev)"
clients/js/run-tests.sh

section "Pusher clients (pusher-js, Laravel Echo) against edges on nats-server"
tests/pusher/run-tests.sh

section "Socket.IO clients (socket.io-client) against edges and a router on nats-server"
tests/socketio/run-tests.sh

section "Browser end-to-end (headless Chromium)"
demo/e2e/run.sh

section "Benchmark peers and the load tool (smoke test, herald-bench suite --quick)"
# Not a measurement: checks that the peers speak the protocol the load tool
# expects and that the whole suite runs, on the debug builds.
ensure_bench_peers
node bench/peers/smoke.mjs
target/debug/herald-bench suite --quick --herald target/debug/herald --out target/bench-smoke

section "Kubernetes manifests (kustomize, kubernetes-validate)"
scripts/k8s/validate.sh

section "Container image (podman build, started under chroot)"
# The debug binary built above: the image is the same recipe whatever the
# profile, and a release build would cost minutes (scripts/image/test.sh).
scripts/image/test.sh --profile debug

section "Failure suite on a local cluster, short (scripts/failures.sh --quick)"
scripts/failures.sh --quick --out target/failures-quick

section "Rolling restart on the Pusher path: pusher-js clients through HAProxy (just failures-pusher)"
scripts/failures.sh --quick --protocol pusher --only rolling-restart --out target/failures-pusher

section "Edge SIGKILL with missed-message recovery on: 0 lost (just failures-recovery)"
scripts/failures.sh --quick --only edge-kill-recovery --out target/failures-recovery

section "Soak, short (two minutes of churn: scripts/soak.sh --ci)"
# Catches gross growth and functional breakage under churn; the hour-long
# run is `just soak` (BENCHMARKS.md).
scripts/soak.sh --ci
