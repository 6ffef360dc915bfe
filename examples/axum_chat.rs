//! A small axum app: a normal HTTP route next to a `/chat` namespace with
//! rooms.
//!
//! ```text
//! cargo run --example axum_chat            # http://127.0.0.1:3001 ($PORT overrides)
//! ```
//!
//! From a socket.io client: connect to `/chat` with `auth: { name }`,
//! emit `join` with a room name, then `say` with `{ room, text }`; everyone
//! in the room receives `said` with `{ name, text }`. `GET /rooms/{room}`
//! lists who is in a room.

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use socketgate::socketio::{SocketIo, SocketIoConfig};

#[derive(Deserialize)]
struct Say {
    room: String,
    text: String,
}

async fn members(State(io): State<SocketIo>, Path(room): Path<String>) -> Json<Vec<String>> {
    let chat = io.of("/chat").expect("registered at start");
    let names = chat
        .to(room.as_str())
        .sockets()
        .iter()
        .map(|s| {
            s.handshake().auth["name"]
                .as_str()
                .unwrap_or("anonymous")
                .to_owned()
        })
        .collect();
    Json(names)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let io = SocketIo::new(SocketIoConfig::default());
    io.ns("/chat", |socket| {
        // Rooms named by clients: `join_client_room` refuses another
        // socket's own room (which carries its private messages) and bounds
        // how many a socket joins.
        socket.on("join", |s, mut ev| {
            let room: String = ev.data().unwrap_or_default();
            let _ = match s.join_client_room(&room) {
                Ok(_) => ev.ack(&room),
                Err(e) => ev.ack(&serde_json::json!({ "error": e.to_string() })),
            };
        });
        socket.on_typed("say", |s, say: Say, _| {
            let name = s.handshake().auth["name"]
                .as_str()
                .unwrap_or("anonymous")
                .to_owned();
            let msg = serde_json::json!({ "name": name, "text": say.text });
            if let Ok(room) = s.client_room(&say.room) {
                let _ = s.namespace().to(room).emit("said", &msg);
            }
        });
    });
    let app = Router::new()
        .route(
            "/",
            get(|| async { "chat server: connect a socket.io client to /chat" }),
        )
        .route("/rooms/{room}", get(members))
        .with_state(io.clone())
        .layer(io.layer());
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3001);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("axum_chat on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
