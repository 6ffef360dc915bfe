#!/usr/bin/env python3
"""Prints the results of bench/compare.sh as a markdown table.

    python3 bench/table.py [bench/results/latest.jsonl]
    python3 bench/table.py --why bench/results/latest.jsonl

With --why it prints only why the file's last result failed (nothing when
it passed): compare.sh judges each run with it, so its exit status and the
table's ✗ marks agree.

One row per case, one column per server. A cell holds the case's main
figure, the server's CPU time per operation (µs of server CPU per round
trip, delivery, cycle or ping) and a third figure: p99 for echo and mixed,
missing deliveries for broadcast, KiB per connection for idle. Two ratio
columns divide socketgate's CPU µs/op by socketioxide's and by the bare
server's (below 1: socketgate uses less CPU per operation); for the
broadcast step-up, at the highest rate both servers kept up with.

Marks: ⚠ other processes used more than 10 % of a core during the window
(figures disturbed); † the load tool used ≥ 90 % of its core (the main
figure is bounded by the tool, CPU µs/op still holds; for the step-up: at
the rate that lagged, so the rate found is a lower bound); ✗ the run failed
or lost something (see the notes). Standard library only.
"""

import json
import sys

SERVERS = ["socketgate", "socketioxide", "node", "bare"]
CASES = [
    ("echo-ws", "echo, WebSocket"),
    ("echo-polling", "echo, polling"),
    ("mixed", "mixed (5 % polling)"),
    ("broadcast", "broadcast, fixed rate"),
    ("broadcast-step", "broadcast, highest rate kept up"),
    ("churn", "churn (WebSocket)"),
    ("idle-ws", "idle, WebSocket"),
    ("idle-polling", "idle, polling"),
    ("idle-big", "idle, many WebSocket"),
    ("cluster-broadcast", "broadcast over 2 nodes on Redis"),
    ("routing-sticky", "polling echo, 3 nodes, sticky"),
    ("routing-round-robin", "polling echo, 3 nodes, round-robin"),
    ("recovery-none", "WebSocket echo, gateway, no Redis"),
    ("recovery-off", "WebSocket echo, gateway + Redis, recovery off"),
    ("recovery-on", "WebSocket echo, gateway + Redis, recovery on"),
    ("recovery-memory", "WebSocket echo, gateway, recovery on in memory"),
]


def num(v, digits=0):
    if v is None:
        return "-"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ms(us):
    return "-" if us is None else f"{us / 1000:.2f} ms"


def coarse(d):
    """True when the server CPU over the window is under 5 clock ticks:
    too few to divide by the operations (idle holds on few connections)."""
    cpu = d.get("cpu") or {}
    secs, tck = cpu.get("server_cpu_s"), cpu.get("clk_tck") or 100
    return secs is not None and secs < 5 / tck


def marks(d):
    cpu = d.get("cpu") or {}
    m = ""
    if (cpu.get("other_cpu_pct") or 0) > 10:
        m += " ⚠"
    if (cpu.get("load_cpu_pct") or 0) >= 90:
        m += " †"
    return m


def failed(case, d):
    """Why a run is marked ✗ (every reason, joined), or None."""
    if d.get("failed"):
        return d["failed"]
    why = []
    errs = (d.get("errors") or {}).get("total", 0)
    if errs:
        why.append(f"{errs} errors")
    if d.get("connect_failed"):
        why.append(f"{d['connect_failed']} connections failed")
    if case in ("broadcast", "cluster-broadcast") and d.get("missing"):
        why.append(f"{d['missing']} deliveries missing")
    if case.startswith("idle"):
        dropped = (d.get("dropped_during_hold") or 0) + (d.get("dropped_before_hold") or 0)
        if dropped:
            why.append(f"{dropped} connections dropped")
        if d.get("open_at_hold") != d.get("clients"):
            why.append(f"{d.get('open_at_hold')} of {d.get('clients')} open at the hold")
    elif not d.get("ops"):
        why.append("no operation completed")
    return "; ".join(why) or None


def cell(case, d):
    if d is None:
        return "not run"
    if d.get("na"):
        return "n/a"
    cpu = d.get("server_cpu_us_per_op")
    us = f"{num(cpu, 2)} µs/op"
    ping = f"{num(cpu, 1)} µs/ping"
    if coarse(d) and d.get("ops"):
        tck = (d.get("cpu") or {}).get("clk_tck") or 100
        bound = 5 / tck * 1e6 / d["ops"]
        us = f"< {num(bound, 2)} µs/op"
        ping = f"< {num(bound, 1)} µs/ping"
    if case == "broadcast-step":
        if d.get("failed"):
            return "✗ " + d["failed"]
        rate = d.get("max_sustained_rate") or 0
        if not rate:
            return f"✗ lags at {num(d.get('first_lag_rate'))}/s"
        ge = "≥ " if d.get("first_lag_rate") is None else ""
        # A lag with the load tool saturated may be the tool's, not the
        # server's: the rate found is then a lower bound.
        tool = " †" if (d.get("load_cpu_pct_at_lag") or 0) >= 90 else ""
        return f"{ge}{num(rate)} msg/s · {us}{tool}"
    if d.get("failed"):
        return "✗ " + d["failed"]
    if case in ("echo-ws", "echo-polling", "mixed"):
        lat = d.get("latency_us") or {}
        main = f"{num(d.get('round_trips_per_s'))} rt/s · {us} · p99 {ms(lat.get('p99'))}"
    elif case == "broadcast":
        main = f"{num(d.get('delivered_per_s'))} del/s · {us} · missing {num(d.get('missing'))}"
    elif case == "cluster-broadcast":
        # µs/op: both nodes' CPU per delivery; p99 over every receiver and
        # on the second node (reached only through Redis); Redis's share.
        lat = d.get("latency_us") or {}
        nodes = d.get("per_node") or []
        p99_2 = (nodes[1].get("latency_us") or {}).get("p99") if len(nodes) > 1 else None
        redis = (d.get("cpu") or {}).get("redis_cpu_pct")
        main = (
            f"{num(d.get('delivered_per_s'))} del/s · {us} · p99 {ms(lat.get('p99'))}"
            f" (node 2: {ms(p99_2)}) · Redis {num(redis, 1)} % · missing {num(d.get('missing'))}"
        )
    elif case.startswith("routing-"):
        # µs/op: every node's CPU per round trip; forwarded requests per
        # round trip (the nodes' /health counters).
        lat = d.get("latency_us") or {}
        main = (
            f"{num(d.get('round_trips_per_s'))} rt/s · {us} · p50 {ms(lat.get('p50'))}"
            f" · p99 {ms(lat.get('p99'))} · {num(d.get('forwarded_per_op'), 2)} fwd/rt"
        )
    elif case.startswith("recovery-"):
        # µs/op: the gateway's; with Redis also gateway + Redis per round trip.
        lat = d.get("latency_us") or {}
        total = d.get("total_cpu_us_per_op")
        with_redis = f" (+ Redis: {num(total, 2)})" if total is not None else ""
        main = (
            f"{num(d.get('round_trips_per_s'))} rt/s · {us}{with_redis}"
            f" · p50 {ms(lat.get('p50'))} · p99 {ms(lat.get('p99'))}"
        )
    elif case == "churn":
        main = f"{num(d.get('cycles_per_s'))} cycles/s · {us}"
    elif case.startswith("idle"):
        main = (
            f"{num(d.get('kib_per_conn'), 1)} KiB/conn · {ping}"
            f" · dropped {num((d.get('dropped_during_hold') or 0) + (d.get('dropped_before_hold') or 0))}"
        )
    else:
        main = us
    bad = "✗ " if failed(case, d) else ""
    return bad + main + marks(d)


def ratio(case, a, b):
    if a is None or b is None or a.get("na") or b.get("na"):
        return "-"
    if case == "broadcast-step":
        # CPU per delivery falls as the rate rises (more frames per wake-up
        # and per write): compare at the highest rate both kept up with.
        def kept(d):
            return {s["rate"]: s.get("server_cpu_us_per_op") for s in d.get("steps") or [] if not s.get("lag")}

        ka, kb = kept(a), kept(b)
        common = [r for r in ka if r in kb and ka[r] is not None and kb[r]]
        if not common:
            return "-"
        r = max(common)
        return f"{ka[r] / kb[r]:.2f} (at {num(r)}/s)"
    if coarse(a) or coarse(b):
        return "-"  # below the clock-tick resolution
    x, y = a.get("server_cpu_us_per_op"), b.get("server_cpu_us_per_op")
    if x is None or y is None or y == 0:
        return "-"
    return f"{x / y:.2f}"


def print_why(path):
    """--why: the reason the last result of `path` failed, or nothing."""
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    d = json.loads(lines[-1])
    print(failed(d["case"], d) or "")


def main():
    if sys.argv[1:2] == ["--why"]:
        return print_why(sys.argv[2])
    path = sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest.jsonl"
    results = {}
    meta = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            if d.get("meta"):
                meta = d
                continue
            case, server = d.get("case"), d.get("server")
            if case == "broadcast-step" and not d.get("summary"):
                continue  # one line per step; the summary line carries the result
            results[(case, server)] = d
    servers = [s for s in SERVERS if any(k[1] == s for k in results)]
    cases = [(c, t) for c, t in CASES if any(k[0] == c for k in results)]

    header = ["case"] + servers
    if "socketgate" in servers and "socketioxide" in servers:
        header.append("CPU/op socketgate ÷ socketioxide")
    if "socketgate" in servers and "bare" in servers:
        header.append("CPU/op socketgate ÷ bare")
    if meta:
        print(
            f"Windows {num(meta.get('duration_s'), 1)} s, idle hold {num(meta.get('idle_hold_s'), 1)} s, "
            f"broadcast at {num(meta.get('broadcast_rate'))}/s, steps of {num(meta.get('step_duration_s'), 1)} s"
            + (" (QUICK smoke run)" if meta.get("quick") else "")
        )
        print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * len(header)) + "|")
    notes = []
    for case, title in cases:
        row = [title]
        for s in servers:
            d = results.get((case, s))
            row.append(cell(case, d))
            if d is not None and not d.get("na"):
                # A ladder's lag is no failure (its note follows), a ladder
                # that did not run is.
                why = d.get("failed") if case == "broadcast-step" else failed(case, d)
                if why:
                    notes.append(f"- {title} / {s}: {why}" + (f" ({d['last_error']})" if d.get("last_error") else ""))
                elif case == "broadcast-step":
                    if d.get("first_lag_rate") is not None:
                        notes.append(
                            f"- {title} / {s}: kept up to {num(d.get('max_sustained_rate'))}/s, "
                            f"lagged at {num(d['first_lag_rate'])}/s ({d.get('lag_reason')}; "
                            f"load tool {num(d.get('load_cpu_pct_at_lag'))} % of its core)"
                        )
                    else:
                        notes.append(f"- {title} / {s}: kept up at every rate tried")
        sg = results.get((case, "socketgate"))
        if "socketgate" in servers and "socketioxide" in servers:
            row.append(ratio(case, sg, results.get((case, "socketioxide"))))
        if "socketgate" in servers and "bare" in servers:
            row.append(ratio(case, sg, results.get((case, "bare"))))
        print("| " + " | ".join(row) + " |")
    print()
    print(
        "rt = round trip, del = delivery; µs/op = server CPU µs per round trip, delivery, "
        "cycle or ping (< x: under 5 clock ticks in the window). ⚠ machine busy, "
        "† load tool saturated, ✗ failed (notes below)."
    )
    if notes:
        print()
        print("\n".join(notes))


if __name__ == "__main__":
    main()
