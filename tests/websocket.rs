//! The WebSocket transport on its own: limits, bad input, closes.

mod common;

use std::time::Duration;

use common::{TestServer, config, ws_close_code, ws_next, ws_send, ws_text};
use futures_util::SinkExt;
use socketgate::engine::{CloseReason, Message};
use tokio_tungstenite::tungstenite::Message as WsMessage;

async fn open(server: &TestServer) -> (common::Ws, String) {
    common::open_ws(server).await
}

#[tokio::test]
async fn text_and_binary_round_trip() {
    let server = TestServer::start(config()).await;
    let (mut ws, _) = open(&server).await;
    ws_send(&mut ws, "4héllo ✓ 🎉").await;
    assert_eq!(ws_text(&mut ws).await, "4héllo ✓ 🎉");
    ws.send(WsMessage::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    match ws_next(&mut ws).await {
        Some(WsMessage::Binary(b)) => assert_eq!(&b[..], &[0, 1, 2, 255]),
        other => panic!("expected binary, got {other:?}"),
    }
}

#[tokio::test]
async fn a_frame_over_max_payload_closes_with_1009_and_spares_others() {
    let server = TestServer::start(config().max_payload(1000)).await;
    let (mut other, _) = open(&server).await;
    let (mut ws, sid) = open(&server).await;
    ws_send(&mut ws, &format!("4{}", "x".repeat(999))).await;
    assert_eq!(
        ws_text(&mut ws).await.len(),
        1000,
        "exactly max_payload passes"
    );
    ws_send(&mut ws, &format!("4{}", "x".repeat(1000))).await;
    assert_eq!(ws_close_code(&mut ws).await, Some(1009));
    assert_eq!(server.closed(&sid).await, CloseReason::PayloadTooLarge);
    ws_send(&mut other, "4unaffected").await;
    assert_eq!(ws_text(&mut other).await, "4unaffected");
}

#[tokio::test]
async fn a_second_websocket_for_a_websocket_session_is_accepted_then_closed() {
    // Opened over WebSocket, the session offers no upgrade; a WebSocket
    // naming its sid completes the handshake (as the reference server's
    // does) and is closed, and the first one goes on.
    let server = TestServer::start(config().ping_interval(Duration::from_secs(5))).await;
    let (mut ws, sid) = open(&server).await;
    let mut second =
        common::ws_connect(&server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}"))).await;
    assert_eq!(common::ws_close_frame(&mut second).await, Ok(None));
    ws_send(&mut ws, "4hello").await;
    assert_eq!(ws_text(&mut ws).await, "4hello");
}

#[tokio::test]
async fn an_invalid_packet_closes_the_session() {
    let server = TestServer::start(config()).await;
    for (bad, want) in [
        ("abc", CloseReason::ParseError),
        ("", CloseReason::ParseError),
        ("9", CloseReason::ParseError),
        // v4 clients answer pings; they never send them
        ("2", CloseReason::TransportError),
        ("5", CloseReason::TransportError),
    ] {
        let (mut ws, sid) = open(&server).await;
        ws_send(&mut ws, bad).await;
        ws_close_code(&mut ws).await;
        assert_eq!(server.closed(&sid).await, want, "{bad:?}");
    }
    server.drained().await;
}

#[tokio::test]
async fn client_close_packet_and_close_frame_end_the_session() {
    let server = TestServer::start(config()).await;
    let (mut ws, sid) = open(&server).await;
    ws_send(&mut ws, "1").await;
    ws_close_code(&mut ws).await;
    assert_eq!(server.closed(&sid).await, CloseReason::TransportClose);

    let (mut ws, sid) = open(&server).await;
    ws.close(None).await.unwrap();
    assert_eq!(server.closed(&sid).await, CloseReason::TransportClose);

    let (ws, sid) = open(&server).await;
    drop(ws); // TCP gone without a close frame
    assert_eq!(server.closed(&sid).await, CloseReason::TransportClose);
    server.drained().await;
}

#[tokio::test]
async fn server_close_delivers_queued_messages_first() {
    let server = TestServer::start(config().ping_interval(Duration::from_secs(5))).await;
    let (mut ws, sid) = open(&server).await;
    let session = server.session(&sid);
    session.send(Message::text("one")).unwrap();
    session.send(Message::binary(vec![2u8])).unwrap();
    session.close();
    assert_eq!(ws_text(&mut ws).await, "4one");
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::binary(vec![2u8])));
    assert_eq!(ws_close_code(&mut ws).await, Some(1000));
    assert_eq!(server.closed(&sid).await, CloseReason::ServerClose);
    server.drained().await;
}

#[tokio::test]
async fn a_silent_client_is_closed_after_ping_timeout() {
    let server = TestServer::start(config()).await;
    let (mut ws, sid) = open(&server).await;
    assert_eq!(ws_text(&mut ws).await, "2");
    // no pong
    ws_close_code(&mut ws).await;
    assert_eq!(server.closed(&sid).await, CloseReason::PingTimeout);
    server.drained().await;
}

#[tokio::test]
async fn a_full_queue_refuses_sends_without_growing() {
    let server = TestServer::start(
        config()
            .max_queue_bytes(1000)
            .ping_interval(Duration::from_secs(5)),
    )
    .await;
    let (_ws, sid) = open(&server).await;
    let session = server.session(&sid);
    // Nobody reads the socket, but the writer drains into kernel buffers
    // first; keep sending until the bound bites.
    let chunk = Message::text("x".repeat(499));
    let mut refused = false;
    for _ in 0..100_000 {
        match session.send(chunk.clone()) {
            Ok(()) => assert!(session.queued_bytes() <= 1000),
            Err(socketgate::engine::SendError::QueueFull) => {
                refused = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "the queue bound was never reached");
    assert!(session.queued_bytes() <= 1000);
}
