#!/usr/bin/env bash
# sends.sh <label> [herald|uws] [herald binary]: the server's socket writes
# and context switches (`perf stat`) over 5 s of a broadcast to 10,000
# receivers at 100 msg/s, beside its deliveries/s and the load tool's CPU
# per frame (its whole run, connects included): how many frames a write
# carries, and what the frames cost the tool that reads them.
set -uo pipefail
label=$1; kind=${2:-herald}
# shellcheck source=bench/experiments/server-cpu/lib.sh
. "$(dirname "$0")/lib.sh"
bin=${3:-$repo/target/release/herald}
start_server "$kind" "$bin" "/tmp/server-sends-$label.log"
stat=/tmp/server-sends-$label.stat
# After the connects and the receivers' 3 s hold: inside the broadcast.
# Herald writes with `send` (`sendto`) and `sendmsg`; Node with `write`
# and `writev`.
( sleep 9; perf stat -x, -e syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_write \
    -e syscalls:sys_enter_writev,context-switches -p "$srv" -o "$stat" -- sleep 5 ) &
counting=$!
broadcast "/tmp/server-sends-$label.out" 10000 100 10 3
wait "$counting"
stop_servers
python3 - "$label" "$kind" "$stat" "/tmp/server-sends-$label.out" "$(cat "/tmp/server-sends-$label.out.time")" <<'PY'
import re, sys
label, kind, stat, out, tool = sys.argv[1:6]
counts = {}
for line in open(stat):
    fields = line.strip().split(",")
    if len(fields) > 2 and fields[0].isdigit():
        counts[fields[2]] = int(fields[0])
writes = sum(n for event, n in counts.items() if event.startswith("syscalls:"))
got = re.search(r"deliveries\s+(\d+) received of \d+ expected \((\d+)/s\)", open(out).read())
if not (got and writes):
    sys.exit(f"{label}: no deliveries or no writes counted")
frames, rate = int(got.group(1)), int(got.group(2))
tool_seconds = sum(map(float, tool.split()))
print(f"{label:8} {kind:6} {rate:>7} deliveries/s | {writes} writes in 5 s, {rate * 5 / writes:4.1f} frames each,"
      f" {counts.get('context-switches', 0)} context switches | tool {tool_seconds / frames * 1e9:4.0f} ns per frame")
PY
