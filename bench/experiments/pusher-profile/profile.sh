#!/usr/bin/env bash
# Where the CPU of a broadcast goes, Herald's native path against its Pusher
# path: one edge and one nats-server, the same receivers in the group
# `bench` spoken to as Herald (`/ws`) and as Pusher (`/app/<key>`, the
# channel `bench`), published to on NATS at the same rate. For each it
# prints deliveries, the CPU seconds the edge and the load tool (publisher
# and workers) spent, and both per delivery; with --perf it also samples
# the edge and the load tool with `perf record -g` and keeps the reports
# (the CPU figures then include perf's own; take them from a run without).
#
#   bench/experiments/pusher-profile/profile.sh [--perf] [RECEIVERS] [DELIVERIES_PER_S] [SECONDS]
#
# Release binaries from target/release (herald, herald-bench); scratch in
# target/pusher-profile (removed by the next run).
set -euo pipefail
cd "$(dirname "$0")/../../.."

perf=false
if [[ "${1:-}" == --perf ]]; then
    perf=true
    shift
fi
receivers=${1:-1000}
deliveries=${2:-300000}
seconds=${3:-5}
rate=$((deliveries / receivers))
out=target/pusher-profile
rm -rf "$out"
mkdir -p "$out"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

nats_port=$(free_port)
edge_port=$(free_port)
secret=profile-secret-profile-secret-profile
nats-server --addr 127.0.0.1 --port "$nats_port" >"$out/nats.log" 2>&1 &
nats_pid=$!
HERALD_LISTEN=127.0.0.1:$edge_port HERALD_NATS_URL=nats://127.0.0.1:$nats_port HERALD_JWT_SECRET=$secret \
    HERALD_LOG=warn HERALD_PUSHER_APP_ID=bench HERALD_PUSHER_KEY=bench-key HERALD_PUSHER_SECRET=$secret \
    "${HERALD:-target/release/herald}" edge >"$out/edge.log" 2>&1 &
edge_pid=$!
trap 'kill $edge_pid $nats_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$edge_port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

run() {
    local name=$1 url=$2
    shift 2
    local before after perf_pid= sampled=()
    if $perf; then
        perf record -g -F 499 -p "$edge_pid" -o "$out/$name.edge.perf.data" -- sleep $((seconds + 6)) >/dev/null 2>&1 &
        perf_pid=$!
        sampled=(perf record -g -F 499 -o "$out/$name.tool.perf.data" --)
    fi
    before=$(cpu_ticks "$edge_pid")
    /usr/bin/time -f '%U %S' -o "$out/$name.time" "${sampled[@]}" \
        target/release/herald-bench broadcast --url "$url" --receivers "$receivers" --target group \
        --rate "$rate" --duration "$seconds" --drain 10 --procs 2 --token-secret "$secret" \
        --nats "nats://127.0.0.1:$nats_port" --json "$out/$name.json" "$@" >"$out/$name.txt" 2>"$out/$name.log"
    after=$(cpu_ticks "$edge_pid")
    if [[ -n "$perf_pid" ]]; then
        wait "$perf_pid" || true
        for side in edge tool; do
            perf report -i "$out/$name.$side.perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null \
                | grep -v -e '^#' -e '^$' >"$out/$name.$side.perf.txt" || true
        done
    fi
    python3 - "$name" "$out/$name.json" "$out/$name.time" "$((after - before))" "$hz" <<'EOF'
import json, sys
name, report, times, edge_ticks, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
delivery = json.load(open(report))["delivery"]
received, rate = delivery["received"], delivery["deliveries_per_sec"]
user, system = map(float, open(times).read().split()[-2:])
tool, edge = user + system, edge_ticks / hz
print(f"{name:8} delivered {received:>9} ({rate:>9.0f}/s)  "
      f"edge {edge:6.2f} s = {edge / received * 1e6:5.2f} µs/delivery  "
      f"load tool {tool:6.2f} s = {tool / received * 1e6:5.2f} µs/delivery")
EOF
}

echo "$receivers receivers in group bench, $deliveries deliveries/s offered for $seconds s; load $(cut -d' ' -f1-3 /proc/loadavg)"
run native "ws://127.0.0.1:$edge_port/ws"
run pusher "ws://127.0.0.1:$edge_port/app/bench-key" --protocol pusher --pusher-publish nats
echo "load after $(cut -d' ' -f1-3 /proc/loadavg); details in $out/"
