//! WebSocket close codes a client can rely on: a frame over max_payload
//! gets 1009, invalid UTF-8 in a text frame 1007, a protocol violation
//! 1002, and the client reads the close frame in every run (the server
//! does not reset the connection under data it has not read).

mod common;

use bytes::Bytes;
use common::{TestServer, config, ws_close_frame};
use futures_util::SinkExt;
use socketgate::engine::CloseReason;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

const ROUNDS: usize = 20;

#[tokio::test]
async fn a_frame_over_max_payload_is_closed_with_1009_while_the_client_writes() {
    let server = TestServer::start(config().max_payload(1000)).await;
    // 4 MiB: the server decides on the frame header, long before the
    // client has written the rest.
    let big = format!("4{}", "x".repeat(4 << 20));
    for round in 0..ROUNDS {
        let (mut ws, sid) = common::open_ws(&server).await;
        let sent = ws.send(WsMessage::text(big.as_str())).await;
        assert!(sent.is_ok(), "round {round}: write failed: {sent:?}");
        assert_eq!(
            ws_close_frame(&mut ws).await,
            Ok(Some(1009)),
            "round {round}"
        );
        assert_eq!(server.closed(&sid).await, CloseReason::PayloadTooLarge);
    }
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_is_closed_with_1007() {
    let server = TestServer::start(config()).await;
    for round in 0..ROUNDS {
        let (mut ws, sid) = common::open_ws(&server).await;
        // tungstenite sends a raw frame as it is: a text frame whose
        // payload is not UTF-8 (a lone continuation byte, then 0xff).
        let bad = Frame::message(
            Bytes::from_static(b"4\x80\xff"),
            OpCode::Data(Data::Text),
            true,
        );
        ws.send(WsMessage::Frame(bad)).await.unwrap();
        assert_eq!(
            ws_close_frame(&mut ws).await,
            Ok(Some(1007)),
            "round {round}"
        );
        assert_eq!(server.closed(&sid).await, CloseReason::TransportError);
    }
}

#[tokio::test]
async fn a_protocol_violation_is_closed_with_1002() {
    let server = TestServer::start(config()).await;
    for round in 0..ROUNDS {
        let (mut ws, sid) = common::open_ws(&server).await;
        let frame = if round % 2 == 0 {
            // a reserved bit without a negotiated extension
            let mut f = Frame::message(Bytes::from_static(b"4x"), OpCode::Data(Data::Text), true);
            f.header_mut().rsv1 = true;
            f
        } else {
            // a reserved data opcode
            Frame::message(
                Bytes::from_static(b"4x"),
                OpCode::Data(Data::Reserved(3)),
                true,
            )
        };
        ws.send(WsMessage::Frame(frame)).await.unwrap();
        assert_eq!(
            ws_close_frame(&mut ws).await,
            Ok(Some(1002)),
            "round {round}"
        );
        assert_eq!(server.closed(&sid).await, CloseReason::TransportError);
    }
}
