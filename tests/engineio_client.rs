//! Interop with the real `engine.io-client` npm package (see tests/node):
//! polling only, WebSocket only, polling then upgrade, heartbeat, and a
//! client that stops answering pings.

mod common;

use std::time::Duration;

use common::{TestServer, run_node};
use socketgate::engine::CloseReason;

/// A short heartbeat with a generous pong deadline: a busy two-core CI
/// machine running Node clients in parallel may delay a pong by hundreds of
/// milliseconds, and a healthy session must not be closed for that. The
/// client gives up only after interval + timeout, a whole interval after
/// the server, so the silent-client tests still see the server act first.
fn config() -> socketgate::EngineConfig {
    common::config()
        .ping_interval(Duration::from_millis(1000))
        .ping_timeout(Duration::from_millis(1500))
}

async fn scenario(server: &TestServer, name: &str) -> serde_json::Value {
    let base = format!("http://{}", server.addr);
    run_node("engineio-client.mjs", &[name, &base, "/engine.io/"]).await
}

/// Text, multi-byte text, binary and a 100 KB text echo over `transport`,
/// which the client must keep for the whole session.
async fn echo_over(name: &str, transport: &str) {
    let server = TestServer::start(config()).await;
    let v = scenario(&server, name).await;
    assert_eq!(v["transport"], transport);
    assert_eq!(v["echoed"].as_array().map(Vec::len), Some(4));
    assert_eq!(v["echoed"][2]["hex"], "000102ff");
    let sid = v["sid"].as_str().unwrap();
    assert_eq!(server.closed(sid).await, CloseReason::TransportClose);
    server.drained().await;
}

#[tokio::test]
async fn polling_only() {
    echo_over("polling", "polling").await;
}

#[tokio::test]
async fn websocket_only() {
    echo_over("websocket", "websocket").await;
}

#[tokio::test]
async fn polling_then_upgrade_loses_and_duplicates_nothing() {
    let server = TestServer::start(config()).await;
    let v = scenario(&server, "upgrade").await;
    assert_eq!(v["transport"], "websocket");
    assert_eq!(v["upgrades"], serde_json::json!(["websocket"]));
    // 5 messages sent before the upgrade and 20 during it: all echoed once, in order.
    assert_eq!(v["burst"]["orderedEchoes"], 25);
    server.drained().await;
}

#[tokio::test]
async fn heartbeat_keeps_idle_polling_session_alive() {
    let server = TestServer::start(config()).await;
    let v = scenario(&server, "heartbeat-polling").await;
    assert!(v["pings"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(v["transport"], "polling");
}

#[tokio::test]
async fn heartbeat_keeps_idle_websocket_session_alive() {
    let server = TestServer::start(config()).await;
    let v = scenario(&server, "heartbeat-websocket").await;
    assert!(v["pings"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(v["transport"], "websocket");
}

/// The client drops its pongs: the server closes the session for ping
/// timeout, and the client learns it from the server (not its own timer).
async fn silent_client(name: &str) {
    let server = TestServer::start(config()).await;
    let v = scenario(&server, name).await;
    assert_eq!(v["closedBy"], "server", "{v}");
    let sid = v["sid"].as_str().unwrap();
    assert_eq!(server.closed(sid).await, CloseReason::PingTimeout);
    server.drained().await;
}

#[tokio::test]
async fn server_closes_polling_client_that_stops_answering_pings() {
    silent_client("stop-pong-polling").await;
}

#[tokio::test]
async fn server_closes_websocket_client_that_stops_answering_pings() {
    silent_client("stop-pong-websocket").await;
}
