# Shared by the scripts here: starts nats-server and the server under
# test (a Herald edge, its Pusher endpoint, or the uWebSockets.js peer) on
# free ports, and reads a process's CPU from /proc. Sourced, not run.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
bench=${HERALD_BENCH:-$repo/target/release/herald-bench}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# start_server herald|pusher|uws <herald binary> <log>: sets nats, srv, url,
# proto, nats_url, and to_channel (what a broadcast to a Pusher channel
# adds: its group, published on NATS)
start_server() {
  local kind=$1 bin=$2 log=$3 np ep
  np=$(free_port); ep=$(free_port)
  nats-server -a 127.0.0.1 -p "$np" >/dev/null 2>&1 & nats=$!
  nats_url=nats://127.0.0.1:$np; url=ws://127.0.0.1:$ep/ws
  sleep 0.5
  to_channel=()
  if [ "$kind" = herald ] || [ "$kind" = pusher ]; then
    HERALD_NATS_URL=$nats_url HERALD_JWT_SECRET=s HERALD_LISTEN=127.0.0.1:$ep \
      HERALD_PUSHER_APP_ID=bench HERALD_PUSHER_KEY=bench-key HERALD_PUSHER_SECRET=s \
      "$bin" edge >"$log" 2>&1 & srv=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$ep/readyz" >/dev/null && break; sleep 0.1; done
    proto=herald
    if [ "$kind" = pusher ]; then
      url=ws://127.0.0.1:$ep/app/bench-key; proto=pusher; to_channel=(--target group --pusher-publish nats)
    fi
  else
    HOST=127.0.0.1 PORT=$ep node "$repo/bench/peers/uws.mjs" >"$log" 2>&1 & srv=$!
    # Node takes over a second to start on a busy machine: wait for the
    # port, not a fixed time.
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$ep") 2>/dev/null && break; sleep 0.1; done
    proto=plain
  fi
}
# broadcast <out> <receivers> <rate> <seconds> <hold>: the load tool's
# broadcast to the server started above, from <receivers> receivers held
# <hold> s before <rate> msg/s for <seconds> s; its report goes to <out>,
# and its own user and system seconds (`/usr/bin/time`) to <out>.time
broadcast() {
  /usr/bin/time -f "%U %S" -o "$1.time" "$bench" broadcast --protocol "$proto" --receivers "$2" --rate "$3" \
    --duration "$4" --hold "$5" --procs 2 --token-secret s --url "$url" --nats "$nats_url" "${to_channel[@]}" \
    >"$1" 2>/dev/null
}
# cpu_ticks <pid>: user and system clock ticks so far
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
stop_servers() { kill "$srv" "$nats" 2>/dev/null; wait 2>/dev/null; }
