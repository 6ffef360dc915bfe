//! socketgate: a socket.io-compatible realtime gateway.
//!
//! One session abstraction serves two transports, WebSocket and HTTP
//! long-polling, with shared heartbeat timeouts and upgrade negotiation, so a
//! client that cannot open a WebSocket falls back to polling and keeps
//! working. The engine mounts in any tower/hyper application as a
//! [`Layer`](tower::Layer): requests under its path (default `/socket.io/`)
//! reach the engine, every other request reaches your routes.
//!
//! # Example
//!
//! An axum app with a normal route and an engine that echoes every message:
//!
//! ```
//! use axum::{Router, routing::get};
//! use socketgate::engine::{CloseReason, Engine, EngineConfig, EngineHandler, Message, Session};
//!
//! struct Echo;
//!
//! impl EngineHandler for Echo {
//!     fn on_open(&self, _session: &Session) {}
//!     fn on_message(&self, session: &Session, message: Message) {
//!         let _ = session.send(message);
//!     }
//!     fn on_close(&self, _session: &Session, _reason: CloseReason) {}
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let engine = Engine::new(EngineConfig::default(), Echo);
//! let app = Router::new()
//!     .route("/health", get(|| async { "ok" }))
//!     .layer(engine.layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let serve = async move {
//! axum::serve(listener, app).await
//! # };
//! # drop(serve);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`engine`]: engine.io v4 — the sans-IO packet and payload codecs, the
//!   session state machine (heartbeat, upgrade, bounded queue, close
//!   reasons), the [`Session`](engine::Session) handle and the
//!   [`EngineHandler`] API.
//! - `transport`: long-polling GET/POST and WebSocket (tokio-tungstenite
//!   over the hyper upgrade), attached to sessions.
//! - [`origin`]: the allowed-origins policy guarding every handshake and
//!   driving CORS.
//! - `service`: the tower [`EngineLayer`] / [`EngineService`].
//! - [`gateway`] and [`hooks`]: the standalone gateway: its relay, and the
//!   HTTP hooks through which an application backend drives it.
//! - [`api`]: the HTTP API backends call to publish and manage sockets.
//! - [`admin`]: the server side of the socket.io Admin UI.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod api;
mod cluster;
pub mod engine;
/// Entry points for the fuzz targets in `fuzz/`; not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod hooks;
pub mod origin;
mod rate;
mod service;
pub mod settings;
pub mod socketio;
pub mod telemetry;
#[cfg(test)]
mod test_rng;
pub mod tls;
mod transport;

pub use cluster::{
    BusError, BusStats, ClusterStore, ClusterStoreConfig, ClusterStoreStats, NodeRegistry,
    NodesConfig, NodesStats, RedisBus, RedisConfig,
};
pub use engine::{Engine, EngineConfig, EngineHandler};
pub use origin::AllowedOrigins;
pub use service::{EngineLayer, EngineService, NotFound};
