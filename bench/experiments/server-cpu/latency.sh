#!/usr/bin/env bash
# latency.sh <label> herald|uws [herald binary]: publish → delivery latency
# in a broadcast to 1,000 receivers at 100 msg/s (100k deliveries/s, the
# guard's p99 step), where the server keeps up.
set -uo pipefail
label=$1; kind=$2
# shellcheck source=bench/experiments/server-cpu/lib.sh
. "$(dirname "$0")/lib.sh"
bin=${3:-$repo/target/release/herald}
start_server "$kind" "$bin" "/tmp/server-latency-$label.log"
broadcast "/tmp/server-latency-$label.out" 1000 100 5 2
stop_servers
echo "$label $(grep -E '^latency' "/tmp/server-latency-$label.out" | tr -s ' ')"
