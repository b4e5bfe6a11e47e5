#!/usr/bin/env bash
# Builds the `herald` image (Containerfile) with podman, from scratch.
#
#   scripts/image/build.sh [--profile release|debug] [--tag NAME] [--no-cargo]
#
# Builds the binary (release by default), stages a root filesystem with only
# what it needs (the stripped binary, the shared libraries `ldd` lists, CA
# certificates, /etc/passwd and /etc/group with the user 65532, and
# nsswitch.conf so host names resolve from /etc/hosts, then DNS), and runs
# `podman build` on it. The tag defaults to localhost/herald:<version>.
# --no-cargo uses the binary already in target/<profile>/.
set -euo pipefail

cd "$(dirname "$0")/../.."

profile=release
tag=""
cargo_build=true
while [ "$#" -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        --no-cargo) cargo_build=false; shift ;;
        *) echo "usage: $0 [--profile release|debug] [--tag NAME] [--no-cargo]" >&2; exit 2 ;;
    esac
done
case "$profile" in
    release) cargo_flags=(--release) ;;
    debug) cargo_flags=() ;;
    *) echo "--profile is release or debug, not $profile" >&2; exit 2 ;;
esac
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
tag="${tag:-localhost/herald:$version}"

# shellcheck source=scripts/lib/tools.sh
source scripts/lib/tools.sh
ensure_debian_packages podman podman buildah buildah objcopy binutils /etc/ssl/certs/ca-certificates.crt ca-certificates

if $cargo_build; then
    cargo build "${cargo_flags[@]}" -p herald
fi
binary="target/$profile/herald"
[ -x "$binary" ] || { echo "no $binary: build it first (cargo build ${cargo_flags[*]} -p herald)" >&2; exit 1; }

context="target/image/$profile"
rootfs="$context/rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs"

# The binary without its debug sections (the release profile keeps line
# tables for profiling): symbols stay, so backtraces still name functions.
objcopy --strip-debug "$binary" "$rootfs/usr/local/bin/herald"

# Every shared library the binary loads, and the dynamic loader, at the
# paths the binary asks for, copied as files (not symlinks).
ldd "$binary" | awk '/=> \// { print $3 } /^\t\// { print $1 }' | while read -r library; do
    mkdir -p "$rootfs$(dirname "$library")"
    cp -L "$library" "$rootfs$library"
done

cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'herald:x:65532:65532:herald:/nonexistent:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'herald:x:65532:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"

podman build --quiet --file Containerfile --tag "$tag" "$context" >/dev/null
echo "built $tag ($(du -sh "$rootfs" | cut -f1) of files, from $binary)"
