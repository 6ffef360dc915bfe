//! The bad-input table (README, "Bad input"): each row sends its input over
//! real HTTP or WebSocket, checks the answer and that the offending session
//! is gone, while a well-behaved client on the same server keeps receiving
//! everything sent to it, in order.

mod common;

use std::time::Duration;

use common::sio::SioServer;
use common::{Ws, http, ws_close_code, ws_connect, ws_send, ws_text};
use futures_util::SinkExt;
use socketgate::AllowedOrigins;
use socketgate::socketio::SocketIoConfig;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn server_config() -> SocketIoConfig {
    let engine = socketgate::EngineConfig::default()
        .ping_interval(Duration::from_secs(30))
        .max_payload(10_000)
        .max_url_bytes(2048)
        .max_header_bytes(4096)
        .post_timeout(Duration::from_millis(300))
        .allowed_origins(AllowedOrigins::same_origin());
    SocketIoConfig::default()
        .engine(engine)
        .max_attachments(2)
        .max_attachment_bytes(100)
        .max_namespaces(2)
}

struct Bench {
    server: SioServer,
    good: Ws,
    sent: u64,
}

impl Bench {
    fn base(&self) -> String {
        format!("http://{}/socket.io/?EIO=4", self.server.addr)
    }

    fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/socket.io/?EIO=4&{query}", self.server.addr)
    }

    /// A socket.io WebSocket client joined to `/`.
    async fn joined(&self) -> Ws {
        self.server.ws_joined().await.0
    }

    async fn polling_sid(&self) -> String {
        common::handshake_sid(format!("{}&transport=polling", self.base())).await
    }

    /// After each row: the good client gets the next message.
    async fn good_client_still_served(&mut self, row: &str) {
        self.server.io.emit("tick", &self.sent).unwrap();
        let got = ws_text(&mut self.good).await;
        assert_eq!(
            got,
            format!("42[\"tick\",{}]", self.sent),
            "after row {row:?}"
        );
        self.sent += 1;
    }
}

async fn assert_code(res: reqwest::Response, status: u16, code: u8, row: &str) {
    assert_eq!(res.status().as_u16(), status, "{row}");
    let body = res.text().await.unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{row}: {body}"));
    assert_eq!(json["code"], code, "{row}: {body}");
}

#[tokio::test]
async fn every_row_of_the_bad_input_table() {
    let server = SioServer::start(server_config()).await;
    let mut b = Bench {
        good: server.ws_joined().await.0,
        server,
        sent: 0,
    };
    let base = b.base();

    // --- HTTP requests refused before any session exists
    for (row, url, status, code) in [
        (
            "unknown transport",
            format!("{base}&transport=carrier-pigeon"),
            400,
            0,
        ),
        (
            "unsupported EIO",
            base.replace("EIO=4", "EIO=9") + "&transport=polling",
            400,
            5,
        ),
        (
            "unknown sid",
            format!("{base}&transport=polling&sid=AAAAAAAAAAAAAAAAAAAAAAAA"),
            400,
            1,
        ),
        (
            "URL too long",
            format!("{base}&transport=polling&x={}", "y".repeat(3000)),
            414,
            3,
        ),
        (
            "JSONP index not a number",
            format!("{base}&transport=polling&j=alert(1)"),
            400,
            3,
        ),
    ] {
        assert_code(http().get(&url).send().await.unwrap(), status, code, row).await;
        b.good_client_still_served(row).await;
    }
    let res = http()
        .post(format!("{base}&transport=polling"))
        .send()
        .await
        .unwrap();
    assert_code(res, 400, 2, "handshake with POST").await;
    let res = http()
        .get(format!("{base}&transport=polling"))
        .header("x-big", "z".repeat(5000))
        .send()
        .await
        .unwrap();
    assert_code(res, 431, 3, "headers too large").await;
    let res = http()
        .get(format!("{base}&transport=polling"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_code(res, 403, 4, "foreign origin (polling)").await;
    let mut req = b
        .ws_url("transport=websocket")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!("foreign origin over WebSocket: {:?}", other.map(|_| ())),
    }
    b.good_client_still_served("foreign origin").await;

    // --- bad input inside a polling session: answer, then the session is gone
    let bodies: [(&str, Vec<u8>, Option<&str>, u16); 5] = [
        ("oversized POST", vec![b'4'; 10_001], None, 413),
        ("undecodable packet", b"abc".to_vec(), None, 400),
        ("truncated UTF-8", vec![b'4', 0xc3], None, 400),
        (
            "binary payload under EIO=4",
            vec![0, 1, 255, b'4'],
            Some("application/octet-stream"),
            400,
        ),
        ("client ping under EIO=4", b"2".to_vec(), None, 400),
    ];
    for (row, body, content_type, status) in bodies {
        let sid = b.polling_sid().await;
        let url = format!("{base}&transport=polling&sid={sid}");
        let mut req = http().post(&url).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        assert_eq!(req.send().await.unwrap().status().as_u16(), status, "{row}");
        assert_code(http().get(&url).send().await.unwrap(), 400, 1, row).await;
        b.good_client_still_served(row).await;
    }
    // a second GET while one is pending
    let sid = b.polling_sid().await;
    let url = format!("{base}&transport=polling&sid={sid}");
    let pending = tokio::spawn({
        let url = url.clone();
        async move { http().get(url).send().await.unwrap().text().await.unwrap() }
    });
    let session = b
        .server
        .io
        .engine()
        .session(&socketgate::engine::Sid::parse(&sid).unwrap())
        .unwrap();
    common::until("the poll to be pending", || session.pending_requests().0).await;
    assert_code(
        http().get(&url).send().await.unwrap(),
        400,
        3,
        "concurrent GET",
    )
    .await;
    assert_eq!(pending.await.unwrap(), "1");
    b.good_client_still_served("concurrent GET").await;
    // a POST body that trickles in
    let sid = b.polling_sid().await;
    let mut slow = tokio::net::TcpStream::connect(b.server.addr).await.unwrap();
    let head = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {}\r\nContent-Length: 50\r\n\r\n4",
        b.server.addr
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 256];
    let n = tokio::io::AsyncReadExt::read(&mut slow, &mut answer)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 408"));
    b.good_client_still_served("slow POST body").await;

    // --- bad input on a WebSocket: the connection closes
    let mut ws = ws_connect(&b.ws_url("transport=websocket")).await;
    ws_text(&mut ws).await;
    ws_send(&mut ws, &format!("4{}", "x".repeat(10_000))).await;
    assert_eq!(ws_close_code(&mut ws).await, Some(1009), "oversized frame");
    b.good_client_still_served("oversized WebSocket frame")
        .await;

    let nested = format!(
        "42[\"message\",{}1{}]",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let packets: Vec<(&str, Vec<String>)> = vec![
        ("undecodable engine packet", vec!["abc".into()]),
        (
            "undecodable socket.io packet",
            vec!["42[\"message\",{".into()],
        ),
        ("reserved event name", vec!["42[\"connect\"]".into()]),
        ("too many attachments", vec!["453-[\"message\",1]".into()]),
        ("deeply nested JSON", vec![nested]),
        (
            "event for a namespace not joined",
            vec!["42/custom,[\"message\",1]".into()],
        ),
        (
            "ack id overflow",
            vec!["4299999999999999999999[\"message\"]".into()],
        ),
    ];
    for (row, frames) in packets {
        let mut ws = b.joined().await;
        for f in frames {
            ws_send(&mut ws, &f).await;
        }
        assert!(ws_close_code(&mut ws).await.is_some(), "{row}");
        b.good_client_still_served(row).await;
    }
    // attachments over the byte limit
    let mut ws = b.joined().await;
    ws_send(
        &mut ws,
        "451-[\"message\",{\"_placeholder\":true,\"num\":0}]",
    )
    .await;
    ws.send(WsMessage::binary(vec![0u8; 101])).await.unwrap();
    assert!(ws_close_code(&mut ws).await.is_some(), "attachment bytes");
    b.good_client_still_served("attachments too large").await;
    // a binary message nobody announced
    let mut ws = b.joined().await;
    ws.send(WsMessage::binary(vec![1u8])).await.unwrap();
    assert!(ws_close_code(&mut ws).await.is_some(), "unexpected binary");
    b.good_client_still_served("unexpected binary").await;

    // too many namespaces: refused, the connection stays
    let mut ws = b.joined().await;
    ws_send(&mut ws, "40/custom,").await;
    assert!(ws_text(&mut ws).await.starts_with("40/custom,"));
    ws_text(&mut ws).await;
    ws_send(&mut ws, "40/private,{\"token\":\"secret\"}").await;
    assert_eq!(
        ws_text(&mut ws).await,
        "44/private,{\"message\":\"Too many namespaces\"}"
    );
    b.good_client_still_served("too many namespaces").await;

    // every offending session is gone: only the good client remains, and it
    // got every message so far, in order (checked row by row)
    drop(ws);
    common::until("offenders gone", || {
        b.server.io.engine().session_count() == 1
    })
    .await;
    b.good_client_still_served("the end").await;
}
