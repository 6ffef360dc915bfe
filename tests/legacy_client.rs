//! Interop with the real `socket.io-client@2.5.0` (engine.io v3, socket.io
//! protocol 4) in polling-only, WebSocket-only and upgrade modes, sharing
//! rooms and broadcasts with a 4.x client. The scenarios live in
//! tests/node/legacy-client.mjs; the server is the same contract server as
//! for 4.x clients, with engine.io v3 allowed.

mod common;

use common::run_node;
use common::sio::{SioServer, legacy_config};

async fn run(scenario: &str, mode: &str) -> serde_json::Value {
    let server = SioServer::start(legacy_config()).await;
    let v = run_node("legacy-client.mjs", &[scenario, mode, &server.base()]).await;
    common::until("sessions to close", || {
        server.io.engine().session_count() == 0
    })
    .await;
    v
}

/// The transport the 2.x client ended on.
fn legacy_transport(v: &serde_json::Value) -> &serde_json::Value {
    if v["transports"].is_object() {
        &v["transports"]["L"]
    } else {
        &v["transport"]
    }
}

macro_rules! modes {
    ($($name:ident: $scenario:literal),* $(,)?) => {
        $(
            mod $name {
                use super::{legacy_transport, run};

                #[tokio::test]
                async fn polling() {
                    let v = run($scenario, "polling").await;
                    assert_eq!(legacy_transport(&v), "polling", "{v}");
                }

                #[tokio::test]
                async fn websocket() {
                    let v = run($scenario, "websocket").await;
                    assert_eq!(legacy_transport(&v), "websocket", "{v}");
                }

                #[tokio::test]
                async fn polling_then_upgrade() {
                    let v = run($scenario, "default").await;
                    assert_eq!(legacy_transport(&v), "websocket", "{v}");
                }
            }
        )*
    };
}

modes! {
    // implicit `/`, socket ids `/custom#<sid>`, events with JSON and binary
    // both ways, acks with binary, a custom namespace
    basic: "basic",
    // the client pings, the server answers; an idle connection stays up
    heartbeat: "heartbeat",
    // a 2.x and a 4.x client in one room get the same broadcasts, binary
    // included, each encoded for its protocol
    mixed_room: "mixed-room",
    // refusals reach the refused namespace only; `/` keeps working
    namespace_errors: "namespace-errors",
    // the namespace query becomes the handshake's auth
    namespace_query: "namespace-query",
}

#[tokio::test]
async fn basic_reports_v2_socket_ids() {
    let server = SioServer::start(legacy_config()).await;
    let v = run_node("legacy-client.mjs", &["basic", "websocket", &server.base()]).await;
    let engine = v["engineId"].as_str().unwrap();
    assert_eq!(v["socketId"], engine);
    assert_eq!(v["customSocketId"], format!("/custom#{engine}"));
}
