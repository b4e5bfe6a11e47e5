#!/usr/bin/env bash
# Runs Herald on this machine: a local nats-server and an edge on
# 127.0.0.1:8080 that lets clients in anonymously or with tokens signed by a
# development secret. Ctrl-C stops both.
#
# Installs nats-server when it is missing. Settings can be overridden with
# HERALD_* variables (see `herald edge --help`).
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/tools.sh
source scripts/lib/tools.sh

ensure_nats_server
cargo build --release -p herald

nats_port="${HERALD_DEV_NATS_PORT:-4222}"
nats-server --addr 127.0.0.1 --port "$nats_port" &
nats_pid=$!
trap 'kill "$nats_pid" 2>/dev/null || true' EXIT

export HERALD_NATS_URL="${HERALD_NATS_URL:-nats://127.0.0.1:$nats_port}"
export HERALD_LISTEN="${HERALD_LISTEN:-127.0.0.1:8080}"
export HERALD_JWT_SECRET="${HERALD_JWT_SECRET:-dev-only-secret-do-not-use-in-production}"
export HERALD_ALLOW_ANONYMOUS="${HERALD_ALLOW_ANONYMOUS:-true}"

cat <<INFO

Herald edge on ws://$HERALD_LISTEN/ws (NATS at $HERALD_NATS_URL).
  Health:    curl http://$HERALD_LISTEN/readyz
  Connect:   any WebSocket client to ws://$HERALD_LISTEN/ws (anonymous), or with
             ?token=<HS256 JWT signed with \$HERALD_JWT_SECRET, with "sub" and "exp">
  Push:      nats-server is at $HERALD_NATS_URL: publish a frame such as
             {"action":"hello","details":"world"} to the subject herald.all

INFO
target/release/herald edge
