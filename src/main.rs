//! The `socketgate` binary: read configuration, build the gateway, serve.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use socketgate::gateway::{self, GatewayConfig};
use socketgate::socketio::{RecoveryConfig, SocketIoConfig};
use socketgate::{AllowedOrigins, EngineConfig};

/// A socket.io-compatible realtime gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SOCKETGATE_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// URL path of the socket.io endpoint.
    #[arg(long, env = "SOCKETGATE_PATH", default_value = "/socket.io/")]
    path: String,
    /// Server ping interval, in milliseconds.
    #[arg(long, env = "SOCKETGATE_PING_INTERVAL_MS", default_value_t = 25_000)]
    ping_interval_ms: u64,
    /// How long a pong may take, in milliseconds.
    #[arg(long, env = "SOCKETGATE_PING_TIMEOUT_MS", default_value_t = 20_000)]
    ping_timeout_ms: u64,
    /// Largest message a client may send, in bytes.
    #[arg(long, env = "SOCKETGATE_MAX_PAYLOAD", default_value_t = 1_000_000)]
    max_payload: usize,
    /// How long a client may stay without joining a namespace, in milliseconds.
    #[arg(long, env = "SOCKETGATE_CONNECT_TIMEOUT_MS", default_value_t = 45_000)]
    connect_timeout_ms: u64,
    /// Browser origins allowed besides the gateway's own (comma-separated;
    /// `*` allows all).
    #[arg(long, env = "SOCKETGATE_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Accept legacy clients (engine.io v3: socket.io-client 2.x).
    #[arg(long, env = "SOCKETGATE_ALLOW_EIO3")]
    allow_eio3: bool,
    /// Connection state recovery: keep a disconnected client's session and
    /// the packets it misses for this many milliseconds; 0 (the default, as
    /// in the reference server) turns it off. With it on, every event
    /// carries an offset as its last argument, which clients without
    /// recovery support (python-socketio, rust_socketio, socket.io-client
    /// before 4.6) hand to their handlers. Retained packets are bounded
    /// (10 000 packets, 16 MiB).
    #[arg(long, env = "SOCKETGATE_RECOVERY_MS", default_value_t = 0)]
    recovery_ms: u64,
    /// Serve the demo page from this folder instead of the built-in copy.
    #[arg(long, env = "SOCKETGATE_DEMO_DIR")]
    demo_dir: Option<std::path::PathBuf>,
    /// The socket.io-client browser bundle to serve at
    /// /socket.io/socket.io.min.js (the demo page uses its own small client
    /// when the file is missing).
    #[arg(
        long,
        env = "SOCKETGATE_CLIENT_BUNDLE",
        default_value = "client-demo/node_modules/socket.io-client/dist/socket.io.min.js"
    )]
    client_bundle: std::path::PathBuf,
    /// Redis for a cluster of nodes (`redis://host:port`), compatible with
    /// the Node socket.io Redis adapter and emitter; default none: one node,
    /// in memory.
    #[arg(long, env = "SOCKETGATE_REDIS_URL")]
    redis_url: Option<String>,
    /// The secret every node of a cluster shares: with it, a request for a
    /// session another node owns is forwarded there, so the load balancer
    /// need not be sticky. Prefer the environment variable (a flag shows
    /// in the process list).
    #[arg(long, env = "SOCKETGATE_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: Option<String>,
    /// This node's id in the cluster (1-65535); default a free random one.
    #[arg(long, env = "SOCKETGATE_NODE_ID", value_parser = clap::value_parser!(u16).range(1..))]
    node_id: Option<u16>,
    /// Where the other nodes of the cluster reach this one; default the
    /// listening address.
    #[arg(long, env = "SOCKETGATE_ADVERTISE_ADDR")]
    advertise_addr: Option<SocketAddr>,
    /// How long a shutdown (SIGTERM) waits for clients to be told and
    /// flushed, in milliseconds.
    #[arg(long, env = "SOCKETGATE_SHUTDOWN_GRACE_MS", default_value_t = 10_000)]
    shutdown_grace_ms: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let engine = EngineConfig::default()
        .path(args.path)
        .ping_interval(Duration::from_millis(args.ping_interval_ms))
        .ping_timeout(Duration::from_millis(args.ping_timeout_ms))
        .max_payload(args.max_payload)
        .allow_eio3(args.allow_eio3)
        .allowed_origins(AllowedOrigins::list(&args.allowed_origins));
    let mut io = SocketIoConfig::default()
        .engine(engine)
        .connect_timeout(Duration::from_millis(args.connect_timeout_ms));
    if args.recovery_ms > 0 {
        let window = Duration::from_millis(args.recovery_ms);
        io = io.recovery(RecoveryConfig::default().max_disconnection_duration(window));
    }
    let config = GatewayConfig::default()
        .addr(args.addr)
        .io(io)
        .demo_dir(args.demo_dir)
        .client_bundle(Some(args.client_bundle))
        .redis_url(args.redis_url)
        .cluster_secret(args.cluster_secret)
        .node_id(args.node_id)
        .advertise_addr(args.advertise_addr)
        .shutdown_grace(Duration::from_millis(args.shutdown_grace_ms));
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    // Served from a runtime worker: the main thread is not one, and
    // accepting there hands every new connection over to a worker across
    // threads (a futex wake-up and a context switch each time).
    tokio::spawn(gateway::serve(listener, config, gateway::shutdown_signal()))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}
