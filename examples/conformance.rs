//! Servers for the public engine.io / socket.io protocol test suites.
//!
//! ```text
//! cargo run --release --example conformance -- engineio   # engine-only echo at /engine.io/
//! cargo run --release --example conformance -- socketio   # socket.io at /socket.io/
//! ```
//!
//! The socket.io mode serves `/` and `/custom`: on connect each emits `auth`
//! with the handshake's auth object; on `/`, `message` is emitted back as
//! `message-back` with the same arguments (binary included) and
//! `message-with-ack` is acknowledged with them. Other namespaces are
//! refused. connectTimeout is 1 s.
//!
//! They listen on `127.0.0.1:$PORT` (default 3000) with pingInterval 300 ms,
//! pingTimeout 200 ms (`$PING_INTERVAL_MS` and `$PING_TIMEOUT_MS` override
//! them), maxPayload 1e6 and CORS for any origin. Add `--allow-eio3` to
//! accept engine.io v3 clients (socket.io-client 2.x) too.

use std::net::SocketAddr;
use std::time::Duration;

use socketgate::engine::{CloseReason, Engine, EngineConfig, EngineHandler, Message, Session};
use socketgate::socketio::{Socket, SocketIo, SocketIoConfig};
use socketgate::{AllowedOrigins, EngineService};

/// Sends every message back as it came.
struct Echo;

impl EngineHandler for Echo {
    fn on_open(&self, _: &Session) {}
    fn on_message(&self, session: &Session, message: Message) {
        let _ = session.send(message);
    }
    fn on_close(&self, _: &Session, _: CloseReason) {}
}

fn emit_auth(socket: &Socket) {
    let _ = socket.emit("auth", &socket.handshake().auth);
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_default();
    let allow_eio3 = args.iter().skip(1).any(|a| a == "--allow-eio3");
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let millis = |var: &str, default: u64| {
        let ms = std::env::var(var).ok().and_then(|v| v.parse().ok());
        Duration::from_millis(ms.unwrap_or(default))
    };
    let config = EngineConfig::default()
        .ping_interval(millis("PING_INTERVAL_MS", 300))
        .ping_timeout(millis("PING_TIMEOUT_MS", 200))
        .max_payload(1_000_000)
        .allow_eio3(allow_eio3)
        .allowed_origins(AllowedOrigins::any());
    let service = match mode.as_str() {
        "engineio" => EngineService::standalone(Engine::new(config.path("/engine.io/"), Echo)),
        "socketio" => {
            let io = SocketIo::new(
                SocketIoConfig::default()
                    .engine(config)
                    .connect_timeout(Duration::from_millis(1000)),
            );
            io.ns("/", |socket| {
                emit_auth(&socket);
                socket.on("message", |s, ev| {
                    let _ = s.emit_payload("message-back", &ev.payload);
                });
                socket.on("message-with-ack", |_, mut ev| {
                    if let Some(ack) = ev.take_ack() {
                        let _ = ack.send_payload(&ev.payload);
                    }
                });
            });
            io.ns("/custom", |socket| emit_auth(&socket));
            EngineService::standalone(io.engine().clone())
        }
        other => {
            eprintln!(
                "unknown mode {other:?}; usage: conformance engineio|socketio [--allow-eio3]"
            );
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    eprintln!(
        "conformance {mode} server on http://{}",
        listener.local_addr()?
    );
    axum::serve(
        listener,
        axum::ServiceExt::<http::Request<axum::body::Body>>::into_make_service_with_connect_info::<
            SocketAddr,
        >(service),
    )
    .await
}
