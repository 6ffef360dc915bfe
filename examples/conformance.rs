//! Servers for the public engine.io / socket.io protocol test suites.
//!
//! ```text
//! cargo run --release --example conformance -- engineio   # engine-only echo at /engine.io/
//! ```
//!
//! They listen on `127.0.0.1:$PORT` (default 3000) with pingInterval 300 ms,
//! pingTimeout 200 ms, maxPayload 1e6 and CORS for any origin.

use std::net::SocketAddr;
use std::time::Duration;

use socketgate::engine::{CloseReason, Engine, EngineConfig, EngineHandler, Message, Session};
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mode = std::env::args().nth(1).unwrap_or_default();
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let config = EngineConfig::default()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .allowed_origins(AllowedOrigins::any());
    let service = match mode.as_str() {
        "engineio" => EngineService::standalone(Engine::new(config.path("/engine.io/"), Echo)),
        other => {
            eprintln!("unknown mode {other:?}; usage: conformance engineio");
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
