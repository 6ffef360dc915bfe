//! `churn`: N workers, each repeating engine handshake + namespace CONNECT
//! + DISCONNECT/close as fast as it can for the duration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{MAX_OPS_PER_CLIENT, Opts, join_all, measure_window, report_cpu_and_errors, secs};
use crate::conn::Conn;
use crate::ctx::{Ctx, Transport};
use crate::report::{Report, latency_ms};
use crate::stats::{Group, round2};

pub async fn run(ctx: Arc<Ctx>, o: &Opts) -> Report {
    let n = o.clients;
    let group = Arc::new(Group::default());
    let start_at = Instant::now() + Duration::from_millis(20);
    let win_start = start_at + o.warmup;
    let win_end = win_start + o.duration;
    let handles: Vec<_> = (0..n)
        .map(|_| {
            tokio::spawn(worker(
                ctx.clone(),
                o.transport,
                group.clone(),
                start_at,
                win_start,
                win_end,
            ))
        })
        .collect();
    let window = measure_window(o.server_pid(), win_start, win_end).await;
    join_all(handles, win_end + ctx.timeout + Duration::from_secs(3)).await;

    let cycles = group.ops();
    let dur = o.duration.as_secs_f64();
    let hist = group.hist.lock().expect("hist");
    let errors = group.errors.lock().expect("errors").clone();
    let mut r = Report::new(format!(
        "churn: {n} {} workers, {}s after {}s warm-up",
        o.transport.name(),
        secs(o.duration),
        secs(o.warmup)
    ));
    r.row("cycles", cycles.to_string());
    r.row("cycles/s", format!("{:.0}", cycles as f64 / dur));
    r.row("cycle time", latency_ms(&hist));
    r.row("errors", errors.summary());
    report_cpu_and_errors(
        &mut r,
        &window,
        cycles,
        "cycle",
        &errors,
        group.last_error.lock().expect("err").clone(),
    );
    r.set("cycles", json!(cycles));
    r.set("cycles_per_s", json!(round2(cycles as f64 / dur)));
    r.set("latency_us", hist.to_json());
    r
}

async fn worker(
    ctx: Arc<Ctx>,
    transport: Transport,
    group: Arc<Group>,
    start_at: Instant,
    win_start: Instant,
    win_end: Instant,
) {
    tokio::time::sleep_until(start_at.into()).await;
    let mut done = 0u64;
    while Instant::now() < win_end && done < MAX_OPS_PER_CLIENT {
        done += 1;
        let t0 = Instant::now();
        let res = match Conn::connect(&ctx, transport).await {
            Ok(conn) => conn.close().await,
            Err(e) => Err(e),
        };
        let t1 = Instant::now();
        match res {
            Ok(()) => {
                if t1 >= win_start && t1 <= win_end {
                    group.record(t1.duration_since(t0).as_micros() as u64);
                }
            }
            Err(e) => {
                group.error(&e);
                // Do not spin on a failing server.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
