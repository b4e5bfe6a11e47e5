#!/usr/bin/env bash
# A local Herald cluster of real processes on 127.x.y.z addresses: three
# nats-server nodes clustered with routes, three edges, two routers, the
# example handlers (herald-examples), the demo site, and HAProxy in front
# with the recommended settings (haproxy.cfg).
#
#   cluster.sh up [--profile release|debug] [--no-build]   start it all; prints the URL
#   cluster.sh down                       stop it all (idempotent)
#   cluster.sh status                     every node: running or not, and where
#   cluster.sh start NODE                 start one node again (after stop or kill)
#   cluster.sh stop NODE [SIGNAL]         signal it (TERM by default) and wait for it to exit
#   cluster.sh signal NODE SIGNAL         signal it and return (STOP freezes it, CONT thaws it)
#   cluster.sh wait-ready NODE            until it answers as ready
#   cluster.sh wait-lb NODE UP|DOWN       until HAProxy's health checks say so
#
# Nodes: nats-1..3, edge-1..3, router-1..2, examples, site, haproxy.
#
# Everything about a run lives in one directory (HERALD_CLUSTER_DIR, default
# target/cluster): cluster.env (addresses, secrets, binaries), nodes/<NODE>.sh
# (each node's exact command), logs/<NODE>.log, pids/<NODE>.
#
# Chosen at `up` from the environment:
#   HERALD_CLUSTER_NET     first two octets of every address (127.31): NATS on
#                          <net>.1.1-3, edges <net>.2.1-3, routers <net>.3.1-2,
#                          the demo site <net>.4.1
#   HERALD_CLUSTER_LISTEN  where HAProxy listens (127.0.0.1:8088)
#   HERALD_LB_BARE         set: HAProxy without retries (to measure their worth)
#   HERALD_*               any other Herald setting, passed to edges and routers;
#                          HERALD_HISTORY (missed-message recovery) also turns
#                          JetStream on in the NATS nodes (store under nats/)
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${HERALD_CLUSTER_DIR:-$repo/target/cluster}"
NODES=(nats-1 nats-2 nats-3 examples router-1 router-2 edge-1 edge-2 edge-3 site haproxy)

# Set while `up` starts nodes: a failure then stops what it started.
starting=false

die() {
    echo "cluster: $*" >&2
    if $starting; then
        starting=false
        echo "cluster: stopping what was started (logs stay in $dir/logs)" >&2
        down >/dev/null
    fi
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

known_node() {
    local node
    for node in "${NODES[@]}"; do [ "$node" = "$1" ] && return 0; done
    die "no node named '$1' (nodes: ${NODES[*]})"
}

load_env() {
    [ -f "$dir/cluster.env" ] || die "no cluster in $dir (cluster.sh up first)"
    # shellcheck disable=SC1091
    source "$dir/cluster.env"
}

pid_of() {
    cat "$dir/pids/$1" 2>/dev/null || true
}

# Whether process $1 lives: a zombie does not (nodes are orphans, and the
# process that reaps orphans may take its time).
alive() {
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [ -n "$state" ] && [ "${state:0:1}" != Z ]
}

is_running() {
    local pid
    pid="$(pid_of "$1")"
    [ -n "$pid" ] && alive "$pid"
}

# Writes cluster.env and every node's command: done once per `up`.
configure() {
    local profile="$1" net="${HERALD_CLUSTER_NET:-127.31}"
    local listen="${HERALD_CLUSTER_LISTEN:-127.0.0.1:8088}"
    local nats_urls="nats://$net.1.1:4222,nats://$net.1.2:4222,nats://$net.1.3:4222"
    local routes="nats://$net.1.1:6222,nats://$net.1.2:6222,nats://$net.1.3:6222"
    mkdir -p "$dir/nodes" "$dir/logs" "$dir/pids"
    cat >"$dir/cluster.env" <<EOF
HERALD_CLUSTER_URL=http://$listen
HERALD_CLUSTER_LISTEN=$listen
HERALD_CLUSTER_NET=$net
HERALD_CLUSTER_NATS_URL=$nats_urls
HERALD_CLUSTER_JWT_SECRET=$(openssl rand -hex 32)
HERALD_CLUSTER_API_KEY=$(openssl rand -hex 32)
HERALD_CLUSTER_BIN=$repo/target/$profile
EOF
    load_env

    local i jetstream=()
    for i in 1 2 3; do
        case "${HERALD_HISTORY:-off}" in
            off | "") jetstream=() ;;
            *) jetstream=(--jetstream --store_dir "$dir/nats/nats-$i") ;;
        esac
        node_script "nats-$i" "" nats-server --name "nats-$i" \
            --addr "$net.1.$i" --port 4222 --http_port 8222 \
            --cluster_name herald --cluster "nats://$net.1.$i:6222" --routes "$routes" "${jetstream[@]}"
        node_script "edge-$i" "
export HERALD_LISTEN=$net.2.$i:8080 HERALD_NATS_URL=$nats_urls HERALD_NATS_NAME=edge-$i
export HERALD_JWT_SECRET=$HERALD_CLUSTER_JWT_SECRET HERALD_ALLOWED_ORIGINS=\${HERALD_ALLOWED_ORIGINS:-*}
export HERALD_HISTORY=${HERALD_HISTORY:-off}" \
            "$HERALD_CLUSTER_BIN/herald" edge
    done
    for i in 1 2; do
        node_script "router-$i" "
export HERALD_LISTEN=$net.3.$i:8081 HERALD_NATS_URL=$nats_urls HERALD_NATS_NAME=router-$i
export HERALD_API_KEY=$HERALD_CLUSTER_API_KEY HERALD_ROUTES_FILE=$repo/k8s/base/routes.toml" \
            "$HERALD_CLUSTER_BIN/herald" router
    done
    node_script examples "export HERALD_NATS_URL=$nats_urls NO_COLOR=1" "$HERALD_CLUSTER_BIN/herald-examples"
    node_script site "export HERALD_SITE_LISTEN=$net.4.1:8082 HERALD_JWT_SECRET=$HERALD_CLUSTER_JWT_SECRET
export HERALD_HISTORY=${HERALD_HISTORY:-off}" \
        node "$repo/scripts/cluster/site.mjs"
    node_script haproxy "
export HERALD_LB_LISTEN=$listen HERALD_LB_SITE=$net.4.1:8082
export HERALD_LB_EDGE_1=$net.2.1:8080 HERALD_LB_EDGE_2=$net.2.2:8080 HERALD_LB_EDGE_3=$net.2.3:8080
export HERALD_LB_ROUTER_1=$net.3.1:8081 HERALD_LB_ROUTER_2=$net.3.2:8081" \
        haproxy -db -f "$repo/scripts/cluster/haproxy.cfg"
}

# nodes/<name>.sh: records its pid, sets its environment, and becomes the
# node (exec), so the pid is the node's own.
node_script() {
    local name="$1" environment="$2"
    shift 2
    {
        echo '#!/usr/bin/env bash'
        echo "echo \$\$ >'$dir/pids/$name'"
        echo "$environment"
        printf 'exec'
        printf ' %q' "$@"
        echo
    } >"$dir/nodes/$name.sh"
}

start_node() {
    local name="$1"
    is_running "$name" && return 0
    rm -f "$dir/pids/$name"
    echo "--- started $(date -u +%FT%T.%3NZ)" >>"$dir/logs/$name.log"
    # Its own session: a Ctrl-C in the terminal that ran `up` reaches none.
    setsid bash "$dir/nodes/$name.sh" >>"$dir/logs/$name.log" 2>&1 </dev/null &
    local waited=0
    until [ -s "$dir/pids/$name" ]; do
        sleep 0.01
        waited=$((waited + 1))
        [ "$waited" -lt 500 ] || die "$name did not start (logs: $dir/logs/$name.log)"
    done
}

# Signals a node and waits up to 30 s for it to exit, then kills it.
stop_node() {
    local name="$1" signal="${2:-TERM}" pid waited=0
    pid="$(pid_of "$name")"
    if [ -n "$pid" ] && alive "$pid"; then
        kill -s "$signal" "$pid" 2>/dev/null || true
        while alive "$pid"; do
            sleep 0.02
            waited=$((waited + 1))
            if [ "$waited" -eq 1500 ]; then
                echo "cluster: $name did not stop within 30 s of SIG$signal; killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done
    fi
    rm -f "$dir/pids/$name"
}

# Where a node answers HTTP, and what it answers when ready.
probe() {
    local net="$HERALD_CLUSTER_NET" i="${1##*-}"
    case "$1" in
        nats-*) echo "http://$net.1.$i:8222/healthz" ;;
        edge-*) echo "http://$net.2.$i:8080/readyz" ;;
        router-*) echo "http://$net.3.$i:8081/readyz" ;;
        site) echo "http://$net.4.1:8082/" ;;
        haproxy) echo "$HERALD_CLUSTER_URL/haproxy-stats" ;;
        *) echo "" ;;
    esac
}

# How many handlers (echo, chat) the examples serve since their last start.
handlers_serving() {
    awk '/^--- started/ { n = 0 } /handler serving/ { n++ } END { print n + 0 }' "$dir/logs/examples.log"
}

wait_ready() {
    local name="$1" url waited=0
    url="$(probe "$name")"
    until { [ -n "$url" ] && curl --silent --fail --max-time 1 --output /dev/null "$url"; } ||
        { [ "$name" = examples ] && [ "$(handlers_serving)" -ge 2 ]; }; do
        is_running "$name" || die "$name exited (logs: $dir/logs/$name.log)"
        sleep 0.05
        waited=$((waited + 1))
        [ "$waited" -lt 600 ] || die "$name not ready within 30 s (logs: $dir/logs/$name.log)"
    done
}

# A server's state in HAProxy's health checks: UP, DOWN, or a transition.
lb_status() {
    curl --silent --max-time 1 "$HERALD_CLUSTER_URL/haproxy-stats;csv" |
        awk -F, -v name="$1" '$2 == name { print $18 }'
}

wait_lb() {
    local name="$1" wanted="$2" waited=0
    until [ "$(lb_status "$name")" = "$wanted" ]; do
        sleep 0.05
        waited=$((waited + 1))
        [ "$waited" -lt 600 ] || die "HAProxy did not see $name $wanted within 30 s (it says: $(lb_status "$name"))"
    done
}

up() {
    local profile=release build=true
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --profile) profile="$2"; shift 2 ;;
            --no-build) build=false; shift ;;
            *) usage ;;
        esac
    done
    local node
    for node in "${NODES[@]}"; do
        is_running "$node" && die "already up ($node is running); cluster.sh down first"
    done
    if $build; then
        local flags=()
        [ "$profile" = release ] && flags=(--release)
        (cd "$repo" && cargo build "${flags[@]}" -p herald -p herald-examples)
    fi
    # shellcheck source=scripts/lib/tools.sh
    source "$repo/scripts/lib/tools.sh"
    ensure_nats_server >/dev/null
    ensure_debian_packages haproxy haproxy curl curl openssl openssl
    rm -rf "$dir"
    configure "$profile"
    starting=true
    # NATS first, all three at once (each retries its routes until the
    # others listen); then what uses it; HAProxy last.
    for node in "${NODES[@]}"; do
        start_node "$node"
        case "$node" in nats-3 | examples | router-2 | edge-3 | site) wait_group "$node" ;; esac
    done
    wait_ready haproxy
    for node in edge-1 edge-2 edge-3 router-1 router-2; do wait_lb "$node" UP; done
    starting=false
    echo "Herald cluster up: open $HERALD_CLUSTER_URL/ (the demo chat; HAProxy's stats: $HERALD_CLUSTER_URL/haproxy-stats)"
    echo "  publish to everyone:"
    echo "    curl -H 'Authorization: Bearer $HERALD_CLUSTER_API_KEY' -H 'Content-Type: application/json' \\"
    echo "      -d '{\"to\":{\"all\":true},\"action\":\"hello\",\"details\":{}}' $HERALD_CLUSTER_URL/api/publish"
    echo "  kill a node and see the demo carry on: scripts/cluster/cluster.sh stop edge-2 KILL (then: start edge-2)"
    echo "  run directory: $dir (logs/, cluster.env); stop it all with: just cluster-down"
}

# Waits for every node of the group `last` ends.
wait_group() {
    local node
    for node in "${NODES[@]}"; do
        case "$node" in "${1%-*}"*) wait_ready "$node" ;; esac
    done
    if [ "$1" = nats-3 ]; then
        # Clustered: every server has routes to the other two.
        local i
        for i in 1 2 3; do
            local waited=0
            until [ "$(curl --silent --max-time 1 "http://$HERALD_CLUSTER_NET.1.$i:8222/routez" |
                python3 -c 'import json, sys; print(json.load(sys.stdin)["num_routes"] > 1)' 2>/dev/null)" = True ]; do
                sleep 0.05
                waited=$((waited + 1))
                [ "$waited" -lt 600 ] || die "nats-$i has no routes to the others within 30 s"
            done
        done
    fi
}

down() {
    [ -d "$dir/pids" ] || { echo "cluster: nothing running in $dir"; return 0; }
    local i node
    # The way in first, then edges (they drain), then the rest.
    for ((i = ${#NODES[@]} - 1; i >= 0; i--)); do
        node="${NODES[$i]}"
        if is_running "$node"; then
            stop_node "$node" TERM
            echo "stopped $node"
        fi
        rm -f "$dir/pids/$node"
    done
}

status() {
    load_env
    local node state
    for node in "${NODES[@]}"; do
        if is_running "$node"; then state="running (pid $(pid_of "$node"))"; else state=stopped; fi
        printf '%-9s %-22s %s\n' "$node" "$state" "$(probe "$node")"
    done
}

command="${1:-}"
[ -n "$command" ] || usage
shift
case "$command" in
    up) up "$@" ;;
    down) down ;;
    status) status ;;
    start) [ "$#" -eq 1 ] || usage; known_node "$1"; load_env; start_node "$1" ;;
    stop) [ "$#" -ge 1 ] || usage; known_node "$1"; stop_node "$1" "${2:-TERM}" ;;
    signal) [ "$#" -eq 2 ] || usage; known_node "$1"; is_running "$1" || die "$1 is not running"; kill -s "$2" "$(pid_of "$1")" ;;
    wait-ready) [ "$#" -eq 1 ] || usage; known_node "$1"; load_env; wait_ready "$1" ;;
    wait-lb) [ "$#" -eq 2 ] || usage; known_node "$1"; load_env; wait_lb "$1" "$2" ;;
    *) usage ;;
esac
