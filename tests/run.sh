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

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --all-targets --all-features -- -D warnings

echo "==> cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features --quiet

echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --all-targets --all-features
else
    echo "(cargo-nextest not installed: using cargo test)"
    cargo test --all-targets --all-features
fi
echo "==> doc tests"
cargo test --doc --all-features
