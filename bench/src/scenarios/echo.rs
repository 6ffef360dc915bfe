//! `echo` and `mixed`: N clients in a closed loop, each emitting
//! `42["echo",<client>,<seq>,<send µs>]` and awaiting the same event back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::{
    MAX_OPS_PER_CLIENT, Opts, collect_ready, connect_client, join_all, measure_window,
    report_cpu_and_errors, secs, wait_start,
};
use crate::conn::{Conn, Error, Result};
use crate::ctx::{Ctx, Transport, now_us};
use crate::proto::{args_u64, fast_ints, lossy, parse_event};
use crate::report::{Report, ms};
use crate::stats::{Errors, Group, Hist, round2};

pub async fn run(ctx: Arc<Ctx>, o: &Opts, mixed: bool) -> Report {
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
        handles.push(tokio::spawn(client(
            ctx.clone(),
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
    let window = measure_window(o.server_pid(), win_start, win_end).await;
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
    let mut r = Report::new(format!(
        "{scenario}: {n} clients ({} websocket, {n_poll} polling), {}s after {}s warm-up",
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
    report_cpu_and_errors(&mut r, &window, ops, "round trip", &errors, last_error);
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

#[allow(clippy::too_many_arguments)]
async fn client(
    ctx: Arc<Ctx>,
    transport: Transport,
    id: u64,
    group: Arc<Group>,
    ready: mpsc::Sender<bool>,
    mut start: watch::Receiver<Option<Instant>>,
    warmup: Duration,
    duration: Duration,
) {
    let Some(mut conn) = connect_client(&ctx, transport, &group, ready).await else {
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
        let is_echo = if fast_ints(&p, br#"2["echo","#, &mut v) {
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
