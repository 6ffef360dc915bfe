//! The benchmark contract server (see the README's benchmark section):
//! namespace `/` with default heartbeat and maxPayload 1e6;
//! `echo` is emitted back to the sender with the same arguments and
//! `broadcast` is emitted as `bcast` to every connected socket, sender
//! included.
//!
//! ```text
//! cargo run --release --example bench_server -- --port 3000 [--recovery]
//! ```
//!
//! `--recovery` turns connection state recovery on, so a client that
//! reconnects gets every `bcast` it missed.

use std::future::IntoFuture;
use std::net::SocketAddr;

use socketgate::socketio::{RecoveryConfig, SocketIo, SocketIoConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut port = 3000u16;
    let mut config = SocketIoConfig::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(port),
            "--recovery" => config = config.recovery(RecoveryConfig::default()),
            other => {
                eprintln!(
                    "unknown argument {other:?}; usage: bench_server [--port P] [--recovery]"
                );
                std::process::exit(2);
            }
        }
    }
    let io = SocketIo::new(config);
    io.ns("/", |socket| {
        socket.on("echo", |s, ev| {
            let _ = s.emit_payload("echo", &ev.payload);
        });
        socket.on("broadcast", |s, ev| {
            let _ = s.namespace().all().emit_payload("bcast", &ev.payload);
        });
    });
    // The engine in front of the (empty) router, as the gateway serves it.
    let app = tower::Layer::layer(&io.layer(), axum::Router::new());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    eprintln!("bench_server on http://{}", listener.local_addr()?);
    // The accept loop runs on a runtime worker, as the gateway's binary
    // runs it, not on the main thread (which is not a worker and would hand
    // each accepted connection over across threads).
    let server = axum::serve(listener, tower::make::Shared::new(app)).into_future();
    tokio::spawn(server)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}
