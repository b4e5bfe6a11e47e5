#!/usr/bin/env bash
# per-frame.sh <label> herald|pusher|uws [rate] [herald binary]: the
# server's CPU per delivered frame in a broadcast to 10,000 receivers at
# <rate> messages a second (100: 1M deliveries/s offered, the guard's top
# step), from the end of the receivers' 3 s hold to the end of the run,
# with the load tool's CPU beside it (its whole run, connects included).
# `pusher` is a Herald edge's Pusher endpoint, its channel published to on
# NATS.
set -uo pipefail
label=$1; kind=$2; rate=${3:-100}
# shellcheck source=bench/experiments/server-cpu/lib.sh
. "$(dirname "$0")/lib.sh"
bin=${4:-$repo/target/release/herald}
start_server "$kind" "$bin" "/tmp/server-cpu-$label.log"
samples=/tmp/server-cpu-$label.samples
( while kill -0 "$srv" 2>/dev/null; do echo "$(date +%s.%N) $(cpu_ticks "$srv" 2>/dev/null)"; sleep 0.2; done ) >"$samples" 2>/dev/null &
sampler=$!
broadcast "/tmp/server-cpu-$label.out" 10000 "$rate" 10 3
kill "$sampler" 2>/dev/null
stop_servers
python3 - "$label" "$(getconf CLK_TCK)" "$samples" "/tmp/server-cpu-$label.out" "$(cat "/tmp/server-cpu-$label.out.time")" <<'PY'
import re, sys
label, tck, samples, out, tool = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rows = []
for line in open(samples, errors="ignore"):
    p = line.strip("\x00").split()
    if len(p) == 3:
        rows.append((float(p[0]), int(p[1]) / tck, int(p[2]) / tck))
# The hold: the first second, after the first half, in which the server
# spent under 0.03 s of CPU; the broadcast is everything after it.
start = None
for i, (t, user, system) in enumerate(rows):
    j = next((k for k in range(i, len(rows)) if rows[k][0] - t >= 1.0), None)
    if j is None:
        break
    if t - rows[0][0] > 0.5 and (rows[j][1] + rows[j][2]) - (user + system) < 0.03:
        start = rows[j]
        break
text = open(out).read()
got = re.search(r"deliveries\s+(\d+) received of (\d+) expected \((\d+)/s\)", text)
if not (start and got and int(got.group(1))):
    sys.exit(f"{label}: no hold or no deliveries found")
frames = int(got.group(1))
user, system = rows[-1][1] - start[1], rows[-1][2] - start[2]
print(f"{label:8} {got.group(3):>7} deliveries/s | server {(user + system) / frames * 1e9:4.0f} ns per frame"
      f" (user {user / frames * 1e9:3.0f}) | tool {sum(map(float, tool.split())):.2f} s,"
      f" {sum(map(float, tool.split())) / frames * 1e9:4.0f} ns per frame")
PY
