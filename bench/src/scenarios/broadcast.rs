//! `broadcast` and `cluster-broadcast`: N WebSocket receivers and one
//! sender emitting `42["broadcast",<seq>,<send µs>]` at a fixed rate; the
//! server emits `bcast` with the same arguments to every socket. Each
//! receiver keeps a bitset of the sequence numbers it got, so missing and
//! duplicate deliveries are exact.
//!
//! With several servers (the nodes of a cluster, `cluster-broadcast`) the
//! receivers are spread over them round-robin and the sender is on the
//! first, so every node but the first only gets the messages through the
//! cluster; figures are given per node and in all. With `--via chat` the
//! messages are the socketgate gateway relay's `chat` events instead
//! (`42["chat",{"seq":…,"t":…}]` in, the same object plus `from` out to
//! everyone), for servers that implement that rather than the contract.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::{
    Opts, collect_ready, connect_client, join_all, report_cpu_and_errors, secs, wait_start,
};
use crate::conn::Conn;
use crate::ctx::{Ctx, Transport, now_us};
use crate::proto::{args_u64, fast_fields, fast_ints, parse_event};
use crate::report::{Report, latency_ms, opt};
use crate::stats::{Errors, Group, Hist, Snap, Window, round2};

/// Upper bound on messages the sender emits in one run.
const MAX_SENDS: u64 = 10_000_000;

/// Which events carry the broadcast messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// The benchmark contract (DESIGN.md §6): `broadcast` [seq, µs] in,
    /// `bcast` [seq, µs] out to every socket.
    Contract,
    /// The socketgate gateway's relay: `chat` {seq, t} in, `chat`
    /// {seq, t, from} out to every socket (the gateway binary and
    /// bench/node/server.mjs implement it).
    Chat,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Contract => "contract",
            Via::Chat => "chat",
        }
    }

    /// The socket.io packet the sender emits for message `seq` sent at `t` µs.
    fn message(self, seq: u64, t: u64) -> String {
        match self {
            Via::Contract => format!("42[\"broadcast\",{seq},{t}]"),
            Via::Chat => format!("42[\"chat\",{{\"seq\":{seq},\"t\":{t}}}]"),
        }
    }

    /// Reads (seq, send µs) from a delivered packet; false when it is not
    /// one of ours.
    fn parse(self, msg: &[u8], out: &mut [u64; 2]) -> bool {
        match self {
            Via::Contract => {
                fast_ints(msg, br#"2["bcast","#, out)
                    || parse_event(msg).is_some_and(|ev| ev.name == "bcast" && args_u64(&ev, out))
            }
            Via::Chat => {
                fast_fields(msg, br#"2["chat",{"#, &[b"seq", b"t"], out)
                    || parse_event(msg).is_some_and(|ev| {
                        let field = |k: &str| ev.args.first().and_then(|a| a.get(k)?.as_u64());
                        match (ev.name == "chat", field("seq"), field("t")) {
                            (true, Some(seq), Some(t)) => {
                                *out = [seq, t];
                                true
                            }
                            _ => false,
                        }
                    })
            }
        }
    }
}

#[derive(Default)]
struct RecvResult {
    /// Index of the server (node) this receiver is connected to.
    node: usize,
    conn: Option<Conn>,
    unique: u64,
    dups: u64,
    /// Process-clock µs of the last delivery.
    last_us: u64,
}

#[derive(Default)]
struct SendResult {
    sent: u64,
    first_us: u64,
    last_us: u64,
    errors: Errors,
    last_error: Option<String>,
}

/// Deliveries to the receivers of one node (or of all of them).
#[derive(Default)]
struct Tally {
    receivers: u64,
    delivered: u64,
    dups: u64,
    last_us: u64,
}

impl Tally {
    fn add(&mut self, r: &RecvResult) {
        self.delivered += r.unique;
        self.dups += r.dups;
        self.last_us = self.last_us.max(r.last_us);
    }
}

/// Runs the scenario against `nodes` (one server, or the nodes of a
/// cluster): receiver `i` connects to node `i % nodes.len()`, the sender to
/// the first node.
pub async fn run(nodes: &[Arc<Ctx>], o: &Opts) -> Report {
    let n = o.clients;
    let k = nodes.len();
    let planned = ((o.rate * o.duration.as_secs_f64()).round() as u64).clamp(1, MAX_SENDS);
    // One group per node: its receivers' latencies and errors.
    let groups: Vec<Arc<Group>> = (0..k).map(|_| Arc::new(Group::default())).collect();

    let (ready_tx, ready_rx) = mpsc::channel(n + 1);
    let (start_tx, start_rx) = watch::channel(None::<Instant>);
    let (total_tx, total_rx) = watch::channel(None::<u64>);
    let (done_tx, done_rx) = watch::channel(false);
    let t_connect = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let node = i % k;
        handles.push(tokio::spawn(receiver(
            nodes[node].clone(),
            node,
            groups[node].clone(),
            ready_tx.clone(),
            start_rx.clone(),
            total_rx.clone(),
            planned,
            o.duration + o.drain,
            o.via,
        )));
    }
    let sender = tokio::spawn(sender(
        nodes[0].clone(),
        ready_tx.clone(),
        start_rx.clone(),
        total_tx,
        done_rx,
        o.rate,
        planned,
        o.duration,
        o.drain,
        o.via,
    ));
    drop(ready_tx);
    // Every node's connect gate admits its own handshakes: the budget is
    // the one of all clients through one gate, an upper bound.
    let (_, _, pending) = collect_ready(ready_rx, n + 1, nodes[0].timeout).await;
    let connect_s = t_connect.elapsed();

    let start_at = Instant::now() + Duration::from_millis(50);
    let _ = start_tx.send(Some(start_at));
    tokio::time::sleep_until(start_at.into()).await;
    let a = Snap::take_all(&o.server_pids, o.redis_pid);
    let hard_end = start_at + o.duration + o.drain + Duration::from_secs(1);
    let mut results = join_all(handles, hard_end).await;
    let b = Snap::take_all(&o.server_pids, o.redis_pid);
    // Close the receivers outside the measured window.
    let closes: Vec<_> = results
        .iter_mut()
        .filter_map(|r| r.conn.take())
        .map(|c| tokio::spawn(c.close()))
        .collect();
    join_all(closes, Instant::now() + Duration::from_secs(3)).await;
    let _ = done_tx.send(true);
    let sres = match tokio::time::timeout_at(hard_end.into(), sender).await {
        Ok(Ok(s)) => s,
        _ => SendResult::default(),
    };
    let window = Window::between(&a, &b);

    let mut per_node: Vec<Tally> = groups
        .iter()
        .map(|g| Tally {
            receivers: g.connected.load(Ordering::Relaxed),
            ..Tally::default()
        })
        .collect();
    let mut all = Tally::default();
    for r in &results {
        per_node[r.node].add(r);
        all.add(r);
    }
    all.receivers = per_node.iter().map(|t| t.receivers).sum();
    let (receivers, delivered, dups) = (all.receivers, all.delivered, all.dups);
    let last_delivery_us = all.last_us;
    let expected = sres.sent * receivers;
    let missing = expected.saturating_sub(delivered);
    let span_s = if sres.sent > 0 {
        last_delivery_us.saturating_sub(sres.first_us) as f64 / 1e6
    } else {
        0.0
    };
    let delivered_per_s = if span_s > 0.0 {
        delivered as f64 / span_s
    } else {
        0.0
    };
    let drain_ms = last_delivery_us.saturating_sub(sres.last_us) as f64 / 1000.0;
    let send_rate = if sres.last_us > sres.first_us {
        (sres.sent.saturating_sub(1)) as f64 / ((sres.last_us - sres.first_us) as f64 / 1e6)
    } else {
        0.0
    };
    let mut hist = Hist::default();
    let mut errors = sres.errors.clone();
    let mut last_error = sres.last_error.clone();
    for g in &groups {
        hist.merge(&g.hist.lock().expect("hist"));
        errors.merge(&g.errors.lock().expect("errors"));
        if last_error.is_none() {
            last_error = g.last_error.lock().expect("err").clone();
        }
    }

    let via = match o.via {
        Via::Contract => String::new(),
        Via::Chat => " (via chat)".into(),
    };
    let mut r = Report::new(if k == 1 {
        format!(
            "broadcast: {n} websocket receivers + 1 sender at {} msg/s for {}s{via}",
            o.rate,
            secs(o.duration)
        )
    } else {
        format!(
            "cluster-broadcast: {n} websocket receivers over {k} nodes + 1 sender on node 1 \
             at {} msg/s for {}s{via}",
            o.rate,
            secs(o.duration)
        )
    });
    r.row(
        "connect phase",
        format!(
            "{:.2} s ({pending} still connecting at start)",
            connect_s.as_secs_f64()
        ),
    );
    r.row("receivers connected", format!("{receivers} of {n}"));
    r.row(
        "sent",
        format!(
            "{} of {planned} planned ({send_rate:.1} msg/s achieved)",
            sres.sent
        ),
    );
    r.row(
        "expected deliveries",
        format!("{expected} (sent × receivers)"),
    );
    r.row(
        "delivered",
        format!("{delivered} ({delivered_per_s:.0} msg/s over {span_s:.2} s)"),
    );
    r.row("missing", format!("{missing}"));
    r.row("duplicates", format!("{dups}"));
    r.row("delivery latency", latency_ms(&hist));
    r.row("last delivery after last send", format!("{drain_ms:.1} ms"));
    r.row("errors", errors.summary());
    if let Some(c) = window.redis_cpu_s {
        r.row(
            "Redis CPU",
            format!(
                "{c:.2} s ({:.0} % of a core), {} µs per message sent",
                window.pct(c),
                opt((sres.sent > 0).then(|| c * 1e6 / sres.sent as f64), 2)
            ),
        );
    }
    report_cpu_and_errors(&mut r, &window, delivered, "delivery", &errors, last_error);
    if k > 1 {
        r.set("nodes", json!(k));
        let mut rows = Vec::with_capacity(k);
        let mut docs = Vec::with_capacity(k);
        for (i, (t, g)) in per_node.iter().zip(&groups).enumerate() {
            let h = g.hist.lock().expect("hist");
            let missing = (sres.sent * t.receivers).saturating_sub(t.delivered);
            let cpu = window.node_cpu_s.get(i).copied().flatten();
            let us_per_op = cpu
                .filter(|_| t.delivered > 0)
                .map(|c| c * 1e6 / t.delivered as f64);
            rows.push(vec![
                format!("{}", i + 1),
                nodes[i].target.host.clone(),
                t.receivers.to_string(),
                t.delivered.to_string(),
                missing.to_string(),
                t.dups.to_string(),
                latency_ms(&h),
                cpu.map(|c| format!("{:.0} %", window.pct(c)))
                    .unwrap_or_else(|| "-".into()),
                opt(us_per_op, 2),
            ]);
            docs.push(json!({
                "node": i + 1,
                "url": nodes[i].target.host,
                "receivers": t.receivers,
                "delivered": t.delivered,
                "missing": missing,
                "duplicates": t.dups,
                "latency_us": h.to_json(),
                "drain_ms": round2(t.last_us.saturating_sub(sres.last_us) as f64 / 1000.0),
                "server_cpu_s": cpu.map(round2),
                "server_cpu_pct": cpu.map(|c| round2(window.pct(c))),
                "server_cpu_us_per_op": us_per_op.map(round2),
            }));
        }
        r.grid(
            &[
                "node",
                "address",
                "receivers",
                "delivered",
                "missing",
                "dups",
                "latency",
                "server CPU",
                "µs/delivery",
            ],
            rows,
        );
        r.set("per_node", json!(docs));
    }
    r.set("via", json!(o.via.name()));
    r.set("receivers", json!(receivers));
    r.set("rate", json!(o.rate));
    r.set("planned", json!(planned));
    r.set("sent", json!(sres.sent));
    r.set("send_rate", json!(round2(send_rate)));
    r.set("expected", json!(expected));
    r.set("delivered", json!(delivered));
    r.set("delivered_per_s", json!(round2(delivered_per_s)));
    r.set("missing", json!(missing));
    r.set("duplicates", json!(dups));
    r.set("latency_us", hist.to_json());
    r.set("drain_ms", json!(round2(drain_ms)));
    r.set("connect_s", json!(round2(connect_s.as_secs_f64())));
    r
}

#[allow(clippy::too_many_arguments)]
async fn receiver(
    ctx: Arc<Ctx>,
    node: usize,
    group: Arc<Group>,
    ready: mpsc::Sender<bool>,
    mut start: watch::Receiver<Option<Instant>>,
    mut total: watch::Receiver<Option<u64>>,
    planned: u64,
    run_for: Duration,
    via: Via,
) -> RecvResult {
    let mut res = RecvResult {
        node,
        ..RecvResult::default()
    };
    let Some(mut conn) = connect_client(&ctx, Transport::Websocket, &group, ready).await else {
        return res;
    };
    let Some(start_at) = wait_start(&mut start).await else {
        return res;
    };
    let hard_end = start_at + run_for;
    let mut seen = vec![0u64; planned.div_ceil(64) as usize];
    let mut known_total: Option<u64> = None;
    // Armed once: a timer created in every turn of the loop would be
    // registered and cancelled again for most deliveries.
    let deadline = tokio::time::sleep_until(hard_end.into());
    tokio::pin!(deadline);
    loop {
        if known_total.is_some_and(|t| res.unique >= t) {
            break;
        }
        tokio::select! {
            // The deadline first (cheap once armed), so a server that never
            // stops sending cannot keep the receiver past it; then the
            // packet, usually ready, so the watch (polling it registers a
            // waiter) is only polled when the receiver is about to sleep.
            biased;
            _ = &mut deadline => break,
            r = conn.next_engine() => {
                let msg = match r {
                    Ok(pkt) => conn.handle(pkt).await,
                    Err(e) => Err(e),
                };
                let msg = match msg {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(e) => {
                        group.error(&e);
                        return res;
                    }
                };
                let now = now_us();
                let mut v = [0u64; 2];
                if !via.parse(&msg, &mut v) {
                    continue;
                }
                let (seq, t) = (v[0], v[1]);
                if seq >= planned {
                    group.error_kind("unexpected_seq", format!("bcast seq {seq} beyond {planned} planned"));
                    continue;
                }
                let (w, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
                if seen[w] & bit != 0 {
                    res.dups += 1;
                    continue;
                }
                seen[w] |= bit;
                res.unique += 1;
                res.last_us = now;
                group.record(now.saturating_sub(t));
            }
            c = total.changed(), if known_total.is_none() => {
                if c.is_err() {
                    // Sender gone without a total: wait for the hard end only.
                    known_total = Some(u64::MAX);
                } else {
                    known_total = *total.borrow_and_update();
                }
            }
        }
    }
    res.conn = Some(conn);
    res
}

#[allow(clippy::too_many_arguments)]
async fn sender(
    ctx: Arc<Ctx>,
    ready: mpsc::Sender<bool>,
    mut start: watch::Receiver<Option<Instant>>,
    total: watch::Sender<Option<u64>>,
    mut done: watch::Receiver<bool>,
    rate: f64,
    planned: u64,
    duration: Duration,
    drain: Duration,
    via: Via,
) -> SendResult {
    let mut res = SendResult::default();
    let mut conn = match Conn::connect(&ctx, Transport::Websocket).await {
        Ok(c) => {
            let _ = ready.send(true).await;
            c
        }
        Err(e) => {
            res.errors.add("sender_connect");
            res.last_error = Some(format!("sender: {e}"));
            let _ = ready.send(false).await;
            let _ = total.send(Some(0));
            return res;
        }
    };
    drop(ready);
    let Some(start_at) = wait_start(&mut start).await else {
        let _ = total.send(Some(0));
        return res;
    };
    let period = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let mut tick = tokio::time::interval_at(start_at.into(), period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let send_end = start_at + duration + Duration::from_secs(1);
    let hard_end = start_at + duration + drain + Duration::from_secs(1);
    let mut failed = false;
    while res.sent < planned && Instant::now() < send_end {
        tokio::select! {
            _ = tick.tick() => {
                let t = now_us();
                if res.sent == 0 {
                    res.first_us = t;
                }
                if let Err(e) = conn.send(via.message(res.sent, t)).await {
                    res.errors.add("sender_send");
                    res.last_error = Some(format!("sender: {e}"));
                    failed = true;
                    break;
                }
                res.last_us = t;
                res.sent += 1;
            }
            r = conn.next_engine() => {
                let r = match r {
                    Ok(pkt) => conn.handle(pkt).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                if let Err(e) = r {
                    res.errors.add("sender_closed");
                    res.last_error = Some(format!("sender: {e}"));
                    failed = true;
                    break;
                }
            }
        }
    }
    let _ = total.send(Some(res.sent));
    // Keep reading our own copies (and pings) until the receivers are done.
    while !failed && !*done.borrow() {
        tokio::select! {
            r = conn.next_engine() => {
                let r = match r {
                    Ok(pkt) => conn.handle(pkt).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                if r.is_err() {
                    break;
                }
            }
            c = done.changed() => if c.is_err() { break },
            _ = tokio::time::sleep_until(hard_end.into()) => break,
        }
    }
    if !failed {
        let _ = conn.close().await;
    }
    res
}
