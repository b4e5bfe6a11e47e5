#!/usr/bin/env bash
# per-connect.sh <label> herald|uws [herald binary]: CPU seconds (user,
# system) spent by the server, nats-server and the load tool on 10,000
# connects (and their closes), beside the connect rate. Alternate Herald
# and uWS runs; compare CPU seconds, which the machine's noise moves less
# than rates.
set -uo pipefail
label=$1; kind=$2
# shellcheck source=bench/experiments/server-cpu/lib.sh
. "$(dirname "$0")/lib.sh"
bin=${3:-$repo/target/release/herald}
start_server "$kind" "$bin" "/tmp/server-cpu-$label.log"
s0=$(cpu_ticks "$srv"); n0=$(cpu_ticks "$nats")
/usr/bin/time -f "%U %S" -o "/tmp/server-cpu-$label.time" "$bench" idle --protocol "$proto" --connections 10000 \
  --procs 2 --hold 1 --token-secret s --url "$url" >"/tmp/server-cpu-$label.out" 2>&1
s1=$(cpu_ticks "$srv"); n1=$(cpu_ticks "$nats")
stop_servers
rate=$(grep -oE "connect rate +[0-9]+ conn/s" "/tmp/server-cpu-$label.out" | grep -oE "[0-9]+" | head -1)
python3 - "$label" "$s0" "$s1" "$n0" "$n1" "$(cat "/tmp/server-cpu-$label.time")" "${rate:-?}" "$(getconf CLK_TCK)" <<'PY'
import sys
label, s0, s1, n0, n1, tool, rate, tck = sys.argv[1:]
def spent(before, after):
    return [(int(b) - int(a)) / int(tck) for a, b in zip(before.split(), after.split())]
su, ss = spent(s0, s1); nu, ns = spent(n0, n1); tu, ts = map(float, tool.split())
print(f"{label:8} {rate:>6} conn/s | server user {su:.2f} s, system {ss:.2f} s | nats-server {nu + ns:.2f} s"
      f" | tool {tu + ts:.2f} s | all {su + ss + nu + ns + tu + ts:.2f} s")
PY
