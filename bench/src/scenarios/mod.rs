//! The scenarios. Each returns a `Report` (table + JSON figures).

pub mod broadcast;
pub mod churn;
pub mod echo;
pub mod idle;
pub mod soak;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::conn::{Conn, Route};
use crate::ctx::{Ctx, Routing, Transport};
use crate::report::Report;
use crate::stats::{Errors, Group, Snap, Window, round2};

/// Scenario parameters, from the command line.
#[derive(Debug)]
pub struct Opts {
    pub clients: usize,
    pub transport: Transport,
    pub duration: Duration,
    pub warmup: Duration,
    pub rate: f64,
    pub settle: Duration,
    pub drain: Duration,
    pub polling_percent: f64,
    /// Server processes to read CPU time (and RSS) from: one, or one per
    /// node of a cluster, in the order of the URLs.
    pub server_pids: Vec<u32>,
    /// Cluster runs: the Redis server the nodes share (its CPU is reported
    /// apart from the nodes').
    pub redis_pid: Option<u32>,
    /// Broadcast: which events carry the messages.
    pub via: broadcast::Via,
    /// Soak: the server's health route (JSON with `sessions`).
    pub health_path: Option<String>,
    /// Soak: how often the server is sampled.
    pub sample: Duration,
    /// Echo over several nodes: how polling requests are spread.
    pub routing: Option<Routing>,
}

impl Opts {
    /// The server of a single-node scenario (the first one given).
    pub fn server_pid(&self) -> Option<u32> {
        self.server_pids.first().copied()
    }
}

/// How long the connect phase of `n` clients may take at most.
pub fn connect_budget(timeout: Duration, n: usize) -> Duration {
    timeout + Duration::from_millis(20 * n as u64)
}

/// Upper bound on operations per client loop, besides the time bound.
pub const MAX_OPS_PER_CLIENT: u64 = 100_000_000;

/// Waits for the start instant broadcast by the coordinator; `None` if it
/// gave up.
pub async fn wait_start(rx: &mut watch::Receiver<Option<Instant>>) -> Option<Instant> {
    loop {
        if let Some(t) = *rx.borrow_and_update() {
            return Some(t);
        }
        if rx.changed().await.is_err() {
            return None;
        }
    }
}

/// One client's part of the connect phase: connects, counts the outcome
/// in `group` (a failure with its error) and reports it on `ready`, the
/// channel `collect_ready` reads. `None` when the connection failed.
pub async fn connect_client(
    ctx: &Arc<Ctx>,
    transport: Transport,
    group: &Group,
    ready: mpsc::Sender<bool>,
) -> Option<Conn> {
    connect_client_on(
        std::slice::from_ref(ctx),
        &Route::Node(0),
        transport,
        group,
        ready,
    )
    .await
}

/// `connect_client` over the nodes of a cluster, each HTTP request going
/// where `route` says.
pub async fn connect_client_on(
    nodes: &[Arc<Ctx>],
    route: &Route,
    transport: Transport,
    group: &Group,
    ready: mpsc::Sender<bool>,
) -> Option<Conn> {
    let conn = Conn::connect_routed(nodes, route, transport).await;
    match &conn {
        Ok(_) => {
            group.connected.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            group.connect_failed.fetch_add(1, Ordering::Relaxed);
            group.error(e);
        }
    }
    let _ = ready.send(conn.is_ok()).await;
    conn.ok()
}

/// Collects the connect outcome of `n` clients, bounded by their
/// `connect_budget`. Returns (connected, failed, still pending).
pub async fn collect_ready(
    mut rx: mpsc::Receiver<bool>,
    n: usize,
    timeout: Duration,
) -> (usize, usize, usize) {
    let deadline = tokio::time::Instant::now() + connect_budget(timeout, n);
    let (mut ok, mut failed) = (0, 0);
    while ok + failed < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(true)) => ok += 1,
            Ok(Some(false)) => failed += 1,
            Ok(None) | Err(_) => break,
        }
    }
    (ok, failed, n - ok - failed)
}

/// Joins tasks, aborting whatever is still running at `deadline`.
pub async fn join_all<T>(handles: Vec<JoinHandle<T>>, deadline: Instant) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for mut h in handles {
        match tokio::time::timeout_at(deadline.into(), &mut h).await {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(_)) => {}
            Err(_) => h.abort(),
        }
    }
    out
}

/// The CPU used from `start` to `end` (the measured window), waiting for
/// both.
pub async fn measure_window(server_pid: Option<u32>, start: Instant, end: Instant) -> Window {
    measure_window_all(server_pid.as_slice(), None, start, end).await
}

/// `measure_window` over several server processes (the nodes of a
/// cluster) and, when given, their Redis server.
pub async fn measure_window_all(
    server_pids: &[u32],
    redis_pid: Option<u32>,
    start: Instant,
    end: Instant,
) -> Window {
    tokio::time::sleep_until(start.into()).await;
    let a = Snap::take_all(server_pids, redis_pid);
    tokio::time::sleep_until(end.into()).await;
    Window::between(&a, &Snap::take_all(server_pids, redis_pid))
}

/// What every scenario reports last: the server's CPU per operation over
/// `window` (`op` names one, e.g. "round trip"), the tool's own CPU, the
/// errors and the last error message.
pub fn report_cpu_and_errors(
    r: &mut Report,
    window: &Window,
    ops: u64,
    op: &str,
    errors: &Errors,
    last_error: Option<String>,
) {
    r.row("server CPU", window.server_line(ops, op));
    r.row("load tool CPU", window.load_line());
    if let Some(e) = &last_error {
        r.row("last error", e.clone());
    }
    r.set("errors", errors.to_json());
    r.set("last_error", json!(last_error));
    r.set("cpu", window.to_json(ops));
    r.set(
        "server_cpu_us_per_op",
        json!(window.server_us_per_op(ops).map(round2)),
    );
    r.set("ops", json!(ops));
    r.set("op", json!(op));
}

pub fn secs(d: Duration) -> f64 {
    crate::stats::round2(d.as_secs_f64())
}
