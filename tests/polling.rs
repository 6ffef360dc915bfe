//! Long-polling rules: batching, concurrent requests, limits, bad input and
//! client close.

mod common;

use std::time::Duration;

use common::{TestServer, assert_error, config, http, open_polling, poll, post};
use socketgate::engine::CloseReason;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn messages_round_trip_and_batch_in_one_answer() {
    let server = TestServer::start(config()).await;
    let sid = open_polling(&server).await;
    assert_eq!(
        post(&server, &sid, "4hello\x1e4héllo ✓\x1ebAQIDBA==").await,
        (200, "ok".to_owned())
    );
    assert_eq!(
        poll(&server, &sid).await,
        (200, "4hello\x1e4héllo ✓\x1ebAQIDBA==".to_owned())
    );
}

#[tokio::test]
async fn a_poll_answers_no_more_than_max_payload() {
    let server = TestServer::start(config().max_payload(25)).await;
    let sid = open_polling(&server).await;
    for m in ["4aaaaaaaaa", "4bbbbbbbbb", "4ccccccccc"] {
        assert_eq!(post(&server, &sid, m).await.0, 200);
    }
    assert_eq!(poll(&server, &sid).await.1, "4aaaaaaaaa\x1e4bbbbbbbbb");
    assert_eq!(poll(&server, &sid).await.1, "4ccccccccc");
}

#[tokio::test]
async fn a_poll_waits_for_data_and_the_heartbeat_ends_it() {
    let server = TestServer::start(config()).await;
    let sid = open_polling(&server).await;
    // Nothing queued: the poll is held until the server's ping (300 ms).
    let started = std::time::Instant::now();
    assert_eq!(poll(&server, &sid).await.1, "2");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(post(&server, &sid, "3").await.0, 200);
}

#[tokio::test]
async fn concurrent_get_closes_the_session() {
    let server = TestServer::start(config().ping_interval(Duration::from_secs(5))).await;
    let sid = open_polling(&server).await;
    let first = tokio::spawn({
        let url = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
        async move { http().get(url).send().await.unwrap().text().await.unwrap() }
    });
    server.pending(&sid, true, false).await;
    let res = http()
        .get(server.url(&format!("EIO=4&transport=polling&sid={sid}&t=second")))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, 3, "Bad request").await;
    assert_eq!(
        first.await.unwrap(),
        "1",
        "the pending poll learns of the close"
    );
    assert_eq!(server.closed(&sid).await, CloseReason::TransportError);
    let (status, _) = poll(&server, &sid).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn concurrent_post_closes_the_session() {
    let server = TestServer::start(config().ping_interval(Duration::from_secs(5))).await;
    let sid = open_polling(&server).await;
    // A POST whose body never finishes arriving.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n4hal",
        server.addr
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    server.pending(&sid, false, true).await;
    let (status, _) = post(&server, &sid, "4second").await;
    assert_eq!(status, 400);
    assert_eq!(server.closed(&sid).await, CloseReason::TransportError);
    drop(slow);
    server.drained().await;
}

#[tokio::test]
async fn oversized_post_gets_413_and_closes_the_session() {
    let server = TestServer::start(config().max_payload(1000)).await;
    let sid = open_polling(&server).await;
    let body = format!("4{}", "x".repeat(1000));
    let res = http()
        .post(server.url(&format!("EIO=4&transport=polling&sid={sid}")))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(server.closed(&sid).await, CloseReason::PayloadTooLarge);
    assert_eq!(poll(&server, &sid).await.0, 400);
    // exactly at the limit is fine
    let sid = open_polling(&server).await;
    assert_eq!(
        post(&server, &sid, format!("4{}", "y".repeat(999))).await.0,
        200
    );
}

#[tokio::test]
async fn invalid_packet_closes_the_session() {
    let server = TestServer::start(config()).await;
    for bad in ["abc", "", "4ok\x1e", "b!!!", "2"] {
        let sid = open_polling(&server).await;
        let (status, _) = post(&server, &sid, bad).await;
        assert_eq!(status, 400, "{bad:?}");
        let reason = server.closed(&sid).await;
        assert!(
            matches!(
                reason,
                CloseReason::ParseError | CloseReason::TransportError
            ),
            "{bad:?}: {reason:?}"
        );
        assert_eq!(poll(&server, &sid).await.0, 400, "{bad:?}");
    }
    let sid = open_polling(&server).await;
    post(&server, &sid, "\u{fffd}").await;
    assert_eq!(server.closed(&sid).await, CloseReason::ParseError);
}

#[tokio::test]
async fn binary_post_is_refused_under_eio4() {
    let server = TestServer::start(config()).await;
    let sid = open_polling(&server).await;
    let res = http()
        .post(server.url(&format!("EIO=4&transport=polling&sid={sid}")))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 1, 0xff, 4, 1])
        .send()
        .await
        .unwrap();
    assert_error(res, 400, 3, "Bad request").await;
    assert_eq!(server.closed(&sid).await, CloseReason::TransportError);
}

#[tokio::test]
async fn client_close_during_a_pending_get_answers_it_with_noop() {
    let server = TestServer::start(config().ping_interval(Duration::from_secs(5))).await;
    let sid = open_polling(&server).await;
    let pending = tokio::spawn({
        let url = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
        async move { http().get(url).send().await.unwrap().text().await.unwrap() }
    });
    server.pending(&sid, true, false).await;
    assert_eq!(post(&server, &sid, "1").await, (200, "ok".to_owned()));
    assert_eq!(pending.await.unwrap(), "6");
    assert_eq!(server.closed(&sid).await, CloseReason::TransportClose);
    assert_eq!(poll(&server, &sid).await.0, 400);
    server.drained().await;
}

/// The same close when the POST wins the race with the GET sent next to
/// it: the GET in flight still gets its noop (once), whichever the server
/// read first; the next request learns the session is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_answers_the_get_in_flight_with_noop_whichever_comes_first() {
    let server = TestServer::start(config().ping_interval(Duration::from_secs(5))).await;
    // The POST first, deterministically...
    let sid = open_polling(&server).await;
    assert_eq!(post(&server, &sid, "1").await, (200, "ok".to_owned()));
    assert_eq!(poll(&server, &sid).await, (200, "6".to_owned()));
    assert_eq!(poll(&server, &sid).await.0, 400, "only once");
    assert_eq!(server.closed(&sid).await, CloseReason::TransportClose);
    // ...and both at once, as the engine.io-protocol suite sends them.
    for round in 0..50 {
        let sid = open_polling(&server).await;
        let url = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
        let (get, posted) = tokio::join!(async { http().get(&url).send().await.unwrap() }, async {
            http().post(&url).body("1").send().await.unwrap()
        },);
        assert_eq!(posted.status(), 200, "round {round}");
        assert_eq!(get.status(), 200, "round {round}");
        assert_eq!(get.text().await.unwrap(), "6", "round {round}");
        let after = http().get(&url).send().await.unwrap();
        assert_error(after, 400, 1, "Session ID unknown").await;
    }
    server.drained().await;
}

#[tokio::test]
async fn a_vanished_poller_does_not_block_the_next_poll() {
    let server = TestServer::start(config().ping_interval(Duration::from_secs(5))).await;
    let sid = open_polling(&server).await;
    // A GET whose client goes away while it is pending.
    let mut gone = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let req = format!(
        "GET /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr
    );
    gone.write_all(req.as_bytes()).await.unwrap();
    server.pending(&sid, true, false).await;
    drop(gone);
    server.pending(&sid, false, false).await;
    // The next poll is not taken for a concurrent one.
    assert_eq!(post(&server, &sid, "4after").await.0, 200);
    assert_eq!(poll(&server, &sid).await, (200, "4after".to_owned()));
}

#[tokio::test]
async fn unanswered_pings_close_the_session_and_free_it() {
    let server = TestServer::start(config()).await;
    let sid = open_polling(&server).await;
    assert_eq!(poll(&server, &sid).await.1, "2");
    // no pong
    assert_eq!(server.closed(&sid).await, CloseReason::PingTimeout);
    assert_eq!(poll(&server, &sid).await.0, 400);
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn server_close_flushes_then_sends_the_close_packet() {
    let server = TestServer::start(config().ping_interval(Duration::from_secs(5))).await;
    let sid = open_polling(&server).await;
    let session = server.session(&sid);
    session
        .send(socketgate::engine::Message::text("bye"))
        .unwrap();
    session.close();
    assert!(
        session
            .send(socketgate::engine::Message::text("late"))
            .is_err()
    );
    assert_eq!(poll(&server, &sid).await.1, "4bye");
    assert_eq!(poll(&server, &sid).await.1, "1", "the close comes alone");
    assert_eq!(server.closed(&sid).await, CloseReason::ServerClose);
    server.drained().await;
}

/// A proxy that never got a poll's answer (the node between it and the
/// owner died while passing it on) resends the same request, same `t`: it
/// gets the same answer again, so nothing taken from the queue is lost. A
/// new poll (another `t`) gets what came next.
#[tokio::test]
async fn a_poll_resent_with_the_same_t_gets_the_same_answer() {
    let server = TestServer::start(config()).await;
    let sid = open_polling(&server).await;
    let get = |t: &'static str| {
        let url = server.url(&format!("EIO=4&transport=polling&sid={sid}&t={t}"));
        async move {
            let res = http().get(url).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    assert_eq!(post(&server, &sid, "4first").await.0, 200);
    assert_eq!(get("Oa1").await, (200, "4first".to_owned()));
    assert_eq!(post(&server, &sid, "4second").await.0, 200);
    assert_eq!(get("Oa1").await, (200, "4first".to_owned()), "resent");
    assert_eq!(get("Oa2").await, (200, "4second".to_owned()));
    // A poll without `t` leaves nothing to resend: the old `t` is then a
    // new poll.
    assert_eq!(post(&server, &sid, "4third").await.0, 200);
    assert_eq!(poll(&server, &sid).await, (200, "4third".to_owned()));
    assert_eq!(post(&server, &sid, "4fourth").await.0, 200);
    assert_eq!(get("Oa2").await, (200, "4fourth".to_owned()));
}
