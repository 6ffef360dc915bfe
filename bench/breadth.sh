#!/usr/bin/env bash
# The gateway binary with the JSON or msgpack parser and with
# permessage-deflate on or off: echo (2 KiB events), broadcast (2 KiB
# events to 49 receivers at 50/s) and idle memory per WebSocket connection.
# The server runs pinned to core 0, the Node client (bench/node/breadth.mjs,
# the real socket.io-client) to core 1; loopback only, bounded runs.
#
#   bash bench/breadth.sh            # needs: cargo build --release; npm ci in bench/node
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${GATEWAY_BIN:-target/release/socketgate}
DURATION=${DURATION:-5}
[ -x "$BIN" ] || { echo "build the gateway first: cargo build --release" >&2; exit 1; }
[ -d bench/node/node_modules/socket.io-client ] || { echo "run npm ci in bench/node first" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run() { # parser deflate scenario args...
    local parser=$1 deflate=$2 scenario=$3; shift 3
    local port; port=$(free_port)
    local flags=(--addr "127.0.0.1:$port" --parser "$parser" --relay-events-per-second 1000000000 --relay-burst 1000000000)
    local client=(--parser "$parser")
    if [ "$deflate" = on ]; then flags+=(--ws-compression); client+=(--deflate); fi
    taskset -c 0 "$BIN" "${flags[@]}" 2>/dev/null & local pid=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
    taskset -c 1 node bench/node/breadth.mjs "http://127.0.0.1:$port" "$pid" "$scenario" "${client[@]}" "$@" || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
for parser in json msgpack; do
    for deflate in off on; do
        run $parser $deflate echo --clients 20 --duration "$DURATION"
        run $parser $deflate broadcast --clients 50 --duration "$DURATION" --rate 50
    done
done
for deflate in off on; do
    run json $deflate idle --clients 1000 --duration 3
done
