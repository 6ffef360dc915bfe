//! socketgate-load: a load tool for socket.io servers that follow the
//! benchmark contract of socketgate's DESIGN.md §6 (`echo` back to the
//! sender, `broadcast` → `bcast` to everyone). It speaks engine.io v4 /
//! socket.io v5 itself over WebSocket and HTTP long-polling, so it can
//! drive any such server (socketgate, socketioxide, Node socket.io, …).

mod conn;
mod ctx;
mod proto;
mod report;
mod scenarios;
mod stats;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::json;

use crate::ctx::{Ctx, Routing, Target, Transport};
use crate::scenarios::Opts;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    Echo,
    Broadcast,
    /// Broadcast over the nodes of a cluster (two or more `--url`s).
    ClusterBroadcast,
    Idle,
    Churn,
    Mixed,
    Soak,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Echo => "echo",
            Scenario::Broadcast => "broadcast",
            Scenario::ClusterBroadcast => "cluster-broadcast",
            Scenario::Idle => "idle",
            Scenario::Churn => "churn",
            Scenario::Mixed => "mixed",
            Scenario::Soak => "soak",
        }
    }
}

/// Loads a socket.io server (loopback only) and reports throughput,
/// latency, memory and the server's CPU time per operation. Prints a table
/// and, as the last line, one JSON object with every figure.
#[derive(Parser, Debug)]
#[command(name = "socketgate-load", version)]
struct Args {
    /// Server URL, e.g. http://127.0.0.1:3000 (must resolve to loopback).
    /// cluster-broadcast: give one per node (`--url A --url B`); receivers
    /// are spread over them, the sender is on the first. echo and mixed
    /// with `--routing`: one per node of a cluster.
    #[arg(long, required = true)]
    url: Vec<String>,
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Transport for echo, idle and churn (broadcast is WebSocket only;
    /// mixed uses both).
    #[arg(long, value_enum, default_value = "websocket")]
    transport: Transport,
    /// Clients (echo, mixed), receivers (broadcast), connections (idle) or
    /// workers (churn).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    clients: u64,
    /// Measured window in seconds (idle: how long connections are held).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Broadcast messages per second sent by the one sender.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Server process to read CPU time and RSS from (/proc/<pid>).
    /// cluster-broadcast, echo/mixed with `--routing`: one per node, in the
    /// order of the `--url`s (the CPU per op is their sum).
    #[arg(long)]
    server_pid: Vec<u32>,
    /// The Redis server the nodes share (cluster-broadcast, echo, mixed);
    /// its CPU is reported apart (and not counted as other processes'
    /// noise); echo also gives servers + Redis CPU per round trip.
    #[arg(long)]
    redis_pid: Option<u32>,
    /// broadcast, cluster-broadcast: `contract` (`broadcast` → `bcast`) or
    /// `chat` (the socketgate gateway relay's `chat` to everyone).
    #[arg(long, value_enum, default_value = "contract")]
    via: scenarios::broadcast::Via,
    /// Print only the JSON line.
    #[arg(long)]
    json_only: bool,
    /// Engine.io path (overridden by a path in --url).
    #[arg(long, default_value = "/socket.io/")]
    path: String,
    /// Seconds of load before the measured window (echo, mixed, churn).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Idle: seconds between opening the last connection and reading RSS.
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// Broadcast: seconds after the last send to wait for deliveries.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Bound in seconds on each step (connect, one round trip, …).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Connection handshakes in progress at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Mixed: share of clients that use polling only, in percent.
    #[arg(long, default_value_t = 5.0)]
    polling_percent: f64,
    /// Runtime worker threads; 1 runs everything on one thread (best when
    /// pinned to one core with taskset).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Local source addresses to spread connections over (e.g.
    /// 127.0.0.2,127.0.0.3), for more ephemeral ports.
    #[arg(long, value_delimiter = ',')]
    local_addrs: Vec<IpAddr>,
    /// Soak: path of the server's health route answering JSON with a
    /// `sessions` count (socketgate's gateway: /health); without it leaked
    /// sessions are not checked. echo, mixed: the growth of its `routing`
    /// and `recovery` counters over the window is reported (each node's).
    #[arg(long)]
    health_path: Option<String>,
    /// echo, mixed over several `--url`s (the nodes of a cluster): how
    /// polling clients' HTTP requests are spread. `round-robin`: each
    /// request (GET and POST) to the next node in turn; `sticky`: all of a
    /// client's requests to the node of its handshake (client i on node
    /// i % nodes). WebSocket clients are spread the same way.
    #[arg(long, value_enum)]
    routing: Option<Routing>,
    /// Soak: seconds between two samples of the server.
    #[arg(long, default_value_t = 10.0)]
    sample: f64,
    /// Free-form name of the server under test, copied into the JSON.
    #[arg(long)]
    label: Option<String>,
}

fn check(args: &Args) -> Result<(), String> {
    let secs = |name: &str, v: f64, max: f64| {
        if v.is_finite() && (0.0..=max).contains(&v) {
            Ok(())
        } else {
            Err(format!("--{name} must be between 0 and {max} seconds"))
        }
    };
    secs("duration", args.duration, 3600.0)?;
    secs("warmup", args.warmup, 600.0)?;
    secs("settle", args.settle, 600.0)?;
    secs("drain", args.drain, 600.0)?;
    secs("timeout", args.timeout, 600.0)?;
    secs("sample", args.sample, 600.0)?;
    if args.duration <= 0.0 || args.timeout <= 0.0 {
        return Err("--duration and --timeout must be positive".into());
    }
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 1_000_000.0) {
        return Err("--rate must be in (0, 1000000]".into());
    }
    if !(0.0..=100.0).contains(&args.polling_percent) {
        return Err("--polling-percent must be in [0, 100]".into());
    }
    if args.threads == 0 || args.threads > 64 {
        return Err("--threads must be in 1..=64".into());
    }
    if args.local_addrs.iter().any(|a| !a.is_loopback()) {
        return Err("--local-addrs must be loopback addresses".into());
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    ctx::init_clock();
    if let Err(e) = check(&args) {
        eprintln!("socketgate-load: {e}");
        std::process::exit(2);
    }
    let cluster = args.scenario == Scenario::ClusterBroadcast;
    if cluster && args.url.len() < 2 {
        eprintln!("socketgate-load: cluster-broadcast needs a --url per node (at least two)");
        std::process::exit(2);
    }
    let routed = matches!(args.scenario, Scenario::Echo | Scenario::Mixed);
    if args.routing.is_some() && !routed {
        eprintln!("socketgate-load: --routing is for echo and mixed");
        std::process::exit(2);
    }
    if !cluster && args.url.len() > 1 && !(routed && args.routing.is_some()) {
        eprintln!(
            "socketgate-load: only cluster-broadcast, and echo or mixed with --routing, take several --url"
        );
        std::process::exit(2);
    }
    let multi = args.url.len() > 1;
    if args.server_pid.len() > args.url.len() {
        eprintln!("socketgate-load: more --server-pid than --url");
        std::process::exit(2);
    }
    let mut targets = Vec::with_capacity(args.url.len());
    for url in &args.url {
        match Target::parse(url, &args.path) {
            Ok(t) => targets.push(t),
            Err(e) => {
                eprintln!("socketgate-load: {e}");
                std::process::exit(2);
            }
        }
    }
    for pid in args.server_pid.iter().chain(&args.redis_pid) {
        if stats::cpu_ticks(&pid.to_string()).is_none() {
            eprintln!("socketgate-load: cannot read /proc/{pid}/stat");
            std::process::exit(2);
        }
    }
    let opts = Opts {
        clients: args.clients as usize,
        transport: args.transport,
        duration: Duration::from_secs_f64(args.duration),
        warmup: Duration::from_secs_f64(args.warmup),
        rate: args.rate,
        settle: Duration::from_secs_f64(args.settle),
        drain: Duration::from_secs_f64(args.drain),
        polling_percent: args.polling_percent,
        server_pids: args.server_pid.clone(),
        redis_pid: args.redis_pid,
        via: args.via,
        health_path: args.health_path.clone(),
        sample: Duration::from_secs_f64(args.sample),
        routing: args.routing,
    };
    let timeout = Duration::from_secs_f64(args.timeout);
    // One context per server; every scenario but cluster-broadcast has one.
    let nodes: Vec<Arc<Ctx>> = targets
        .into_iter()
        .map(|target| {
            Arc::new(Ctx::new(
                target,
                timeout,
                args.connect_concurrency,
                args.local_addrs.clone(),
            ))
        })
        .collect();
    let ctx = nodes[0].clone();

    // Watchdog: whatever happens, the tool stops by itself.
    let limit = scenarios::connect_budget(timeout, opts.clients)
        + opts.warmup
        + opts.duration
        + opts.settle
        + opts.drain
        + timeout * 2
        + Duration::from_secs(30)
        // soak: closing, holding silent clients, waiting for the sessions
        + if args.scenario == Scenario::Soak {
            timeout * 6 + Duration::from_secs(180)
        } else {
            Duration::ZERO
        };
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!(
            "socketgate-load: watchdog: run exceeded {:.0} s, exiting",
            limit.as_secs_f64()
        );
        std::process::exit(3);
    });

    let rt = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");

    let scenario = args.scenario;
    let mut report = rt.block_on(async {
        match scenario {
            Scenario::Echo => scenarios::echo::run(&nodes, &opts, false).await,
            Scenario::Mixed => scenarios::echo::run(&nodes, &opts, true).await,
            Scenario::Broadcast | Scenario::ClusterBroadcast => {
                scenarios::broadcast::run(&nodes, &opts).await
            }
            Scenario::Idle => scenarios::idle::run(ctx, &opts).await,
            Scenario::Churn => scenarios::churn::run(ctx, &opts).await,
            Scenario::Soak => scenarios::soak::run(ctx, &opts).await,
        }
    });
    let transport = match scenario {
        Scenario::Broadcast | Scenario::ClusterBroadcast => "websocket",
        Scenario::Mixed | Scenario::Soak => "mixed",
        _ => opts.transport.name(),
    };
    report.set("tool", json!("socketgate-load"));
    report.set("version", json!(env!("CARGO_PKG_VERSION")));
    report.set("scenario", json!(scenario.name()));
    report.set("transport", json!(transport));
    if cluster || multi {
        report.set("url", json!(args.url));
    } else {
        report.set("url", json!(args.url[0]));
    }
    report.set("label", json!(args.label));
    report.set("clients", json!(args.clients));
    report.set("duration_s", json!(args.duration));
    report.set("warmup_s", json!(args.warmup));
    if cluster || multi {
        report.set("server_pid", json!(args.server_pid));
        report.set("redis_pid", json!(args.redis_pid));
    } else {
        report.set("server_pid", json!(args.server_pid.first()));
        if args.redis_pid.is_some() {
            report.set("redis_pid", json!(args.redis_pid));
        }
    }
    report.print(args.json_only);
    // Remaining tasks (if any) are abandoned: the run is over.
    std::process::exit(0);
}
