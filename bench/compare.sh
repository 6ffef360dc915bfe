#!/usr/bin/env bash
# Compares socketgate with its peers under the benchmark contract
# (DESIGN.md §6): socketgate's bench_server, socketioxide 0.18.9
# (bench/peers), Node socket.io 4.8.4 (bench/node) and a bare
# tokio-tungstenite subset (bench/peers, the upper limit).
#
# The cluster case (cluster-broadcast, --cluster) runs two nodes on one
# redis-server started here (ephemeral port, no persistence) for
# socketgate (the gateway binary, --redis-url) and Node
# (bench/node/server.mjs on @socket.io/redis-adapter 8.3), receivers spread
# over both nodes and the sender on the first; nodes and Redis share core 0.
#
# Two socketgate-only cases use the gateway binary: routing (--routing)
# runs polling echo over three nodes on one Redis with a shared cluster
# secret (no sticky sessions), every request to the next node in turn
# (round-robin) and then all of a client's requests to one node (sticky);
# recovery (--recovery) runs WebSocket echo on one gateway without Redis,
# with Redis and recovery off, with Redis and recovery on, and with
# recovery on in memory, counting Redis's CPU as well.
#
# For every case × server it starts a fresh server pinned to core 0 on a
# free loopback port, waits until it answers a WebSocket handshake, runs
# socketgate-load pinned to core 1 with --server-pid, stops the server, and
# appends the JSON line (plus "case" and "server") to
# bench/results/latest.jsonl. bench/table.py prints the table at the end.
#
#   bash bench/compare.sh [--servers a,b] [--scenarios x,y] [--quick] [--big] [--cluster]
#                         [--routing] [--recovery]
#
# Environment (defaults of a full run, about 10 minutes on 2 cores):
#   SERVERS=socketgate,socketioxide,node,bare
#   SCENARIOS=echo-ws,echo-polling,broadcast,broadcast-step,idle-ws,idle-polling,churn,mixed
#   DURATION=10        measured window (s) of echo, broadcast, churn, mixed
#   IDLE_HOLD=30       idle hold (s); > 25 s so every connection is pinged
#   STEP_DURATION=3    window (s) of each broadcast step
#   STEP_RATES="20 50 100 200 300 500 700 1000 1500 2000 3000 5000"
#   ECHO_CLIENTS=100 BCAST_CLIENTS=1000 BCAST_RATE=20 IDLE_WS=2000
#   IDLE_POLL=500 CHURN_CLIENTS=20 MIXED_CLIENTS=100
#   QUICK=1            smoke run: 2 s windows, three steps, fewer idle
#                      connections (the hold stays long enough for pings)
#   BIG=1              adds idle-big: BIG_CONNS=18000 idle WebSocket
#                      connections to socketgate only
#   CLUSTER=1          adds cluster-broadcast (socketgate and node only;
#                      needs redis-server): CLUSTER_CLIENTS receivers
#                      (default BCAST_CLIENTS) over two nodes at
#                      CLUSTER_RATE msg/s (default BCAST_RATE), carried by
#                      the relay's chat event (CLUSTER_VIA=chat; the
#                      gateway binary has no broadcast/bcast)
#   ROUTING=1          adds routing (socketgate only; needs redis-server):
#                      ROUTING_CLIENTS polling echo clients (default
#                      ECHO_CLIENTS) over ROUTING_NODES=3 gateway nodes,
#                      once per routing in ROUTINGS="round-robin sticky",
#                      each on a fresh Redis and fresh nodes
#   RECOVERY=1         adds recovery (socketgate only; needs redis-server):
#                      RECOVERY_CLIENTS WebSocket echo clients (default
#                      ECHO_CLIENTS) on one gateway per mode in
#                      RECOVERY_MODES="none off on memory": no Redis; Redis
#                      with --recovery-ms 0; Redis with --recovery-ms
#                      RECOVERY_MS (60000); no Redis with RECOVERY_MS
#   GATEWAY_BIN=target/release/socketgate   the gateway binary to cluster
#   TW_WAIT=75         longest wait (s) for TIME_WAIT sockets to fall under
#                      10,000 before a server starts; 0 never waits (when
#                      other work on the machine keeps them high)
#   SKIP_BUILD=1       use the binaries already built
#   OUT=bench/results/latest.jsonl
#
# Exit status: 0 when every run passed (no errors, nothing missing in the
# fixed-rate broadcast, no idle connection dropped), 1 otherwise.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
LOAD=$BENCH/target/release/socketgate-load

ALL_SERVERS=socketgate,socketioxide,node,bare
ALL_SCENARIOS=echo-ws,echo-polling,broadcast,broadcast-step,idle-ws,idle-polling,churn,mixed

has() { [[ ",$1," == *",$2,"* ]]; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --servers) SERVERS=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --big) BIG=1; shift ;;
        --cluster) CLUSTER=1; shift ;;
        --routing) ROUTING=1; shift ;;
        --recovery) RECOVERY=1; shift ;;
        -h | --help) sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

QUICK=${QUICK:-0}
BIG=${BIG:-0}
CLUSTER=${CLUSTER:-0}
ROUTING=${ROUTING:-0}
RECOVERY=${RECOVERY:-0}
SERVERS=${SERVERS:-$ALL_SERVERS}
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
if [[ $QUICK == 1 ]]; then
    DURATION=${DURATION:-2}
    STEP_DURATION=${STEP_DURATION:-2}
    STEP_RATES=${STEP_RATES:-"100 500 2000"}
    IDLE_WS=${IDLE_WS:-500}
    IDLE_POLL=${IDLE_POLL:-200}
    # The first ping comes 25 s after the open and the hold starts about
    # 2 s after it: 27 s still sees every connection pinged once.
    IDLE_HOLD=${IDLE_HOLD:-27}
    BIG_CONNS=${BIG_CONNS:-5000}
fi
DURATION=${DURATION:-10}
IDLE_HOLD=${IDLE_HOLD:-30}
STEP_DURATION=${STEP_DURATION:-3}
STEP_RATES=${STEP_RATES:-"20 50 100 200 300 500 700 1000 1500 2000 3000 5000"}
ECHO_CLIENTS=${ECHO_CLIENTS:-100}
BCAST_CLIENTS=${BCAST_CLIENTS:-1000}
BCAST_RATE=${BCAST_RATE:-20}
IDLE_WS=${IDLE_WS:-2000}
IDLE_POLL=${IDLE_POLL:-500}
CHURN_CLIENTS=${CHURN_CLIENTS:-20}
MIXED_CLIENTS=${MIXED_CLIENTS:-100}
BIG_CONNS=${BIG_CONNS:-18000}
CLUSTER_CLIENTS=${CLUSTER_CLIENTS:-$BCAST_CLIENTS}
CLUSTER_RATE=${CLUSTER_RATE:-$BCAST_RATE}
CLUSTER_VIA=${CLUSTER_VIA:-chat}
ROUTING_CLIENTS=${ROUTING_CLIENTS:-$ECHO_CLIENTS}
ROUTING_NODES=${ROUTING_NODES:-3}
ROUTINGS=${ROUTINGS:-round-robin sticky}
RECOVERY_CLIENTS=${RECOVERY_CLIENTS:-$ECHO_CLIENTS}
RECOVERY_MS=${RECOVERY_MS:-60000}
RECOVERY_MODES=${RECOVERY_MODES:-none off on memory}
GATEWAY_BIN=${GATEWAY_BIN:-$ROOT/target/release/socketgate}
TW_WAIT=${TW_WAIT:-75}
OUT=${OUT:-$BENCH/results/latest.jsonl}
LOGS=$(dirname "$OUT")/logs

if [[ $BIG == 1 ]] && ! has "$SCENARIOS" idle-big; then
    SCENARIOS=$SCENARIOS,idle-big
fi
if [[ $CLUSTER == 1 ]] && ! has "$SCENARIOS" cluster-broadcast; then
    SCENARIOS=$SCENARIOS,cluster-broadcast
fi
if [[ $ROUTING == 1 ]] && ! has "$SCENARIOS" routing; then
    SCENARIOS=$SCENARIOS,routing
fi
if [[ $RECOVERY == 1 ]] && ! has "$SCENARIOS" recovery; then
    SCENARIOS=$SCENARIOS,recovery
fi

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

for s in ${SERVERS//,/ }; do
    has "$ALL_SERVERS" "$s" || { echo "compare.sh: unknown server $s (known: $ALL_SERVERS)" >&2; exit 2; }
done
for c in ${SCENARIOS//,/ }; do
    has "$ALL_SCENARIOS,idle-big,cluster-broadcast,routing,recovery" "$c" || { echo "compare.sh: unknown scenario $c (known: $ALL_SCENARIOS,idle-big,cluster-broadcast,routing,recovery)" >&2; exit 2; }
done
for c in cluster-broadcast routing recovery; do
    if has "$SCENARIOS" "$c" && ! command -v redis-server >/dev/null; then
        echo "compare.sh: $c needs redis-server on the PATH (Debian/Ubuntu package redis-server: apt-get install redis-server)" >&2
        exit 2
    fi
done
# The gateway binary serves the cluster, routing and recovery cases.
NEEDS_GATEWAY=0
if has "$SERVERS" socketgate && { has "$SCENARIOS" cluster-broadcast || has "$SCENARIOS" routing \
    || has "$SCENARIOS" recovery; }; then
    NEEDS_GATEWAY=1
fi
CLUSTER_SECRET=${CLUSTER_SECRET:-bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')}
command -v taskset >/dev/null || { echo "compare.sh: taskset (util-linux) is needed" >&2; exit 2; }
[[ $(nproc) -ge 2 ]] || log "fewer than 2 cores: server and load tool will share one"

# Every connection is a file descriptor on both sides: take the hard limit.
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -Sn)
log "open-file limit per process: $NOFILE"

# ---------------------------------------------------------------- build

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building socketgate's bench_server (release)"
    (cd "$ROOT" && cargo build --release --quiet --example bench_server)
    log "building bench/peers (release)"
    cargo build --release --quiet --manifest-path "$BENCH/peers/Cargo.toml"
    if [[ $NEEDS_GATEWAY == 1 && $GATEWAY_BIN == "$ROOT/target/release/socketgate" ]]; then
        log "building the socketgate gateway binary (release)"
        (cd "$ROOT" && cargo build --release --quiet --bin socketgate)
    fi
    log "building the load tool (release)"
    cargo build --release --quiet --manifest-path "$BENCH/Cargo.toml"
    if has "$SERVERS" node; then
        log "npm ci in bench/node"
        (cd "$BENCH/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
fi

# ---------------------------------------------------------------- servers

# With CLUSTER_REDIS set (a redis:// URL), the command of a cluster node:
# socketgate is then the gateway binary (bench_server takes no Redis URL).
# USE_GATEWAY=1 runs the gateway binary without Redis; GATEWAY_EXTRA adds
# flags to it (e.g. --recovery-ms).
CLUSTER_REDIS=""
USE_GATEWAY=0
GATEWAY_EXTRA=""
server_cmd() { # server port
    if [[ -n $CLUSTER_REDIS || $USE_GATEWAY == 1 ]]; then
        case $1 in
            # The relay's per-socket event limit (50/s by default) is for
            # real clients, not a load generator.
            socketgate) echo "$GATEWAY_BIN --addr 127.0.0.1:$2 --relay-events-per-second 1000000000 --relay-burst 1000000000${CLUSTER_REDIS:+ --redis-url $CLUSTER_REDIS}${GATEWAY_EXTRA:+ $GATEWAY_EXTRA}" ;;
            node) echo "node $BENCH/node/server.mjs --port $2 --redis-url $CLUSTER_REDIS" ;;
        esac
        return
    fi
    case $1 in
        socketgate) echo "$ROOT/target/release/examples/bench_server --port $2" ;;
        socketioxide) echo "$BENCH/peers/target/release/socketioxide-server --port $2" ;;
        bare) echo "$BENCH/peers/target/release/bare-server --port $2" ;;
        node) echo "node $BENCH/node/server.mjs --port $2" ;;
    esac
}

# The bare server speaks WebSocket only.
supports() { # server case
    # Only these two have a Redis adapter here.
    if [[ $2 == cluster-broadcast ]]; then
        [[ $1 == socketgate || $1 == node ]]
        return
    fi
    [[ $1 != bare ]] && return 0
    case $2 in echo-ws | broadcast | broadcast-step | idle-ws | churn) return 0 ;; esac
    return 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A WebSocket handshake answered with 101: the server is up and speaking
# engine.io (every server here, the bare one included, takes it).
# A subshell, so a refused connection ends only the probe.
probe() ( # port
    line=""
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c29ja2V0Z2F0ZS1wcm9iZQ==\r\n\r\n' "$1" >&3
    read -t 2 -r line <&3 || true
    [[ $line == "HTTP/1.1 101"* ]]
)

SPID=""
SPORT=""

# A churn run leaves 10,000-20,000 sockets in TIME_WAIT for 60 s (and
# back-to-back runs over 100,000, near the kernel's bucket limit). They
# share the connection hash table with live sockets and slow down every
# lookup, so the next run would pay for the previous one: wait (up to 75 s)
# until fewer than 10,000 are left.
time_wait_count() {
    awk '/^TCP:/ { for (i = 1; i < NF; i++) if ($i == "tw") print $(i + 1) }' /proc/net/sockstat
}

settle_time_wait() {
    local tw
    tw=$(time_wait_count)
    [[ ${tw:-0} -lt 10000 ]] && return 0
    [[ $TW_WAIT -gt 0 ]] || return 0
    log "  waiting for $tw TIME_WAIT sockets to expire"
    for _ in $(seq 1 "$TW_WAIT"); do
        sleep 1
        tw=$(time_wait_count)
        [[ ${tw:-0} -lt 10000 ]] && return 0
    done
    log "  still $tw TIME_WAIT sockets after $TW_WAIT s; going on"
}

start_server() { # server case [log-name]
    settle_time_wait
    SPORT=$(free_port)
    # taskset execs the command: $! is the server itself.
    # shellcheck disable=SC2046
    taskset -c 0 $(server_cmd "$1" "$SPORT") >"$LOGS/$2-${3:-$1}.log" 2>&1 &
    SPID=$!
    for _ in $(seq 1 150); do
        if ! kill -0 "$SPID" 2>/dev/null; then
            log "$1 exited during start-up (see $LOGS/$2-${3:-$1}.log)"
            return 1
        fi
        if probe "$SPORT" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    log "$1 did not answer on port $SPORT within 15 s"
    stop_server
    return 1
}

# SIGTERM, then SIGKILL after 5 s.
stop_pid() { # pid
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

stop_server() {
    [[ -n $SPID ]] || return 0
    stop_pid "$SPID"
    SPID=""
}
# Cluster runs: the Redis server and the other nodes, stopped the same way
# in the reverse order of their start (nodes before Redis, so they do not
# log Redis going away).
EXTRA_PIDS=()
stop_extra() {
    local i
    for ((i = ${#EXTRA_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${EXTRA_PIDS[i]}"
    done
    EXTRA_PIDS=()
}
trap 'stop_server; stop_extra' EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- results

FAILED=()

# Appends one JSON object to $OUT: the tool's last JSON line (file $1)
# with "case", "server" and the extra keys of JSON object $4 merged in.
record() { # tool-output case server [extra-json]
    local extra=${4:-}
    [[ -n $extra ]] || extra='{}'
    python3 - "$1" "$2" "$3" "$extra" "$OUT" <<'PY'
import json, sys
path, case, server, extra, out = sys.argv[1:6]
line = None
with open(path) as f:
    for raw in f:
        raw = raw.strip()
        if raw.startswith("{"):
            line = raw
doc = json.loads(line) if line else {"failed": "no JSON from the load tool"}
doc.update(json.loads(extra))
doc["case"] = case
doc["server"] = server
with open(out, "a") as f:
    f.write(json.dumps(doc, sort_keys=True) + "\n")
PY
}

record_plain() { # case server json
    python3 -c 'import json, sys; d = json.loads(sys.argv[3]); d["case"] = sys.argv[1]; d["server"] = sys.argv[2]; print(json.dumps(d, sort_keys=True))' \
        "$1" "$2" "$3" >>"$OUT"
}

# start_server; when the server does not start, records the run as failed
# (with the JSON fields of $3, e.g. ', "k": v', added) and counts it.
start_or_record() { # server case [extra-fields] [log-name]
    start_server "$1" "$2" "${4:-}" && return 0
    record_plain "$2" "$1" "{\"failed\": \"server did not start\"${3:-}}"
    FAILED+=("$2/$1: server did not start")
    return 1
}

# Judges the run recorded last in $OUT with table.py (the reasons of its ✗
# marks): logs and counts it as failed when there is a reason. For the
# step-up ladder, lag is judged separately (see step_verdict).
judge() { # case server
    local why
    why=$(python3 "$BENCH/table.py" --why "$OUT")
    if [[ -n $why ]]; then
        log "  FAIL $1/$2: $why"
        FAILED+=("$1/$2: $why")
    fi
}

# Runs the load tool against the running server; $1 case, $2 server, the
# rest are scenario arguments. Leaves the output in $RUN_OUT.
RUN_OUT=""
run_load() {
    local case=$1 server=$2
    shift 2
    RUN_OUT=$(mktemp)
    local rc=0
    taskset -c 1 "$LOAD" --url "http://127.0.0.1:$SPORT" --server-pid "$SPID" \
        --json-only --label "$server" "$@" >"$RUN_OUT" 2>>"$LOGS/$case-$server.load.log" || rc=$?
    if [[ $rc != 0 ]]; then
        log "  load tool exited with status $rc (see $LOGS/$case-$server.load.log)"
    fi
}

one_run() { # case server scenario-args...
    local case=$1 server=$2
    shift 2
    start_or_record "$server" "$case" || return 0
    run_load "$case" "$server" "$@"
    stop_server
    record "$RUN_OUT" "$case" "$server"
    rm -f "$RUN_OUT"
    judge "$case" "$server"
}

# A broadcast step lags when anything is lost or late: missing > 0, any
# error, the last delivery more than 1 s after the last send (drain_ms), a
# delivery p99 above 500 ms, or a sender that achieved < 95 % of the rate.
step_verdict() { # file rate
    python3 - "$1" "$2" <<'PY'
import json, sys
path, rate = sys.argv[1], float(sys.argv[2])
doc = None
with open(path) as f:
    for raw in f:
        if raw.strip().startswith("{"):
            doc = json.loads(raw)
if doc is None:
    print("no JSON from the load tool"); sys.exit()
why = []
if doc.get("missing"):
    why.append(f"missing {doc['missing']}")
if (doc.get("errors") or {}).get("total", 0):
    why.append("errors")
if (doc.get("drain_ms") or 0) > 1000:
    why.append(f"drain {doc['drain_ms']:.0f} ms")
p99 = (doc.get("latency_us") or {}).get("p99")
if p99 is not None and p99 > 500_000:
    why.append(f"p99 {p99 / 1000:.0f} ms")
if (doc.get("send_rate") or 0) < 0.95 * rate:
    why.append(f"sender reached {doc.get('send_rate')}/s")
print("; ".join(why))
PY
}

step_ladder() { # server
    local server=$1 case=broadcast-step
    # The line stands for the ladder's summary, which table.py reads.
    start_or_record "$server" "$case" ', "summary": true' || return 0
    local steps rate why
    steps=$(mktemp)
    for rate in $STEP_RATES; do
        run_load "$case" "$server" --scenario broadcast --clients "$BCAST_CLIENTS" \
            --rate "$rate" --duration "$STEP_DURATION" --drain 3
        record "$RUN_OUT" "$case" "$server" "{\"step_rate\": $rate}"
        why=$(step_verdict "$RUN_OUT" "$rate")
        tail -n 1 "$OUT" | python3 -c 'import json, sys; d = json.loads(sys.stdin.read()); d["lag"] = sys.argv[1]; print(json.dumps(d))' "$why" >>"$steps"
        rm -f "$RUN_OUT"
        if [[ -n $why ]]; then
            log "  $server lags at $rate/s: $why"
            break
        fi
        log "  $server keeps up at $rate/s"
    done
    stop_server
    # The summary: the highest rate kept up, with that step's figures, the
    # first rate that lagged and why, and every step's rate, verdict and
    # CPU µs/op (table.py compares servers at a rate both kept up).
    local summary
    summary=$(python3 - "$steps" <<'PY'
import json, sys
steps = [json.loads(l) for l in open(sys.argv[1])]
ok = [s for s in steps if not s["lag"]]
lag = next((s for s in steps if s["lag"]), None)
best = ok[-1] if ok else None
print(json.dumps({
    "summary": True,
    "scenario": "broadcast",
    "receivers": best.get("receivers") if best else None,
    "max_sustained_rate": best["step_rate"] if best else 0,
    "server_cpu_us_per_op": best.get("server_cpu_us_per_op") if best else None,
    "latency_us": best.get("latency_us") if best else None,
    "cpu": best.get("cpu") if best else None,
    "first_lag_rate": lag["step_rate"] if lag else None,
    "lag_reason": lag["lag"] if lag else None,
    "load_cpu_pct_at_lag": (lag.get("cpu") or {}).get("load_cpu_pct") if lag else None,
    "steps": [{"rate": s["step_rate"], "lag": s["lag"] or None,
               "server_cpu_us_per_op": s.get("server_cpu_us_per_op"),
               "load_cpu_pct": (s.get("cpu") or {}).get("load_cpu_pct")} for s in steps],
}))
PY
    )
    record_plain "$case" "$server" "$summary"
    rm -f "$steps"
}

# 18,000 idle WebSocket connections to socketgate. One load-tool process
# holds as many connections as its open-file limit allows (less a margin);
# beyond that several processes run side by side, and their figures are
# merged here: RSS growth is taken from the lowest "before" to the highest
# "after settle" reading, over every connection open at the hold.
idle_big() {
    local server=socketgate case=idle-big
    local per=$((NOFILE - 200))
    [[ -n ${BIG_PER_PROC:-} ]] && per=$BIG_PER_PROC
    local procs=$(((BIG_CONNS + per - 1) / per))
    log "  $BIG_CONNS connections over $procs load-tool process(es) (open-file limit $NOFILE)"
    if (((BIG_CONNS + 200) > NOFILE)); then
        log "  the server's open-file limit ($NOFILE) is below $BIG_CONNS + 200: expect refused connections"
    fi
    start_or_record "$server" "$case" || return 0
    # Four loopback source addresses per process: ephemeral ports to spare.
    local outs=() pids=() i
    for ((i = 0; i < procs; i++)); do
        local n=$((BIG_CONNS / procs + (i < BIG_CONNS % procs ? 1 : 0)))
        local b=$((2 + 4 * i))
        local addrs="127.0.0.$b,127.0.0.$((b + 1)),127.0.0.$((b + 2)),127.0.0.$((b + 3))"
        local out
        out=$(mktemp)
        outs+=("$out")
        # Settle long enough for every process to finish connecting before
        # any of them reads the server's RSS.
        taskset -c 1 "$LOAD" --url "http://127.0.0.1:$SPORT" --server-pid "$SPID" --json-only \
            --label "$server" --scenario idle --clients "$n" --duration "$IDLE_HOLD" \
            --settle $((procs > 1 ? 15 : 3)) --local-addrs "$addrs" --connect-concurrency 128 \
            >"$out" 2>>"$LOGS/$case-$server.load.log" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || log "  a load-tool process exited with status $?"; done
    stop_server
    python3 - "$OUT" "$case" "$server" "$BIG_CONNS" "${outs[@]}" <<'PY'
import json, sys
out, case, server, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
docs = []
for path in sys.argv[5:]:
    lines = [l for l in open(path) if l.startswith("{")]
    docs.append(json.loads(lines[-1]) if lines else {"failed": "no JSON"})
ok = [d for d in docs if "failed" not in d]
if len(ok) == 1 and len(docs) == 1:
    merged = ok[0]
else:
    s = lambda k: sum(d.get(k) or 0 for d in ok)
    before = [d["rss_before_kib"] for d in ok if d.get("rss_before_kib") is not None]
    after = [d["rss_after_kib"] for d in ok if d.get("rss_after_kib") is not None]
    open_at = s("open_at_hold")
    kib = None
    if before and after and open_at:
        kib = round((max(after) - min(before)) / open_at, 2)
    merged = {
        "scenario": "idle", "transport": "websocket", "label": server,
        "clients": total, "processes": len(docs),
        "connected": s("connected"), "connect_failed": s("connect_failed"),
        "open_at_hold": open_at, "kib_per_conn": kib,
        "rss_before_kib": min(before) if before else None,
        "rss_after_kib": max(after) if after else None,
        "dropped_during_hold": s("dropped_during_hold"),
        "dropped_before_hold": s("dropped_before_hold"),
        "pings_during_hold": s("pings_during_hold"),
        "errors": {"total": sum((d.get("errors") or {}).get("total", 0) for d in ok)},
        "ops": s("ops"), "op": "ping",
        # Each process measured the same server over overlapping windows:
        # CPU per ping from the first process's window and all pings is
        # not exact, so none is given.
        "server_cpu_us_per_op": None,
        "cpu": {"server_cpu_pct": max((d.get("cpu") or {}).get("server_cpu_pct") or 0 for d in ok) if ok else None},
        "failed_processes": len(docs) - len(ok),
    }
    if len(ok) < len(docs):
        merged["failed"] = f"{len(docs) - len(ok)} load-tool process(es) gave no JSON"
merged["case"] = case
merged["server"] = server
merged["clients"] = total
with open(out, "a") as f:
    f.write(json.dumps(merged, sort_keys=True) + "\n")
PY
    rm -f "${outs[@]}"
    judge "$case" "$server"
}

# A RESP command to the Redis server on port $1; prints the first integer
# reply line (":N") or the first line. A subshell, like probe.
redis_cmd() ( # port words...
    local port=$1 w line
    shift
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    {
        printf '*%d\r\n' $#
        for w in "$@"; do printf '$%d\r\n%s\r\n' ${#w} "$w"; done
    } >&3
    while read -t 2 -r line <&3; do
        line=${line%$'\r'}
        case $line in
            :*) echo "${line#:}"; exit 0 ;;
            +* | -*) echo "$line"; exit 0 ;;
        esac
    done
    exit 1
)

# A fresh redis-server on a free loopback port, nothing saved, pinned to
# core 0 and stopped with the EXTRA_PIDS: sets RPORT and RPID. When it
# does not answer, records the run as failed and returns 1.
RPORT=""
RPID=""
start_redis() { # case server
    RPORT=$(free_port)
    taskset -c 0 redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
        >"$LOGS/$1-$2-redis.log" 2>&1 &
    RPID=$!
    EXTRA_PIDS+=("$RPID")
    for _ in $(seq 1 50); do
        [[ $(redis_cmd "$RPORT" PING 2>/dev/null) == "+PONG" ]] && return 0
        sleep 0.1
    done
    log "redis-server did not answer on port $RPORT (see $LOGS/$1-$2-redis.log)"
    stop_extra
    record_plain "$1" "$2" '{"failed": "redis-server did not start"}'
    FAILED+=("$1/$2: redis-server did not start")
    return 1
}

# The body of GET $2 on port $1 (HTTP/1.1, connection closed after it),
# bounded to 3 s. A subshell, like probe.
http_body() ( # port path
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
    timeout 3 cat <&3 | python3 -c 'import sys; print(sys.stdin.read().split("\r\n\r\n", 1)[-1])'
)

# How many nodes of its cluster the gateway on port $1 counts alive (its
# /health's cluster.nodes.alive); 0 when it does not answer.
nodes_alive() { # port
    http_body "$1" /health 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.loads(sys.stdin.read())
    print(((d.get("cluster") or {}).get("nodes") or {}).get("alive") or 0)
except Exception:
    print(0)' 2>/dev/null || echo 0
}

# Two nodes of `server` on a fresh redis-server (ephemeral port, nothing
# saved), all pinned to core 0, the load tool on core 1; stops all three.
cluster_run() { # server
    local server=$1 case=cluster-broadcast rport rpid n1pid n1port n2port
    settle_time_wait
    start_redis "$case" "$server" || return 0
    rport=$RPORT rpid=$RPID
    CLUSTER_REDIS=redis://127.0.0.1:$rport
    if ! start_or_record "$server" "$case"; then
        CLUSTER_REDIS=""
        stop_extra
        return 0
    fi
    n1pid=$SPID n1port=$SPORT
    EXTRA_PIDS+=("$n1pid")
    SPID=""
    if ! start_or_record "$server" "$case" "" "$server-2"; then
        CLUSTER_REDIS=""
        stop_extra
        return 0
    fi
    CLUSTER_REDIS=""
    n2port=$SPORT
    # Both nodes must listen on the bus before the first message: wait
    # until Redis counts two subscribers of the request channel of "/"
    # (each adapter subscribes to it after the broadcast pattern).
    local subs=0
    for _ in $(seq 1 100); do
        subs=$(redis_cmd "$rport" PUBSUB NUMSUB 'socket.io-request#/#' 2>/dev/null || echo 0)
        [[ $subs == 2 ]] && break
        sleep 0.1
    done
    [[ $subs == 2 ]] || log "  only $subs node(s) subscribed on Redis after 10 s; going on"
    RUN_OUT=$(mktemp)
    local rc=0
    taskset -c 1 "$LOAD" --scenario cluster-broadcast --via "$CLUSTER_VIA" \
        --url "http://127.0.0.1:$n1port" --url "http://127.0.0.1:$n2port" \
        --server-pid "$n1pid" --server-pid "$SPID" --redis-pid "$rpid" \
        --clients "$CLUSTER_CLIENTS" --rate "$CLUSTER_RATE" --duration "$DURATION" \
        --json-only --label "$server" >"$RUN_OUT" 2>>"$LOGS/$case-$server.load.log" || rc=$?
    [[ $rc == 0 ]] || log "  load tool exited with status $rc (see $LOGS/$case-$server.load.log)"
    stop_server
    stop_extra
    record "$RUN_OUT" "$case" "$server" "{\"redis_port\": $rport}"
    rm -f "$RUN_OUT"
    judge "$case" "$server"
}

# ROUTING_NODES gateway nodes on a fresh redis-server, sharing a cluster
# secret, all pinned to core 0 (the load tool on core 1): polling echo
# with the clients' requests spread by `routing` (round-robin or sticky);
# the CPU per round trip is the nodes' together (Redis apart). Stops all.
routing_run() { # routing
    local routing=$1 server=socketgate case=routing-$1 i
    local urls=() pids=() ports=()
    settle_time_wait
    start_redis "$case" "$server" || return 0
    CLUSTER_REDIS=redis://127.0.0.1:$RPORT
    # The environment rather than a flag: a flag shows in the process list.
    export SOCKETGATE_CLUSTER_SECRET=$CLUSTER_SECRET
    for ((i = 1; i <= ROUTING_NODES; i++)); do
        if ! start_or_record "$server" "$case" "" "$server-$i"; then
            unset SOCKETGATE_CLUSTER_SECRET
            CLUSTER_REDIS=""
            stop_extra
            return 0
        fi
        urls+=(--url "http://127.0.0.1:$SPORT")
        pids+=(--server-pid "$SPID")
        ports+=("$SPORT")
        EXTRA_PIDS+=("$SPID")
        SPID=""
    done
    unset SOCKETGATE_CLUSTER_SECRET
    CLUSTER_REDIS=""
    # A node forwards only to the nodes it knows: wait until every one
    # counts them all alive (they meet through Redis).
    local p ok=0
    for _ in $(seq 1 100); do
        ok=1
        for p in "${ports[@]}"; do
            [[ $(nodes_alive "$p") -ge $ROUTING_NODES ]] || { ok=0; break; }
        done
        [[ $ok == 1 ]] && break
        sleep 0.1
    done
    [[ $ok == 1 ]] || log "  not every node counts $ROUTING_NODES nodes alive after 10 s; going on"
    RUN_OUT=$(mktemp)
    local rc=0
    taskset -c 1 "$LOAD" --scenario echo --transport polling --routing "$routing" \
        "${urls[@]}" "${pids[@]}" --redis-pid "$RPID" --health-path /health \
        --clients "$ROUTING_CLIENTS" --duration "$DURATION" \
        --json-only --label "$server" >"$RUN_OUT" 2>>"$LOGS/$case-$server.load.log" || rc=$?
    [[ $rc == 0 ]] || log "  load tool exited with status $rc (see $LOGS/$case-$server.load.log)"
    stop_extra
    record "$RUN_OUT" "$case" "$server" "{\"redis_port\": $RPORT}"
    rm -f "$RUN_OUT"
    judge "$case" "$server"
}

# One gateway, WebSocket echo: `none` without Redis, `off` with Redis and
# --recovery-ms 0, `on` with Redis and --recovery-ms RECOVERY_MS (every
# event through a Redis stream), `memory` without Redis and RECOVERY_MS.
# Gateway and Redis pinned to core 0; Redis's CPU is read too.
recovery_run() { # mode
    local mode=$1 server=socketgate case=recovery-$1 redis_args=() ms=0
    settle_time_wait
    if [[ $mode == off || $mode == on ]]; then
        start_redis "$case" "$server" || return 0
        CLUSTER_REDIS=redis://127.0.0.1:$RPORT
        redis_args=(--redis-pid "$RPID")
    fi
    [[ $mode == on || $mode == memory ]] && ms=$RECOVERY_MS
    USE_GATEWAY=1
    GATEWAY_EXTRA="--recovery-ms $ms"
    if ! start_or_record "$server" "$case"; then
        USE_GATEWAY=0 GATEWAY_EXTRA="" CLUSTER_REDIS=""
        stop_extra
        return 0
    fi
    USE_GATEWAY=0 GATEWAY_EXTRA="" CLUSTER_REDIS=""
    run_load "$case" "$server" --scenario echo --transport websocket \
        --clients "$RECOVERY_CLIENTS" --duration "$DURATION" --health-path /health "${redis_args[@]}"
    stop_server
    stop_extra
    record "$RUN_OUT" "$case" "$server" "{\"recovery_ms\": $ms}"
    rm -f "$RUN_OUT"
    judge "$case" "$server"
}

# ---------------------------------------------------------------- run

mkdir -p "$(dirname "$OUT")" "$LOGS"
[[ -f $OUT ]] && mv "$OUT" "${OUT%.jsonl}.previous.jsonl"
: >"$OUT"
record_plain _run _ "$(python3 -c '
import json, sys, platform, os
print(json.dumps({"meta": True, "quick": sys.argv[1] == "1", "duration_s": float(sys.argv[2]),
    "idle_hold_s": float(sys.argv[3]), "step_duration_s": float(sys.argv[4]),
    "step_rates": [float(r) for r in sys.argv[5].split()], "broadcast_rate": float(sys.argv[6]),
    "nofile": int(sys.argv[7]), "kernel": platform.release(), "cpus": os.cpu_count()}))' \
    "$QUICK" "$DURATION" "$IDLE_HOLD" "$STEP_DURATION" "$STEP_RATES" "$BCAST_RATE" "$NOFILE")"

START=$(date +%s)
for case in ${SCENARIOS//,/ }; do
    for server in ${SERVERS//,/ }; do
        if [[ $case == idle-big || $case == routing || $case == recovery ]]; then
            [[ $server == socketgate ]] || continue
        elif ! supports "$server" "$case"; then
            record_plain "$case" "$server" '{"na": true}'
            continue
        fi
        log "$case: $server"
        case $case in
            echo-ws) one_run "$case" "$server" --scenario echo --transport websocket \
                --clients "$ECHO_CLIENTS" --duration "$DURATION" ;;
            echo-polling) one_run "$case" "$server" --scenario echo --transport polling \
                --clients "$ECHO_CLIENTS" --duration "$DURATION" ;;
            broadcast) one_run "$case" "$server" --scenario broadcast --clients "$BCAST_CLIENTS" \
                --rate "$BCAST_RATE" --duration "$DURATION" ;;
            broadcast-step) step_ladder "$server" ;;
            idle-ws) one_run "$case" "$server" --scenario idle --transport websocket \
                --clients "$IDLE_WS" --duration "$IDLE_HOLD" ;;
            idle-polling) one_run "$case" "$server" --scenario idle --transport polling \
                --clients "$IDLE_POLL" --duration "$IDLE_HOLD" ;;
            churn) one_run "$case" "$server" --scenario churn --transport websocket \
                --clients "$CHURN_CLIENTS" --duration "$DURATION" ;;
            mixed) one_run "$case" "$server" --scenario mixed --clients "$MIXED_CLIENTS" \
                --duration "$DURATION" ;;
            idle-big) idle_big ;;
            cluster-broadcast) cluster_run "$server" ;;
            routing) for r in $ROUTINGS; do routing_run "$r"; done ;;
            recovery) for m in $RECOVERY_MODES; do recovery_run "$m"; done ;;
        esac
    done
done
log "done in $(($(date +%s) - START)) s; results in $OUT"

python3 "$BENCH/table.py" "$OUT"

if [[ ${#FAILED[@]} -gt 0 ]]; then
    printf '\nFailed runs:\n' >&2
    printf '  %s\n' "${FAILED[@]}" >&2
    exit 1
fi
