//! socket.io packets sent raw over a WebSocket: the happy path, and every
//! kind of bad packet, which closes only the offending connection.

mod common;

use std::time::Duration;

use common::sio::{SioServer, config};
use common::{Ws, ws_close_code, ws_event, ws_next, ws_send, ws_text};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;

async fn open(server: &SioServer) -> Ws {
    server.ws_open().await
}

/// Connects `/` and reads the connect answer and the `auth` event.
async fn open_main(server: &SioServer) -> Ws {
    server.ws_joined().await.0
}

async fn assert_still_serves(server: &SioServer) {
    let mut ws = open_main(server).await;
    ws_send(&mut ws, "42[\"message\",\"still fine\"]").await;
    assert_eq!(
        ws_event(&mut ws).await,
        "42[\"message-back\",\"still fine\"]"
    );
}

#[tokio::test]
async fn connect_event_ack_and_binary_round_trip() {
    let server = SioServer::start(config()).await;
    let mut ws = open(&server).await;
    ws_send(&mut ws, "40{\"token\":\"t\"}").await;
    let answer = ws_text(&mut ws).await;
    let sid = serde_json::from_str::<serde_json::Value>(&answer[2..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(ws_text(&mut ws).await, "42[\"auth\",{\"token\":\"t\"}]");
    assert_eq!(server.io.of("/").unwrap().sockets()[0].id().as_str(), sid);

    ws_send(&mut ws, "4212[\"message-with-ack\",{\"a\":[1,2]}]").await;
    assert_eq!(ws_event(&mut ws).await, "4312[{\"a\":[1,2]}]");

    ws_send(
        &mut ws,
        "451-[\"message\",{\"_placeholder\":true,\"num\":0},\"x\"]",
    )
    .await;
    ws.send(WsMessage::binary(vec![9u8, 8, 7])).await.unwrap();
    assert_eq!(
        ws_event(&mut ws).await,
        "451-[\"message-back\",{\"_placeholder\":true,\"num\":0},\"x\"]"
    );
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::binary(vec![9u8, 8, 7]))
    );
}

#[tokio::test]
async fn unknown_namespace_is_refused_and_the_connection_stays() {
    let server = SioServer::start(config()).await;
    let mut ws = open(&server).await;
    ws_send(&mut ws, "40/nope,").await;
    assert_eq!(
        ws_text(&mut ws).await,
        "44/nope,{\"message\":\"Invalid namespace\"}"
    );
    ws_send(&mut ws, "40").await;
    assert!(ws_text(&mut ws).await.starts_with("40{\"sid\""));
}

#[tokio::test]
async fn refused_by_middleware_with_message_and_data() {
    let server = SioServer::start(config()).await;
    let mut ws = open(&server).await;
    ws_send(&mut ws, "40/private,{\"token\":\"nope\"}").await;
    assert_eq!(
        ws_text(&mut ws).await,
        "44/private,{\"data\":{\"code\":401},\"message\":\"unauthorized\"}"
    );
    ws_send(&mut ws, "40/private,{\"token\":\"secret\"}").await;
    assert!(ws_text(&mut ws).await.starts_with("40/private,{\"sid\""));
}

#[tokio::test]
async fn namespace_disconnect_leaves_the_others_up() {
    let server = SioServer::start(config()).await;
    let mut ws = open_main(&server).await;
    ws_send(&mut ws, "40/custom,").await;
    assert!(ws_event(&mut ws).await.starts_with("40/custom,{\"sid\""));
    assert_eq!(ws_event(&mut ws).await, "42/custom,[\"auth\",{}]");
    assert_eq!(server.io.of("/custom").unwrap().sockets().len(), 1);
    ws_send(&mut ws, "41/custom,").await;
    common::until("socket left /custom", || {
        server.io.of("/custom").unwrap().sockets().is_empty()
    })
    .await;
    ws_send(&mut ws, "42[\"message\",1]").await;
    assert_eq!(ws_event(&mut ws).await, "42[\"message-back\",1]");
    // the server disconnecting a socket tells the client, and it may come back
    ws_send(&mut ws, "42[\"disconnect-me\"]").await;
    assert_eq!(ws_event(&mut ws).await, "41");
    ws_send(&mut ws, "40").await;
    assert!(ws_event(&mut ws).await.starts_with("40{\"sid\""));
}

/// Each bad packet closes the offending connection, and the server goes on.
#[tokio::test]
async fn bad_packets_close_only_their_connection() {
    let server = SioServer::start(config().max_attachments(2)).await;
    let cases: &[(&str, &[&str])] = &[
        ("undecodable JSON", &["42[\"message\",{"]),
        ("unknown packet type", &["49"]),
        ("reserved event name", &["42[\"disconnect\"]"]),
        ("event name not a string", &["42[1,2]"]),
        ("too many attachments", &["453-[\"message\",1]"]),
        (
            "placeholder out of range",
            &["451-[\"message\",{\"_placeholder\":true,\"num\":5}]"],
        ),
        (
            "event for a namespace not joined",
            &["42/custom,[\"message\",1]"],
        ),
        ("second connect", &["40"]),
        ("connect error from a client", &["44{\"message\":\"x\"}"]),
        (
            "text while attachments are due",
            &[
                "451-[\"message\",{\"_placeholder\":true,\"num\":0}]",
                "42[\"message\",1]",
            ],
        ),
        ("ack id overflow", &["4299999999999999999999[\"message\"]"]),
    ];
    for (what, packets) in cases {
        let mut ws = open_main(&server).await;
        for p in *packets {
            ws_send(&mut ws, p).await;
        }
        assert!(
            ws_close_code(&mut ws).await.is_some(),
            "{what}: the connection should close"
        );
        common::until("the socket to leave", || {
            server.io.of("/").unwrap().sockets().is_empty()
        })
        .await;
    }
    // binary when no packet waits for it
    let mut ws = open_main(&server).await;
    ws.send(WsMessage::binary(vec![1u8])).await.unwrap();
    assert!(ws_close_code(&mut ws).await.is_some());
    assert_still_serves(&server).await;
}

#[tokio::test]
async fn attachments_over_the_byte_limit_close_the_connection() {
    let server = SioServer::start(config().max_attachment_bytes(10)).await;
    let mut ws = open_main(&server).await;
    ws_send(
        &mut ws,
        "452-[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
    )
    .await;
    ws.send(WsMessage::binary(vec![0u8; 6])).await.unwrap();
    ws.send(WsMessage::binary(vec![0u8; 6])).await.unwrap();
    assert!(ws_close_code(&mut ws).await.is_some());
    assert_still_serves(&server).await;
}

#[tokio::test]
async fn a_client_that_joins_no_namespace_is_closed_after_connect_timeout() {
    let server = SioServer::start(config().connect_timeout(Duration::from_millis(300))).await;
    let mut ws = open(&server).await;
    // answer pings so only the connect timeout can close it
    let closed = tokio::time::timeout(common::DEADLINE, async {
        loop {
            match ws_next(&mut ws).await {
                Some(WsMessage::Text(t)) if t == "2" => ws_send(&mut ws, "3").await,
                Some(_) => {}
                None => return,
            }
        }
    })
    .await;
    assert!(closed.is_ok());
    assert_eq!(server.io.engine().session_count(), 0);
    // one that joins in time stays
    let mut ws = open_main(&server).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    ws_send(&mut ws, "42[\"message\",\"alive\"]").await;
    assert_eq!(ws_event(&mut ws).await, "42[\"message-back\",\"alive\"]");
}

#[tokio::test]
async fn server_emits_with_ack_and_gets_json_and_binary_answers() {
    let server = SioServer::start(config()).await;
    let mut ws = open_main(&server).await;
    let socket = server.io.of("/").unwrap().sockets()[0].clone();
    let timeout = Duration::from_secs(5);

    let asker = socket.clone();
    let asked = tokio::spawn(async move { asker.emit_with_ack("question", &"q?", timeout).await });
    let question = ws_event(&mut ws).await;
    let id = question
        .strip_prefix("42")
        .and_then(|rest| rest.strip_suffix("[\"question\",\"q?\"]"))
        .unwrap_or_else(|| panic!("an EVENT with an ack id expected, got {question:?}"));
    assert!(id.parse::<u64>().is_ok(), "{question:?}");
    ws_send(&mut ws, &format!("43{id}[\"yes\",2]")).await;
    let answer = asked.await.unwrap().unwrap();
    assert_eq!(
        answer.args,
        [serde_json::json!("yes"), serde_json::json!(2)]
    );

    // With binary arguments both ways: BINARY_EVENT out, BINARY_ACK back.
    let payload = socketgate::socketio::Payload::new()
        .arg("q?")
        .bin(vec![1u8, 2]);
    let asked = tokio::spawn(async move {
        socket
            .emit_payload_with_ack("question", &payload, timeout)
            .await
    });
    let question = ws_event(&mut ws).await;
    let id = question
        .strip_prefix("451-")
        .and_then(|rest| {
            rest.strip_suffix("[\"question\",\"q?\",{\"_placeholder\":true,\"num\":0}]")
        })
        .unwrap_or_else(|| panic!("a BINARY_EVENT with an ack id expected, got {question:?}"))
        .to_owned();
    assert!(id.parse::<u64>().is_ok(), "{question:?}");
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::binary(vec![1u8, 2]))
    );
    ws_send(
        &mut ws,
        &format!("461-{id}[{{\"_placeholder\":true,\"num\":0}},\"ok\"]"),
    )
    .await;
    ws.send(WsMessage::binary(vec![7u8])).await.unwrap();
    let answer = asked.await.unwrap().unwrap();
    assert_eq!(answer.binary(0).map(|b| &b[..]), Some(&[7u8][..]));
    assert_eq!(answer.get::<String>(1).unwrap(), "ok");
}
