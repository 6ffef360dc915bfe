//! Graceful shutdown of the server and of a namespace, seen from raw
//! clients: what was emitted before arrives, then the close; new
//! connections are refused.

mod common;

use std::time::Duration;

use common::sio::{SioServer, config};
use common::{http, ws_close_code, ws_send, ws_text};

#[tokio::test]
async fn server_shutdown_flushes_then_closes_polling_and_websocket_clients() {
    let server = SioServer::start(config()).await;
    // a WebSocket client on `/`
    let (mut ws, _) = server.ws_joined().await;
    // a polling client on `/`, with its GET pending
    let base = format!("http://{}/socket.io/?EIO=4&transport=polling", server.addr);
    let sid = common::handshake_sid(&base).await;
    let url = format!("{base}&sid={sid}");
    assert_eq!(
        http().post(&url).body("40").send().await.unwrap().status(),
        200
    );
    let first = http().get(&url).send().await.unwrap().text().await.unwrap();
    assert!(first.starts_with("40{\"sid\""), "{first}");

    // emitted before the shutdown begins: every reading client gets them
    for i in 0..3 {
        server.io.emit("pre", &i).unwrap();
    }
    let io = server.io.clone();
    let shutdown = tokio::spawn(async move { io.shutdown(Duration::from_secs(5)).await });

    let polled = http().get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(
        polled,
        "42[\"pre\",0]\u{1e}42[\"pre\",1]\u{1e}42[\"pre\",2]"
    );
    let last = http().get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(last, "1", "then the close, alone");
    for i in 0..3 {
        assert_eq!(ws_text(&mut ws).await, format!("42[\"pre\",{i}]"));
    }
    assert_eq!(ws_close_code(&mut ws).await, Some(1000));
    assert!(shutdown.await.unwrap(), "every session closed in time");
    assert_eq!(server.io.engine().session_count(), 0);

    // no new sessions
    let res = http().get(&base).send().await.unwrap();
    assert_eq!(res.status(), 503);
}

#[tokio::test]
async fn a_vanished_poller_does_not_hold_the_shutdown() {
    let server = SioServer::start(config()).await;
    // a polling session whose client went away: nothing pending, no more polls
    let base = format!("http://{}/socket.io/?EIO=4&transport=polling", server.addr);
    let sid = common::handshake_sid(&base).await;
    let started = std::time::Instant::now();
    assert!(server.io.shutdown(Duration::from_secs(30)).await);
    // let go after the short idle grace, not the 30 s deadline
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.io.engine().session_count(), 0);
    let res = http()
        .get(format!("{base}&sid={sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn a_pending_poll_takes_the_close_at_once() {
    let server = SioServer::start(config()).await;
    let base = format!("http://{}/socket.io/?EIO=4&transport=polling", server.addr);
    let sid = common::handshake_sid(&base).await;
    // a poll held open on a raw connection
    let url = format!("{base}&sid={sid}");
    let mut held = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        url.trim_start_matches(&format!("http://{}", server.addr)),
        server.addr
    );
    tokio::io::AsyncWriteExt::write_all(&mut held, req.as_bytes())
        .await
        .unwrap();
    let session = server
        .io
        .engine()
        .session(&socketgate::engine::Sid::parse(&sid).unwrap())
        .unwrap();
    common::until("the poll to be pending", || session.pending_requests().0).await;
    // the pending poll takes the close packet at once, so the session ends
    // well within the deadline
    assert!(server.io.shutdown(Duration::from_millis(500)).await);
    assert_eq!(server.io.engine().session_count(), 0);
}

#[tokio::test]
async fn a_shutdown_past_its_deadline_closes_what_is_left() {
    let server = SioServer::start(config()).await;
    // a WebSocket client that stops reading while megabytes wait for it:
    // its queue cannot be flushed, so only the deadline ends it
    let (ws, _) = server.ws_joined().await;
    let big = "x".repeat(1 << 20);
    for _ in 0..7 {
        server.io.emit("bulk", &big).unwrap();
    }
    assert!(!server.io.shutdown(Duration::from_millis(300)).await);
    assert_eq!(server.io.engine().session_count(), 0);
    drop(ws);
}

#[tokio::test]
async fn closing_a_namespace_disconnects_its_sockets_and_refuses_new_ones() {
    let server = SioServer::start(config()).await;
    let (mut ws, _) = server.ws_joined().await;
    ws_send(&mut ws, "40/custom,").await;
    assert!(ws_text(&mut ws).await.starts_with("40/custom,"));
    assert_eq!(ws_text(&mut ws).await, "42/custom,[\"auth\",{}]");

    let custom = server.io.of("/custom").unwrap();
    custom.emit("last", &1).unwrap();
    custom.close();
    assert_eq!(ws_text(&mut ws).await, "42/custom,[\"last\",1]");
    assert_eq!(ws_text(&mut ws).await, "41/custom,");
    assert!(custom.sockets().is_empty());
    ws_send(&mut ws, "40/custom,").await;
    assert_eq!(
        ws_text(&mut ws).await,
        "44/custom,{\"message\":\"Invalid namespace\"}"
    );
    // the connection and `/` are untouched
    ws_send(&mut ws, "42[\"message\",2]").await;
    assert_eq!(ws_text(&mut ws).await, "42[\"message-back\",2]");
}
