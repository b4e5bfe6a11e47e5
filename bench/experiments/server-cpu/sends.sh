#!/usr/bin/env bash
# sends.sh <label> [herald binary]: a Herald edge's `send` calls and context
# switches (`perf stat`) over 5 s of a broadcast to 10,000 receivers at
# 100 msg/s, beside its deliveries/s: how many frames a `send` carries.
set -uo pipefail
label=$1
# shellcheck source=bench/experiments/server-cpu/lib.sh
. "$(dirname "$0")/lib.sh"
bin=${2:-$repo/target/release/herald}
start_server herald "$bin" "/tmp/server-sends-$label.log"
stat=/tmp/server-sends-$label.stat
# After the connects and the receivers' 3 s hold: inside the broadcast.
( sleep 9; perf stat -x, -e syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,context-switches \
    -p "$srv" -o "$stat" -- sleep 5 ) &
counting=$!
"$bench" broadcast --protocol herald --receivers 10000 --rate 100 --duration 10 --hold 3 --procs 2 \
  --token-secret s --url "$url" --nats "$nats_url" >"/tmp/server-sends-$label.out" 2>/dev/null
wait "$counting"
stop_servers
echo "$label $(grep -o '([0-9]*/s)' "/tmp/server-sends-$label.out") $(grep -v '^#' "$stat" | grep . | cut -d, -f1,3 | tr '\n' ' ')"
