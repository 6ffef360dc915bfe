//! Each configurable limit, with a client past it getting a clear answer
//! while others go on: concurrent sessions, handshakes per IP, URL and
//! header sizes, a POST body that trickles in, namespaces per connection.

mod common;

use std::time::Duration;

use common::sio::{SioServer, config as sio_config};
use common::{TestServer, assert_error, config, http, open_polling, poll, post, ws_send, ws_text};
use socketgate::engine::CloseReason;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn max_sessions_refuses_new_handshakes_until_one_closes() {
    let server = TestServer::start(config().max_sessions(2)).await;
    let a = open_polling(&server).await;
    let _b = open_polling(&server).await;
    let res = http()
        .get(server.url("EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    assert_error(res, 503, 3, "Too many sessions").await;
    // the sessions already open are unaffected
    assert_eq!(post(&server, &a, "4still").await.0, 200);
    assert_eq!(poll(&server, &a).await.1, "4still");
    assert_eq!(post(&server, &a, "1").await.0, 200);
    server.closed(&a).await;
    open_polling(&server).await;
}

#[tokio::test]
async fn handshakes_per_ip_are_limited_when_asked() {
    let server = TestServer::start(config().handshakes_per_ip(Some(3))).await;
    let first = open_polling(&server).await;
    open_polling(&server).await;
    open_polling(&server).await;
    let res = http()
        .get(server.url("EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    assert_error(res, 429, 3, "Too many handshakes").await;
    // sessions keep working; the limit is on new handshakes per second
    assert_eq!(post(&server, &first, "4ok").await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    open_polling(&server).await;
}

#[tokio::test]
async fn urls_and_headers_over_their_limits_are_refused() {
    let server = TestServer::start(config().max_url_bytes(200).max_header_bytes(1024)).await;
    let long = format!("EIO=4&transport=polling&pad={}", "x".repeat(300));
    let res = http().get(server.url(&long)).send().await.unwrap();
    assert_error(res, 414, 3, "URI too long").await;
    let res = http()
        .get(server.url("EIO=4&transport=polling"))
        .header("x-padding", "y".repeat(2000))
        .send()
        .await
        .unwrap();
    assert_error(res, 431, 3, "Request headers too large").await;
    assert_eq!(server.engine.session_count(), 0);
    open_polling(&server).await;
}

#[tokio::test]
async fn a_post_body_that_trickles_in_times_out_and_closes_the_session() {
    let cfg = config()
        .post_timeout(Duration::from_millis(300))
        .ping_interval(Duration::from_secs(5));
    let server = TestServer::start(cfg).await;
    let sid = open_polling(&server).await;
    let other = open_polling(&server).await;
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\n4sl",
        server.addr
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(
        common::DEADLINE,
        tokio::io::AsyncReadExt::read(&mut slow, &mut answer),
    )
    .await
    .expect("an answer before the deadline")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("Request body timeout"), "{answer}");
    assert_eq!(server.closed(&sid).await, CloseReason::TransportError);
    // the other session carries on
    assert_eq!(post(&server, &other, "4fine").await.0, 200);
    assert_eq!(poll(&server, &other).await.1, "4fine");
}

#[tokio::test]
async fn namespaces_per_connection_are_limited() {
    let server = SioServer::start(sio_config().max_namespaces(2)).await;
    let (mut ws, _) = server.ws_joined().await;
    ws_send(&mut ws, "40/custom,").await;
    assert!(ws_text(&mut ws).await.starts_with("40/custom,"));
    ws_text(&mut ws).await; // auth
    ws_send(&mut ws, "40/tenant-1,").await;
    assert_eq!(
        ws_text(&mut ws).await,
        "44/tenant-1,{\"message\":\"Too many namespaces\"}"
    );
    // leaving one makes room, and the connection stayed up all along
    ws_send(&mut ws, "41/custom,").await;
    ws_send(&mut ws, "40/tenant-1,").await;
    assert!(ws_text(&mut ws).await.starts_with("40/tenant-1,"));
}
