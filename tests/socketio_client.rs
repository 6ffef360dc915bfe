//! Interop with the real `socket.io-client` npm package (4.8.x) in each
//! mode: polling only, WebSocket only, and polling then upgrade. The
//! scenarios live in tests/node/socketio-client.mjs; the server here
//! implements the contract they expect (tests/common/sio.rs). Each run gets
//! its own server, because some scenarios broadcast to a whole namespace.

mod common;

use common::sio::{config, ended_on, run_scenario};

/// Runs a scenario and returns the transport its clients ended on (all
/// the same).
async fn run(scenario: &str, mode: &str) -> serde_json::Value {
    let v = run_scenario(config(), "socketio-client.mjs", scenario, mode, &[]).await;
    ended_on(&v)
}

macro_rules! modes {
    ($($name:ident: $scenario:literal),* $(,)?) => {
        $(
            mod $name {
                use super::run;

                #[tokio::test]
                async fn polling() {
                    assert_eq!(run($scenario, "polling").await, "polling");
                }

                #[tokio::test]
                async fn websocket() {
                    assert_eq!(run($scenario, "websocket").await, "websocket");
                }

                #[tokio::test]
                async fn polling_then_upgrade() {
                    assert_eq!(run($scenario, "default").await, "websocket");
                }
            }
        )*
    };
}

modes! {
    // connect `/` and `/custom` on one connection, auth object, events with
    // JSON and binary arguments both ways, client acks with binary
    basic: "basic",
    // middleware refusal with message and data, then acceptance
    auth: "auth",
    // server emit-with-ack answered, answered with binary, and timed out
    acks: "acks",
    // three clients: rooms, except, all-but-sender, volatile, leave
    rooms: "rooms",
    // `/tenant-<digits>` namespaces; others refused as Invalid namespace
    dynamic: "dynamic",
    // the server closes the transport: the client reconnects by itself;
    // a server namespace disconnect does not reconnect
    reconnect: "reconnect",
}
