//! Who keeps a server alive: the layer (and every service made from it)
//! does, so an application may drop its `SocketIo` once the router is
//! built; when the last handle goes, the server is freed and its sessions
//! end instead of heartbeating with nobody to serve them.

mod common;

use axum::Router;
use common::sio::{config, install_contract};
use common::{run_node, until, ws_connect, ws_send, ws_text};
use socketgate::socketio::{SocketIo, SocketIoConfig, WeakSocketIo};

/// What an application's `fn app() -> Router` does: the `SocketIo` goes out
/// of scope at the end. The weak handle is only for the test to watch.
fn app(config: SocketIoConfig) -> (Router, WeakSocketIo) {
    let io = SocketIo::builder().config(config).build().unwrap();
    install_contract(&io);
    let weak = io.downgrade();
    (Router::new().layer(io.layer()), weak)
}

async fn serves_after_its_handle_is_dropped(mode: &str) {
    let (router, weak) = app(config());
    let (addr, task) = common::serve(router).await;
    // connects to `/` and `/custom`, events with JSON and binary both ways,
    // client acks with binary
    run_node(
        "socketio-client.mjs",
        &["basic", mode, &format!("http://{addr}")],
    )
    .await;
    run_node(
        "socketio-client.mjs",
        &["acks", mode, &format!("http://{addr}")],
    )
    .await;
    assert!(weak.upgrade().is_some(), "the service keeps the server");

    // A client that is still connected when everything goes.
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let mut ws = ws_connect(&url).await;
    assert!(ws_text(&mut ws).await.starts_with("0{"));
    ws_send(&mut ws, "40").await;
    assert!(ws_text(&mut ws).await.starts_with("40{\"sid\":"));

    task.abort();
    let _ = task.await;
    // The server is freed once the last connection holding a service ends
    // (the Node clients have exited; the WebSocket holds none).
    until("the server to be freed", || weak.upgrade().is_none()).await;
    // ...and the client that was still connected is told.
    loop {
        match common::ws_next(&mut ws).await {
            None => break,
            Some(m) => assert!(
                m.to_text().is_ok_and(|t| t.starts_with('4') || t == "2"),
                "{m:?}"
            ),
        }
    }
}

#[tokio::test]
async fn polling() {
    serves_after_its_handle_is_dropped("polling").await;
}

#[tokio::test]
async fn websocket() {
    serves_after_its_handle_is_dropped("websocket").await;
}

#[tokio::test]
async fn polling_then_upgrade() {
    serves_after_its_handle_is_dropped("default").await;
}

#[tokio::test]
async fn a_server_nobody_connected_to_is_freed_with_its_last_handle() {
    let (router, weak) = app(config());
    assert!(weak.upgrade().is_some());
    drop(router);
    assert!(weak.upgrade().is_none());
}
