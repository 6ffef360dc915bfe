//! `idle`: open N connections, let them settle, read the server's RSS,
//! then hold them for the duration answering pings (polling clients keep a
//! GET pending) and count connections the server dropped meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::{Opts, collect_ready, connect_client, join_all, report_cpu_and_errors, secs};
use crate::conn::Error;
use crate::ctx::{Ctx, Transport};
use crate::report::{Report, opt};
use crate::stats::{Group, Snap, Window, round2, rss_kib};

#[derive(Default)]
struct Shared {
    holding: AtomicBool,
    dropped_before_hold: AtomicU64,
    dropped_during_hold: AtomicU64,
    pings_during_hold: AtomicU64,
    /// Longest gap between two server pings seen by any client (ms).
    max_ping_gap_ms: AtomicU64,
}

pub async fn run(ctx: Arc<Ctx>, o: &Opts) -> Report {
    let n = o.clients;
    let group = Arc::new(Group::default());
    let shared = Arc::new(Shared::default());
    let rss = |pid: Option<u32>| pid.and_then(rss_kib);
    let rss_before = rss(o.server_pid());

    let (ready_tx, ready_rx) = mpsc::channel(n.max(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let t_connect = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        handles.push(tokio::spawn(client(
            ctx.clone(),
            o.transport,
            group.clone(),
            shared.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(ready_tx);
    let (connected, failed, pending) = collect_ready(ready_rx, n, ctx.timeout).await;
    let connect_s = t_connect.elapsed();
    tokio::time::sleep(o.settle).await;
    let rss_after = rss(o.server_pid());
    let open_at_hold = connected as u64 - shared.dropped_before_hold.load(Ordering::Relaxed);

    shared.holding.store(true, Ordering::Relaxed);
    let a = Snap::take(o.server_pid());
    tokio::time::sleep(o.duration).await;
    shared.holding.store(false, Ordering::Relaxed);
    let b = Snap::take(o.server_pid());
    let rss_end = rss(o.server_pid());
    let window = Window::between(&a, &b);
    let _ = stop_tx.send(true);
    join_all(handles, Instant::now() + Duration::from_secs(5)).await;

    let dropped_hold = shared.dropped_during_hold.load(Ordering::Relaxed);
    let dropped_before = shared.dropped_before_hold.load(Ordering::Relaxed);
    let pings = shared.pings_during_hold.load(Ordering::Relaxed);
    let per_conn = |r: Option<u64>| match (rss_before, r) {
        (Some(b), Some(a)) if open_at_hold > 0 => Some((a as f64 - b as f64) / open_at_hold as f64),
        _ => None,
    };
    let errors = group.errors.lock().expect("errors").clone();
    let max_gap = shared.max_ping_gap_ms.load(Ordering::Relaxed);

    let mut r = Report::new(format!(
        "idle: {n} {} connections, settle {}s, hold {}s",
        o.transport.name(),
        secs(o.settle),
        secs(o.duration)
    ));
    r.row(
        "connected",
        format!(
            "{connected} of {n} in {:.2} s ({failed} failed, {pending} unfinished)",
            connect_s.as_secs_f64()
        ),
    );
    let kib = |v: Option<u64>| {
        v.map(|v| format!("{v} KiB"))
            .unwrap_or_else(|| "- (pass --server-pid)".into())
    };
    r.row("server RSS before", kib(rss_before));
    r.row("server RSS after settle", kib(rss_after));
    r.row("server RSS after hold", kib(rss_end));
    r.row(
        "memory per connection",
        format!(
            "{} KiB (after settle), {} KiB (after hold)",
            opt(per_conn(rss_after), 2),
            opt(per_conn(rss_end), 2)
        ),
    );
    r.row(
        "dropped during hold",
        format!(
            "{dropped_hold}{}",
            if dropped_hold == 0 {
                " (ok)"
            } else {
                " (FAIL: must be none)"
            }
        ),
    );
    if let (Some(b), Some(a)) = (rss_before, rss_after)
        && a <= b
        && open_at_hold > 0
    {
        r.row(
            "note",
            "RSS did not grow: the server reuses memory freed by earlier runs; measure on a freshly started server",
        );
    }
    r.row("dropped before hold", dropped_before.to_string());
    r.row("pings answered during hold", pings.to_string());
    r.row(
        "longest gap between pings",
        if max_gap > 0 {
            format!("{max_gap} ms")
        } else {
            "-".into()
        },
    );
    r.row("errors", errors.summary());
    report_cpu_and_errors(
        &mut r,
        &window,
        pings,
        "ping",
        &errors,
        group.last_error.lock().expect("err").clone(),
    );
    r.set("connected", json!(connected));
    r.set("connect_failed", json!(failed));
    r.set("connect_s", json!(round2(connect_s.as_secs_f64())));
    r.set("open_at_hold", json!(open_at_hold));
    r.set("rss_before_kib", json!(rss_before));
    r.set("rss_after_kib", json!(rss_after));
    r.set("rss_end_kib", json!(rss_end));
    r.set("kib_per_conn", json!(per_conn(rss_after).map(round2)));
    r.set("kib_per_conn_end", json!(per_conn(rss_end).map(round2)));
    r.set("dropped_during_hold", json!(dropped_hold));
    r.set("dropped_before_hold", json!(dropped_before));
    r.set("pings_during_hold", json!(pings));
    r.set("max_ping_gap_ms", json!((max_gap > 0).then_some(max_gap)));
    r
}

async fn client(
    ctx: Arc<Ctx>,
    transport: Transport,
    group: Arc<Group>,
    shared: Arc<Shared>,
    ready: mpsc::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(mut conn) = connect_client(&ctx, transport, &group, ready).await else {
        return;
    };
    // A server that stops pinging is noticed: no packet for longer than
    // pingInterval + pingTimeout + 5 s counts as a drop.
    let silence =
        conn.handshake.ping_interval + conn.handshake.ping_timeout + Duration::from_secs(5);
    // Gap between pings, counted from the connection's open for the first one.
    let mut last_ping = Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            r = tokio::time::timeout(silence, conn.next_engine()) => {
                let pings = conn.pings;
                let r = match r {
                    Ok(Ok(pkt)) => conn.handle(pkt).await.map(|_| ()),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(Error::Timeout("no packet from the server for pingInterval + pingTimeout + 5 s")),
                };
                if let Err(e) = r {
                    group.error(&e);
                    if shared.holding.load(Ordering::Relaxed) {
                        shared.dropped_during_hold.fetch_add(1, Ordering::Relaxed);
                    } else if !*stop.borrow() {
                        shared.dropped_before_hold.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
                if conn.pings > pings {
                    let now = Instant::now();
                    let gap = now.duration_since(last_ping).as_millis() as u64;
                    shared.max_ping_gap_ms.fetch_max(gap, Ordering::Relaxed);
                    last_ping = now;
                    if shared.holding.load(Ordering::Relaxed) {
                        shared.pings_during_hold.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            c = stop.changed() => if c.is_err() { break },
        }
    }
    let _ = conn.close().await;
}
