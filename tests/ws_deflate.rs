//! permessage-deflate on WebSocket (opt-in): negotiated with a client that
//! offers it only when it is on; large text and binary messages arrive
//! intact both ways and travel compressed (Node `ws`, socket.io-client,
//! headless Chromium); a client that sets RSV1 without having negotiated
//! is closed with 1002, and a compressed message that inflates past
//! max_payload with 1009.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{TestServer, config, run_node, ws_close_frame};
use futures_util::SinkExt;
use socketgate::engine::{CloseReason, EngineConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// No heartbeat during a test (the raw clients do not answer pings).
fn deflate_config(on: bool) -> EngineConfig {
    config()
        .ping_interval(Duration::from_secs(20))
        .ws_compression(on)
}

async fn node_echo(server: &TestServer, mode: &str) -> serde_json::Value {
    let url = server.ws_url("EIO=4&transport=websocket");
    run_node("ws-deflate-client.mjs", &[&url, mode]).await
}

fn echoes(verdict: &serde_json::Value) -> &Vec<serde_json::Value> {
    verdict["echoes"].as_array().expect("echoes")
}

/// Nothing negotiated, and the large echoes took more than their size on
/// the wire (frame headers, no compression).
fn travelled_uncompressed(verdict: &serde_json::Value) {
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["extensions"], serde_json::Value::Null);
    for e in &echoes(verdict)[..2] {
        assert!(
            e["read"].as_u64().unwrap() > e["size"].as_u64().unwrap(),
            "{e}"
        );
    }
}

#[tokio::test]
async fn the_ws_client_negotiates_deflate_and_large_messages_travel_compressed() {
    let server = TestServer::start(deflate_config(true)).await;
    let verdict = node_echo(&server, "on").await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(
        verdict["extensions"],
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    let echoes = echoes(&verdict);
    // Text and binary, both over the threshold: each way, a small part of
    // the message was on the wire (so both sides compressed, and each
    // inflated what the other sent, intact).
    for e in &echoes[..2] {
        let size = e["size"].as_u64().unwrap();
        assert!(e["read"].as_u64().unwrap() < size / 10, "{e}");
        assert!(e["written"].as_u64().unwrap() < size / 10, "{e}");
    }
    // Under the threshold: sent as it is (payload, 2-byte header).
    assert_eq!(echoes[2]["read"], 2 + 6, "{verdict}");
}

#[tokio::test]
async fn the_ws_client_gets_no_deflate_when_it_is_off() {
    let server = TestServer::start(deflate_config(false)).await;
    let verdict = node_echo(&server, "on").await;
    travelled_uncompressed(&verdict);
}

#[tokio::test]
async fn a_client_that_does_not_offer_deflate_gets_none() {
    let server = TestServer::start(deflate_config(true)).await;
    let verdict = node_echo(&server, "off").await;
    travelled_uncompressed(&verdict);
}

/// A raw frame with RSV1 set (tungstenite sends it as it is, masked).
fn rsv1_frame(payload: Vec<u8>) -> WsMessage {
    let mut f = Frame::message(Bytes::from(payload), OpCode::Data(Data::Text), true);
    f.header_mut().rsv1 = true;
    WsMessage::Frame(f)
}

#[tokio::test]
async fn rsv1_without_negotiation_is_closed_with_1002_even_with_deflate_on() {
    let server = TestServer::start(deflate_config(true)).await;
    // tungstenite's client offers no extension.
    let (mut ws, sid) = common::open_ws(&server).await;
    ws.send(rsv1_frame(deflate_raw(b"4hello"))).await.unwrap();
    assert_eq!(ws_close_frame(&mut ws).await, Ok(Some(1002)));
    assert_eq!(server.closed(&sid).await, CloseReason::TransportError);
}

/// Raw deflate with a sync flush, its 00 00 ff ff tail removed (RFC 7692).
fn deflate_raw(data: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() / 100 + 1024);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert_eq!(c.total_in() as usize, data.len());
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// A WebSocket session that offered permessage-deflate (tungstenite's
/// client sends the header and does not check the answer).
async fn open_deflate_ws(server: &TestServer) -> (common::Ws, String) {
    let mut req = server
        .ws_url("EIO=4&transport=websocket")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Extensions",
        "permessage-deflate; client_max_window_bits"
            .parse()
            .unwrap(),
    );
    let (mut ws, res) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert!(res.headers().contains_key("sec-websocket-extensions"));
    let open = common::ws_text(&mut ws).await;
    (ws, common::sid_of(&open))
}

#[tokio::test]
async fn a_deflate_bomb_is_closed_with_1009() {
    let server = TestServer::start(deflate_config(true).max_payload(100_000)).await;
    // 50 MB of one byte: about 50 KB compressed, under max_payload.
    let bomb = deflate_raw(&vec![b'4'; 50_000_000]);
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let (mut ws, sid) = open_deflate_ws(&server).await;
    ws.send(rsv1_frame(bomb)).await.unwrap();
    assert_eq!(ws_close_frame(&mut ws).await, Ok(Some(1009)));
    assert_eq!(server.closed(&sid).await, CloseReason::PayloadTooLarge);
}

#[tokio::test]
async fn a_compressed_message_up_to_max_payload_is_read_and_garbage_is_1002() {
    // The server sends nothing compressed (tungstenite's client could not
    // read it), and reads compressed messages.
    let config = deflate_config(true)
        .max_payload(100_000)
        .compression_threshold(usize::MAX);
    let server = TestServer::start(config).await;
    let (mut ws, sid) = open_deflate_ws(&server).await;
    let text = "a".repeat(99_999);
    ws.send(rsv1_frame(deflate_raw(format!("4{text}").as_bytes())))
        .await
        .unwrap();
    assert_eq!(common::ws_text(&mut ws).await, format!("4{text}"));
    // Garbage flagged as compressed: 1002.
    ws.send(rsv1_frame(vec![0xff, 0xff, 0xff])).await.unwrap();
    assert_eq!(ws_close_frame(&mut ws).await, Ok(Some(1002)));
    assert_eq!(server.closed(&sid).await, CloseReason::TransportError);
}

async fn socket_io_echo(mode: &str) {
    let mut config = common::sio::config();
    config.engine = config.engine.ws_compression(true);
    let server = common::sio::SioServer::start(config).await;
    let verdict = run_node("sio-deflate-client.mjs", &[&server.base(), mode]).await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["extensions"], "permessage-deflate", "{verdict}");
    let size = verdict["size"].as_u64().unwrap();
    assert!(verdict["read"].as_u64().unwrap() < size / 10, "{verdict}");
    assert!(
        verdict["written"].as_u64().unwrap() < size / 10,
        "{verdict}"
    );
}

#[tokio::test]
async fn headless_chromium_negotiates_deflate_only_when_it_is_on() {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's `chromium` package (apt-get install chromium)"
    );
    let on = TestServer::start(deflate_config(true)).await;
    let off = TestServer::start(deflate_config(false)).await;
    let query = "EIO=4&transport=websocket";
    let verdict = run_node(
        "chromium-deflate.mjs",
        &[&on.ws_url(query), &off.ws_url(query)],
    )
    .await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    let results = verdict["results"].as_array().unwrap();
    assert_eq!(
        results[0]["extensions"],
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        "{verdict}"
    );
    assert_eq!(results[1]["extensions"], "", "{verdict}");
}

#[tokio::test]
async fn socket_io_client_echoes_large_events_compressed() {
    socket_io_echo("websocket").await;
}

#[tokio::test]
async fn socket_io_client_upgraded_from_polling_echoes_compressed() {
    socket_io_echo("upgrade").await;
}
