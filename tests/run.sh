#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need,
# then runs formatting, lints, docs and every test. Fails loudly when a
# prerequisite cannot be had; nothing is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "tests/run.sh: $*" >&2; exit 1; }
as_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
    as_root || fail "$1 is missing and this is not root: install the Debian package(s) '$*' first"
    echo "==> apt-get install $*"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
        || fail "apt-get could not install: $*"
}

echo "==> prerequisites"
command -v cargo >/dev/null || fail "cargo is missing: install Rust (rustup) first"
command -v node >/dev/null || apt_install nodejs npm
command -v npm >/dev/null || apt_install npm
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || fail "Node.js >= 18 is needed for the interop clients (found $(node --version))"

echo "==> npm ci (tests/node: the real engine.io-client / socket.io-client packages)"
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in tests/node failed"
echo "==> npm ci (client-demo: the socket.io-client browser bundle and the Node demo)"
(cd client-demo && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in client-demo failed"

echo "==> chromium (browser end-to-end tests)"
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || apt_install chromium
[ -x /usr/bin/chromium ] || fail "Debian's 'chromium' package is needed at /usr/bin/chromium for the browser tests"

echo "==> redis-server (cluster tests start their own, on ephemeral ports)"
if ! command -v redis-server >/dev/null && [ ! -x /usr/bin/redis-server ]; then
    apt_install redis-server
    # The package starts a server on 6379; the tests do not use it.
    service redis-server stop >/dev/null 2>&1 || true
fi

echo "==> nginx (the no-sticky-sessions tests put one, round-robin, in front of three nodes)"
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    apt_install nginx
    # The package starts a server on port 80; the tests run their own.
    service nginx stop >/dev/null 2>&1 || true
fi

echo "==> python venv (target/venv-demo: python-socketio for the Python demo client)"
command -v python3 >/dev/null || apt_install python3 python3-venv
if [ ! -x target/venv-demo/bin/python ]; then
    # Debian's own python3 keeps venv in a separate package.
    python3 -m venv target/venv-demo 2>/dev/null || { rm -rf target/venv-demo; apt_install python3-venv; python3 -m venv target/venv-demo; } \
        || fail "python3 -m venv failed: install Debian's python3-venv package"
fi
target/venv-demo/bin/pip install --quiet --disable-pip-version-check -r client-demo/python/requirements.txt \
    || fail "pip could not install client-demo/python/requirements.txt into target/venv-demo"
target/venv-demo/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt \
    || fail "pip could not install tests/python/requirements.txt into target/venv-demo"

echo "==> rust_socketio client (tests/rust-client: a crate of its own, built into target/rust-client)"
# rust_socketio's native-tls needs the OpenSSL headers.
pkg-config --exists openssl 2>/dev/null || apt_install libssl-dev pkg-config
CARGO_TARGET_DIR=target/rust-client cargo build --quiet --locked --manifest-path tests/rust-client/Cargo.toml \
    || fail "cargo could not build tests/rust-client"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --all-targets --all-features -- -D warnings

echo "==> cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features --quiet

echo "==> examples (tests/examples.rs runs them as processes)"
cargo build --examples --all-features --quiet

echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --all-targets --all-features
else
    echo "(cargo-nextest not installed: using cargo test)"
    cargo test --all-targets --all-features
fi
echo "==> doc tests"
cargo test --doc --all-features
