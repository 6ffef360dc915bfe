//! `echo` and `mixed`: N clients in a closed loop, each emitting
//! `42["echo",<client>,<seq>,<send µs>]` and awaiting the same event back
//! (a trailing string argument, the offset a server with connection state
//! recovery appends, is accepted).
//!
//! Over several nodes (`--routing`, one `--url` per node of a cluster) a
//! polling client's HTTP requests are spread as a load balancer would:
//! `sticky` sends all of a client's requests to the node of its handshake
//! (client `i` to node `i % nodes`), `round-robin` sends each request to
//! the next node in turn (one counter over all clients), so most reach a
//! node that does not own the session and must forward them. WebSocket
//! clients are spread the same way (one upgrade request each).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::{
    MAX_OPS_PER_CLIENT, Opts, collect_ready, connect_client_on, join_all, measure_window_all,
    report_cpu_and_errors, secs, wait_start,
};
use crate::conn::{Conn, Error, Result, Route, http_get};
use crate::ctx::{Ctx, Routing, Transport, now_us};
use crate::proto::{args_u64, fast_ints_tail, lossy, parse_event};
use crate::report::{Report, ms, opt};
use crate::stats::{Errors, Group, Hist, Window, round2};

/// Runs echo (or mixed) against `nodes`: one server, or the nodes of a
/// cluster with `o.routing` set.
pub async fn run(nodes: &[Arc<Ctx>], o: &Opts, mixed: bool) -> Report {
    let ctx = nodes[0].clone();
    let all_nodes: Arc<[Arc<Ctx>]> = nodes.into();
    let k = nodes.len();
    let shared_turn = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = o.clients;
    let n_poll = if mixed {
        ((n as f64) * o.polling_percent / 100.0).round() as usize
    } else if o.transport == Transport::Polling {
        n
    } else {
        0
    }
    .min(n);
    let ws = Arc::new(Group::default());
    let poll = Arc::new(Group::default());

    let (ready_tx, ready_rx) = mpsc::channel(n.max(1));
    let (start_tx, start_rx) = watch::channel(None::<Instant>);
    let t_connect = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let (transport, group) = if i < n_poll {
            (Transport::Polling, poll.clone())
        } else {
            (Transport::Websocket, ws.clone())
        };
        let route = match o.routing {
            Some(Routing::RoundRobin) if k > 1 => Route::RoundRobin(shared_turn.clone()),
            Some(_) => Route::Node(i % k),
            None => Route::Node(0),
        };
        handles.push(tokio::spawn(client(
            all_nodes.clone(),
            route,
            transport,
            i as u64,
            group,
            ready_tx.clone(),
            start_rx.clone(),
            o.warmup,
            o.duration,
        )));
    }
    drop(ready_tx);
    let (_, _, pending) = collect_ready(ready_rx, n, ctx.timeout).await;
    let connect_s = t_connect.elapsed();

    let start_at = Instant::now() + Duration::from_millis(20);
    let _ = start_tx.send(Some(start_at));
    let win_start = start_at + o.warmup;
    let win_end = win_start + o.duration;
    // The nodes' counters (HTTP requests sent, the health route's
    // routing and recovery counters) at both ends of the window, read
    // right after the CPU counters.
    let sampler = async {
        tokio::time::sleep_until(win_start.into()).await;
        let a = sample_nodes(nodes, o.health_path.as_deref()).await;
        tokio::time::sleep_until(win_end.into()).await;
        let b = sample_nodes(nodes, o.health_path.as_deref()).await;
        (a, b)
    };
    let (window, (sample_a, sample_b)) = tokio::join!(
        measure_window_all(&o.server_pids, o.redis_pid, win_start, win_end),
        sampler
    );
    join_all(handles, win_end + ctx.timeout + Duration::from_secs(3)).await;

    let groups: Vec<(&str, &Group, usize)> = if mixed {
        vec![("websocket", &ws, n - n_poll), ("polling", &poll, n_poll)]
    } else if n_poll == n {
        vec![("polling", &poll, n)]
    } else {
        vec![("websocket", &ws, n)]
    };
    let dur = o.duration.as_secs_f64();
    let row =
        |name: &str, clients: usize, connected: u64, ops: u64, hist: &Hist, errors: &Errors| {
            vec![
                name.to_string(),
                clients.to_string(),
                connected.to_string(),
                format!("{:.0}", ops as f64 / dur),
                ms(hist.quantile(0.5)),
                ms(hist.quantile(0.99)),
                ms(hist.max()),
                errors.summary(),
            ]
        };
    let (mut ops, mut connected, mut connect_failed) = (0, 0, 0);
    let mut hist = Hist::default();
    let mut errors = Errors::default();
    let mut last_error = None;
    let mut per = serde_json::Map::new();
    let mut rows = Vec::new();
    for (name, g, count) in &groups {
        let g_ops = g.ops();
        let g_connected = g.connected.load(Ordering::Relaxed);
        let g_hist = g.hist.lock().expect("hist");
        let g_errors = g.errors.lock().expect("errors");
        let g_last_error = g.last_error.lock().expect("err").clone();
        rows.push(row(name, *count, g_connected, g_ops, &g_hist, &g_errors));
        per.insert(
            name.to_string(),
            json!({
                "clients": count,
                "connected": g_connected,
                "round_trips": g_ops,
                "round_trips_per_s": round2(g_ops as f64 / dur),
                "latency_us": g_hist.to_json(),
                "errors": g_errors.to_json(),
                "last_error": g_last_error,
            }),
        );
        ops += g_ops;
        connected += g_connected;
        connect_failed += g.connect_failed.load(Ordering::Relaxed);
        hist.merge(&g_hist);
        errors.merge(&g_errors);
        last_error = g_last_error.or(last_error);
    }
    if groups.len() > 1 {
        rows.push(row("total", n, connected, ops, &hist, &errors));
    }

    let scenario = if mixed { "mixed" } else { "echo" };
    let over = match o.routing {
        Some(routing) if k > 1 => format!(" over {k} nodes, {} routing", routing.name()),
        _ => String::new(),
    };
    let mut r = Report::new(format!(
        "{scenario}: {n} clients ({} websocket, {n_poll} polling){over}, {}s after {}s warm-up",
        n - n_poll,
        secs(o.duration),
        secs(o.warmup)
    ));
    r.row(
        "connect phase",
        format!(
            "{:.2} s ({} still connecting at start)",
            connect_s.as_secs_f64(),
            pending
        ),
    );
    r.grid(
        &[
            "transport",
            "clients",
            "connected",
            "round trips/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
        ],
        rows,
    );
    if k > 1 {
        report_nodes(&mut r, nodes, &window, ops, &sample_a, &sample_b);
    } else if let (Some(a), Some(b)) = (&sample_a[0].health, &sample_b[0].health) {
        r.set("health_delta", health_delta(a, b));
    }
    report_redis(&mut r, &window, ops);
    report_cpu_and_errors(&mut r, &window, ops, "round trip", &errors, last_error);
    if let Some(routing) = o.routing {
        r.set("routing", json!(routing.name()));
    }
    r.set("round_trips", json!(ops));
    r.set("round_trips_per_s", json!(round2(ops as f64 / dur)));
    r.set("latency_us", hist.to_json());
    r.set("connected", json!(connected));
    r.set("connect_failed", json!(connect_failed));
    r.set("connect_s", json!(round2(connect_s.as_secs_f64())));
    if mixed {
        r.set("polling_clients", json!(n_poll));
        r.set("per_transport", Value::Object(per));
    }
    r
}

/// One node's counters at one instant.
struct NodeSample {
    /// HTTP requests this tool sent it so far.
    http_requests: u64,
    /// Its health route's JSON, when `--health-path` is given and it
    /// answered.
    health: Option<Value>,
}

async fn sample_nodes(nodes: &[Arc<Ctx>], health_path: Option<&str>) -> Vec<NodeSample> {
    let requests: Vec<u64> = nodes
        .iter()
        .map(|n| n.http_requests.load(Ordering::Relaxed))
        .collect();
    let healths = futures_util::future::join_all(nodes.iter().map(|n| async move {
        let path = health_path?;
        match http_get(n, path).await {
            Ok((200, body)) => serde_json::from_slice::<Value>(&body).ok(),
            _ => None,
        }
    }))
    .await;
    requests
        .into_iter()
        .zip(healths)
        .map(|(http_requests, health)| NodeSample {
            http_requests,
            health,
        })
        .collect()
}

/// The growth of the numeric counters under `routing` and `recovery` of a
/// health JSON between two readings.
fn health_delta(a: &Value, b: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for key in ["routing", "recovery"] {
        let (Some(x), Some(y)) = (
            a.get(key).and_then(Value::as_object),
            b.get(key).and_then(Value::as_object),
        ) else {
            continue;
        };
        let mut m = serde_json::Map::new();
        for (name, v) in y {
            if let (Some(after), Some(before)) = (v.as_u64(), x.get(name).and_then(Value::as_u64)) {
                m.insert(name.clone(), json!(after.saturating_sub(before)));
            }
        }
        out.insert(key.into(), Value::Object(m));
    }
    Value::Object(out)
}

fn counter(delta: &Value, group: &str, name: &str) -> Option<u64> {
    delta.get(group)?.get(name)?.as_u64()
}

/// Per node of a cluster: requests received from the tool, CPU, and the
/// routing counters of its health route over the window; their totals.
fn report_nodes(
    r: &mut Report,
    nodes: &[Arc<Ctx>],
    window: &Window,
    ops: u64,
    a: &[NodeSample],
    b: &[NodeSample],
) {
    const ROUTING: [&str; 6] = [
        "forwarded",
        "served_forwarded",
        "relayed",
        "forward_failures",
        "refused_forwards",
        "owner_unknown",
    ];
    let mut rows = Vec::new();
    let mut docs = Vec::new();
    let mut requests_total = 0;
    let mut totals = [None::<u64>; ROUTING.len()];
    for (i, node) in nodes.iter().enumerate() {
        let requests = b[i].http_requests.saturating_sub(a[i].http_requests);
        requests_total += requests;
        let delta = match (&a[i].health, &b[i].health) {
            (Some(x), Some(y)) => Some(health_delta(x, y)),
            _ => None,
        };
        let cpu = window.node_cpu_s.get(i).copied().flatten();
        let mut row = vec![
            format!("{} {}", i + 1, node.target.host),
            requests.to_string(),
            cpu.map(|c| format!("{c:.2} s ({:.0} %)", window.pct(c)))
                .unwrap_or_else(|| "-".into()),
        ];
        for (j, name) in ROUTING.iter().enumerate() {
            let v = delta.as_ref().and_then(|d| counter(d, "routing", name));
            if let Some(v) = v {
                *totals[j].get_or_insert(0) += v;
            }
            row.push(v.map(|v| v.to_string()).unwrap_or_else(|| "-".into()));
        }
        rows.push(row);
        docs.push(json!({
            "node": i + 1,
            "url": node.target.host,
            "http_requests": requests,
            "server_cpu_s": cpu.map(round2),
            "server_cpu_pct": cpu.map(|c| round2(window.pct(c))),
            "health_delta": delta,
        }));
    }
    let mut headers = vec!["node", "requests", "server CPU"];
    headers.extend(ROUTING);
    r.grid(&headers, rows);
    let forwarded = totals[0];
    r.row(
        "HTTP requests",
        format!(
            "{requests_total} in the window, {} per round trip",
            opt((ops > 0).then(|| requests_total as f64 / ops as f64), 2)
        ),
    );
    if let Some(f) = forwarded {
        r.row(
            "forwarded",
            format!(
                "{f} ({} % of the requests, {} per round trip)",
                opt(
                    (requests_total > 0).then(|| f as f64 * 100.0 / requests_total as f64),
                    1
                ),
                opt((ops > 0).then(|| f as f64 / ops as f64), 2)
            ),
        );
    }
    let mut total_doc = serde_json::Map::new();
    for (name, v) in ROUTING.iter().zip(totals) {
        total_doc.insert((*name).into(), json!(v));
    }
    r.set("nodes", json!(nodes.len()));
    r.set("per_node", json!(docs));
    r.set("routing_counters", Value::Object(total_doc));
    r.set("http_requests", json!(requests_total));
    r.set(
        "http_requests_per_op",
        json!((ops > 0).then(|| round2(requests_total as f64 / ops as f64))),
    );
    r.set(
        "forwarded_per_op",
        json!(forwarded.and_then(|f| (ops > 0).then(|| round2(f as f64 / ops as f64)))),
    );
    r.set(
        "forwarded_share",
        json!(
            forwarded.and_then(
                |f| (requests_total > 0).then(|| round2(f as f64 / requests_total as f64))
            )
        ),
    );
}

/// With `--redis-pid`: the Redis server's CPU per round trip, and the
/// servers' and Redis's together.
fn report_redis(r: &mut Report, window: &Window, ops: u64) {
    let Some(c) = window.redis_cpu_s else {
        return;
    };
    let per_op = |s: f64| (ops > 0).then(|| s * 1e6 / ops as f64);
    let total = window.server_cpu_s.map(|s| s + c);
    r.row(
        "Redis CPU",
        format!(
            "{c:.2} s ({:.0} % of a core), {} µs per round trip; servers + Redis: {} µs per round trip",
            window.pct(c),
            opt(per_op(c), 2),
            opt(total.and_then(per_op), 2)
        ),
    );
    r.set("redis_cpu_us_per_op", json!(per_op(c).map(round2)));
    r.set(
        "total_cpu_us_per_op",
        json!(total.and_then(per_op).map(round2)),
    );
}

#[allow(clippy::too_many_arguments)]
async fn client(
    nodes: Arc<[Arc<Ctx>]>,
    route: Route,
    transport: Transport,
    id: u64,
    group: Arc<Group>,
    ready: mpsc::Sender<bool>,
    mut start: watch::Receiver<Option<Instant>>,
    warmup: Duration,
    duration: Duration,
) {
    let ctx = &nodes[0];
    let Some(mut conn) = connect_client_on(&nodes, &route, transport, &group, ready).await else {
        return;
    };
    let Some(start_at) = wait_start(&mut start).await else {
        return;
    };
    tokio::time::sleep_until(start_at.into()).await;
    let win_start = start_at + warmup;
    let win_end = win_start + duration;
    let mut seq = 0u64;
    while Instant::now() < win_end && seq < MAX_OPS_PER_CLIENT {
        seq += 1;
        let t0 = Instant::now();
        let msg = format!("42[\"echo\",{id},{seq},{}]", now_us());
        if let Err(e) = conn.send(msg).await {
            group.error(&e);
            return;
        }
        match tokio::time::timeout(ctx.timeout, await_echo(&mut conn, id, seq)).await {
            Ok(Ok(())) => {
                let t1 = Instant::now();
                if t1 >= win_start && t1 <= win_end {
                    group.record(t1.duration_since(t0).as_micros() as u64);
                }
            }
            Ok(Err(e)) => {
                group.error(&e);
                return;
            }
            Err(_) => {
                group.error(&Error::Timeout("echo reply"));
                return;
            }
        }
    }
    let _ = conn.close().await;
}

/// Waits for `echo` carrying (id, seq); other events are skipped.
async fn await_echo(conn: &mut Conn, id: u64, seq: u64) -> Result<()> {
    loop {
        let p = conn.recv().await?;
        let mut v = [0u64; 3];
        let is_echo = if fast_ints_tail(&p, br#"2["echo","#, &mut v, true) {
            true
        } else {
            match parse_event(&p) {
                Some(ev) if ev.name == "echo" => {
                    if !args_u64(&ev, &mut v) {
                        return Err(Error::Protocol(format!(
                            "echo with unexpected arguments: {}",
                            lossy(&p)
                        )));
                    }
                    true
                }
                _ => false,
            }
        };
        if is_echo {
            if v[0] == id && v[1] == seq {
                return Ok(());
            }
            return Err(Error::Protocol(format!(
                "echo mismatch: expected client {id} seq {seq}, got client {} seq {}",
                v[0], v[1]
            )));
        }
    }
}
