//! engine.io v3 (`EIO=3`) over raw HTTP and WebSocket: framed text
//! payloads with UTF-16 lengths, binary payloads, the client-driven
//! heartbeat, binary frames with their type byte, and the upgrade.

mod common;

use std::time::Duration;

use common::{TestServer, assert_error, config, http, ws_connect, ws_next, ws_send, ws_text};
use futures_util::SinkExt;
use socketgate::engine::{CloseReason, Protocol};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn v3() -> socketgate::EngineConfig {
    config().allow_eio3(true)
}

/// Opens a v3 polling session; returns the sid.
async fn open(server: &TestServer) -> String {
    let res = common::get_ok(server.url("EIO=3&transport=polling")).await;
    assert_eq!(res.headers()["content-type"], "text/plain; charset=UTF-8");
    let body = res.text().await.unwrap();
    let (len, packet) = body.split_once(':').expect("a framed payload");
    assert_eq!(len.parse::<usize>().unwrap(), packet.encode_utf16().count());
    common::sid_of(packet)
}

fn url(server: &TestServer, sid: &str, extra: &str) -> String {
    server.url(&format!("EIO=3&transport=polling&sid={sid}{extra}"))
}

async fn get(server: &TestServer, sid: &str, extra: &str) -> reqwest::Response {
    http().get(url(server, sid, extra)).send().await.unwrap()
}

async fn post_text(server: &TestServer, sid: &str, body: &str) -> u16 {
    let res = http()
        .post(url(server, sid, ""))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        assert_eq!(res.text().await.unwrap(), "ok");
    }
    status
}

#[tokio::test]
async fn eio3_is_refused_unless_enabled() {
    let server = TestServer::start(config()).await;
    let res = http()
        .get(server.url("EIO=3&transport=polling"))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, 5, "Unsupported protocol version").await;
    let server = TestServer::start(v3()).await;
    let sid = open(&server).await;
    assert_eq!(server.session(&sid).protocol(), Protocol::V3);
}

#[tokio::test]
async fn text_payloads_count_utf16_code_units() {
    let server = TestServer::start(v3()).await;
    let sid = open(&server).await;
    // "é" is 2 bytes but 1 code unit; "🎉" is 4 bytes and 2 code units.
    assert_eq!(post_text(&server, &sid, "6:4hello2:4é3:4🎉").await, 200);
    assert_eq!(
        get(&server, &sid, "").await.text().await.unwrap(),
        "6:4hello2:4é3:4🎉"
    );
    // a wrong length is a parse error that closes the session
    assert_eq!(post_text(&server, &sid, "3:4é").await, 400);
    assert_eq!(server.closed(&sid).await, CloseReason::ParseError);
}

#[tokio::test]
async fn binary_goes_back_as_a_binary_payload_or_base64() {
    let server = TestServer::start(v3()).await;
    let sid = open(&server).await;
    // base64 binary in a text payload
    assert_eq!(post_text(&server, &sid, "10:b4AQIDBA==").await, 200);
    let res = get(&server, &sid, "").await;
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    assert_eq!(&res.bytes().await.unwrap()[..], &[1, 5, 255, 4, 1, 2, 3, 4]);
    // the same for a client that asked for base64
    assert_eq!(post_text(&server, &sid, "10:b4AQIDBA==").await, 200);
    let res = get(&server, &sid, "&b64=1").await;
    assert_eq!(res.headers()["content-type"], "text/plain; charset=UTF-8");
    assert_eq!(res.text().await.unwrap(), "10:b4AQIDBA==");
}

#[tokio::test]
async fn binary_payload_posts_are_decoded() {
    let server = TestServer::start(v3()).await;
    let sid = open(&server).await;
    // a string packet "4hi" and a binary packet [4, 9, 9]
    let body = vec![0u8, 3, 255, b'4', b'h', b'i', 1, 3, 255, 4, 9, 9];
    let res = http()
        .post(url(&server, &sid, ""))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = get(&server, &sid, "").await;
    assert_eq!(
        &res.bytes().await.unwrap()[..],
        &[0, 3, 255, b'4', b'h', b'i', 1, 3, 255, 4, 9, 9]
    );
}

#[tokio::test]
async fn the_client_pings_and_the_server_answers() {
    let server = TestServer::start(v3()).await;
    let sid = open(&server).await;
    for _ in 0..3 {
        assert_eq!(post_text(&server, &sid, "1:2").await, 200);
        assert_eq!(get(&server, &sid, "").await.text().await.unwrap(), "1:3");
    }
}

#[tokio::test]
async fn a_client_that_stops_pinging_times_out_and_the_server_never_pings() {
    let server = TestServer::start(v3()).await;
    let sid = open(&server).await;
    // a pending poll sees no ping from the server, only the close
    let res = get(&server, &sid, "").await;
    assert_eq!(res.text().await.unwrap(), "1:1");
    assert_eq!(server.closed(&sid).await, CloseReason::PingTimeout);
}

#[tokio::test]
async fn websocket_binary_frames_carry_the_type_byte() {
    let server = TestServer::start(v3()).await;
    let mut ws = ws_connect(&server.ws_url("EIO=3&transport=websocket")).await;
    let open = ws_text(&mut ws).await;
    assert!(open.starts_with("0{") && open.contains("\"upgrades\":[]"));
    ws.send(WsMessage::binary(vec![4u8, 1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::binary(vec![4u8, 1, 2, 3]))
    );
    ws_send(&mut ws, "2").await;
    assert_eq!(ws_text(&mut ws).await, "3");
    ws_send(&mut ws, "4héllo").await;
    assert_eq!(ws_text(&mut ws).await, "4héllo");
    // a binary frame without the message type byte is a parse error
    let sid = server.engine.session_count();
    assert_eq!(sid, 1);
    ws.send(WsMessage::binary(vec![1u8, 2])).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, None);
    server.drained().await;
}

#[tokio::test]
async fn upgrade_from_polling_to_websocket() {
    let server = TestServer::start(v3().ping_interval(Duration::from_secs(5))).await;
    let sid = open(&server).await;
    let mut ws = ws_connect(&server.ws_url(&format!("EIO=3&transport=websocket&sid={sid}"))).await;
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    assert_eq!(get(&server, &sid, "").await.text().await.unwrap(), "1:6");
    ws_send(&mut ws, "5").await;
    ws_send(&mut ws, "4hello").await;
    assert_eq!(ws_text(&mut ws).await, "4hello");
    assert_eq!(get(&server, &sid, "").await.status(), 400);
}
