//! The standalone gateway behind the `socketgate` binary: a relay on the
//! main namespace, an index page, and serving with graceful shutdown.
//!
//! The relay lets clients talk to each other without any server code:
//!
//! | client emits | the gateway |
//! |---|---|
//! | `join` (room) | adds the socket to the room; acks with the room |
//! | `leave` (room) | removes it; acks with the room |
//! | `chat` ({room?, …}) | emits `chat` with the same object plus `from` (the sender's socket id) to the room, or to everyone without `room` (sender included) |
//! | `echo` (…args) | emits `echo` back with the same arguments; acks with them when asked |

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serde_json::Value;

use crate::socketio::{Socket, SocketIo, SocketIoConfig};

/// What the gateway serves and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Listening address; default 127.0.0.1:3000.
    pub addr: SocketAddr,
    /// The socket.io settings.
    pub io: SocketIoConfig,
    /// How long a shutdown waits for connections to flush and close;
    /// default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            io: SocketIoConfig::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl GatewayConfig {
    /// Sets [`addr`](Self::addr).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Sets [`io`](Self::io).
    pub fn io(mut self, io: SocketIoConfig) -> Self {
        self.io = io;
        self
    }

    /// Sets [`shutdown_grace`](Self::shutdown_grace).
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }
}

/// Lets the client choose its rooms: `join` (room) and `leave` (room),
/// each acknowledged with the room name.
pub fn self_service_rooms(socket: &Socket) {
    socket.on("join", |s, mut ev| {
        let room: String = ev.data().unwrap_or_default();
        s.join(room.as_str());
        let _ = ev.ack(&room);
    });
    socket.on("leave", |s, mut ev| {
        let room: String = ev.data().unwrap_or_default();
        s.leave(room.as_str());
        let _ = ev.ack(&room);
    });
}

/// Installs the relay on the main namespace.
pub fn relay(io: &SocketIo) {
    io.ns("/", |socket| {
        self_service_rooms(&socket);
        socket.on("chat", |s, ev| {
            let mut msg: Value = ev.data().unwrap_or_default();
            if !msg.is_object() {
                msg = serde_json::json!({ "text": msg });
            }
            msg["from"] = Value::from(s.id().as_str());
            let ns = s.namespace();
            let _ = match msg.get("room").and_then(Value::as_str) {
                Some(room) => ns.to(room).emit("chat", &msg),
                None => ns.emit("chat", &msg),
            };
        });
        socket.on("echo", |s, mut ev| {
            let _ = s.emit_payload("echo", &ev.payload);
            if let Some(ack) = ev.take_ack() {
                let _ = ack.send_payload(&ev.payload);
            }
        });
    });
}

const INDEX: &str = "socketgate is running.\n\n\
Connect a socket.io client (v3/v4) to this address, for example:\n\n  \
import { io } from \"socket.io-client\";\n  \
const socket = io(\"http://HOST\");\n  \
socket.emit(\"echo\", \"hello\", (reply) => console.log(reply));\n\n\
Events: join(room), leave(room), chat({room?, text}), echo(...args).\n";

/// The gateway's HTTP application: the index page and the socket.io layer.
pub fn router(io: &SocketIo, addr: SocketAddr) -> Router {
    let index = INDEX.replace("HOST", &addr.to_string());
    Router::new()
        .route("/", get(move || async move { index }))
        .layer(io.layer())
}

/// Serves the gateway on `listener` until `shutdown` completes, then tells
/// every client (they reconnect later), flushes and closes within the
/// grace period.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let io = SocketIo::new(config.io.clone());
    relay(&io);
    let addr = listener.local_addr()?;
    let app = router(&io, addr);
    tracing::info!("socketgate listening on http://{addr}");
    let grace = config.shutdown_grace;
    let io_for_shutdown = io.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!(
            "shutting down: closing {} sessions",
            io_for_shutdown.engine().session_count()
        );
        if !io_for_shutdown.shutdown(grace).await {
            tracing::warn!("some sessions did not close within {grace:?}");
        }
    })
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
