#!/usr/bin/env bash
# Tests the `herald` image: builds it, checks what it holds, and starts its
# entrypoint as its user, the way a container runtime would.
#
#   scripts/image/test.sh [--profile debug|release]
#
# `podman run` cannot start containers on these machines (crun refuses
# cgroups in hybrid mode), so the image's file system is exported
# (`podman create` + `podman export`) and its entrypoint started under
# `chroot` as the image's user, with the image's environment; the network is
# the host's. Needs root (chroot) and nats-server.
#
# CI tests the debug profile: the build step already made that binary, and
# the image is the same recipe whatever the profile (same libraries, same
# files), so a release build here would cost minutes and test nothing more.
set -euo pipefail

cd "$(dirname "$0")/../.."

profile=debug
while [ "$#" -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        *) echo "usage: $0 [--profile debug|release]" >&2; exit 2 ;;
    esac
done

# shellcheck source=scripts/lib/tools.sh
source scripts/lib/tools.sh
ensure_nats_server >/dev/null
ensure_debian_packages curl curl

tag="localhost/herald-image-test:$$"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    podman rmi --force "$tag" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "image test: $*" >&2
    exit 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

scripts/image/build.sh --profile "$profile" --tag "$tag" --no-cargo

# What the image says to run, and as whom.
user="$(podman image inspect --format '{{.Config.User}}' "$tag")"
entrypoint="$(podman image inspect --format '{{range .Config.Entrypoint}}{{.}} {{end}}' "$tag")"
mapfile -t image_env < <(podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$tag" | sed '/^$/d')
[ "$user" = "65532:65532" ] || fail "runs as '$user', expected the non-root 65532:65532"
[ "$entrypoint" = "/usr/local/bin/herald " ] || fail "entrypoint is '$entrypoint'"

# Its file system, exported.
rootfs="$work/rootfs"
mkdir "$rootfs"
container="$(podman create "$tag")"
podman export "$container" | tar -x -C "$rootfs"
podman rm "$container" >/dev/null

# Only the binary, its libraries, CA certificates and the user: no shell.
files="$(cd "$rootfs" && find . -type f | sort | tr '\n' ' ')"
expected="./etc/group ./etc/nsswitch.conf ./etc/passwd ./etc/ssl/certs/ca-certificates.crt \
./lib/x86_64-linux-gnu/libc.so.6 ./lib/x86_64-linux-gnu/libgcc_s.so.1 ./lib/x86_64-linux-gnu/libm.so.6 \
./lib64/ld-linux-x86-64.so.2 ./usr/local/bin/herald "
[ "$files" = "$expected" ] || fail "unexpected files in the image: $files"
[ ! -e "$rootfs/bin/sh" ] || fail "the image has a shell"
grep -q 'BEGIN CERTIFICATE' "$rootfs/etc/ssl/certs/ca-certificates.crt" || fail "no CA certificates"
echo "image holds: $files($(du -sh "$rootfs" | cut -f1))"

# A runtime gives the container the host's name files; so do we, so that
# NATS is reached by name, through the image's libc and nsswitch.conf.
cp /etc/hosts "$rootfs/etc/hosts"

nats_port="$(free_port)"
nats-server -a 127.0.0.1 -p "$nats_port" >"$work/nats.log" 2>&1 &
pids+=("$!")
port="$(free_port)"
env -i "${image_env[@]}" \
    HERALD_LISTEN="127.0.0.1:$port" \
    HERALD_NATS_URL="nats://localhost:$nats_port" \
    HERALD_JWT_SECRET=image-test-secret \
    chroot --userspec="$user" "$rootfs" $entrypoint edge >"$work/herald.log" 2>&1 &
edge=$!
pids+=("$edge")

# Answers /healthz, and /readyz once connected to NATS.
answer() {
    curl --silent --show-error --max-time 2 "http://127.0.0.1:$port$1" 2>/dev/null || true
}
for _ in $(seq 1 100); do
    [ "$(answer /readyz)" = "ready" ] && break
    kill -0 "$edge" 2>/dev/null || { cat "$work/herald.log" >&2; fail "the entrypoint exited"; }
    sleep 0.1
done
[ "$(answer /healthz)" = "ok" ] || { cat "$work/herald.log" >&2; fail "no ok from /healthz"; }
[ "$(answer /readyz)" = "ready" ] || { cat "$work/herald.log" >&2; fail "/readyz not ready: NATS unreachable from the image?"; }
[ "$(ps -o user= -p "$edge" | tr -d ' ')" != "root" ] || fail "the entrypoint runs as root"

# SIGTERM drains and exits 0, as Kubernetes stops a pod.
kill -TERM "$edge"
status=0
wait "$edge" || status=$?
[ "$status" -eq 0 ] || { cat "$work/herald.log" >&2; fail "exit status $status after SIGTERM"; }
echo "image test passed: herald edge from the image answered /healthz and /readyz as $user, and drained on SIGTERM"
