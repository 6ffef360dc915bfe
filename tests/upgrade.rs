//! Upgrade from polling to WebSocket: probe, noop to the pending poll,
//! nothing lost or duplicated, and what is refused afterwards.

mod common;

use std::time::Duration;

use common::{
    TestServer, config, http, open_polling, poll, post, ws_close_code, ws_close_frame, ws_connect,
    ws_next, ws_send, ws_text,
};
use socketgate::engine::{Message, TransportKind};

/// A WebSocket for polling session `sid`, not yet probed.
async fn attach(server: &TestServer, sid: &str) -> common::Ws {
    ws_connect(&server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}"))).await
}

/// Probes and completes the upgrade of session `sid` on `ws`.
async fn finish_upgrade(server: &TestServer, sid: &str, ws: &mut common::Ws) {
    ws_send(ws, "2probe").await;
    assert_eq!(ws_text(ws).await, "3probe");
    ws_send(ws, "5").await;
    common::until("upgrade", || {
        server.session(sid).transport() == TransportKind::WebSocket
    })
    .await;
}

/// A new WebSocket that completed the upgrade of session `sid`.
async fn upgrade(server: &TestServer, sid: &str) -> common::Ws {
    let mut ws = attach(server, sid).await;
    finish_upgrade(server, sid, &mut ws).await;
    ws
}

fn quiet() -> socketgate::EngineConfig {
    // No ping in the middle of the exchanges below.
    config().ping_interval(Duration::from_secs(5))
}

#[tokio::test]
async fn a_message_queued_during_the_upgrade_arrives_once_on_the_websocket() {
    let server = TestServer::start(quiet()).await;
    let sid = open_polling(&server).await;
    let pending = tokio::spawn({
        let url = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
        async move { http().get(url).send().await.unwrap().text().await.unwrap() }
    });
    server.pending(&sid, true, false).await;

    let mut ws = attach(&server, &sid).await;
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    // the pending poll ends with a noop so the client can pause polling
    assert_eq!(pending.await.unwrap(), "6");

    // While upgrading, the client may still POST; the echo is queued...
    assert_eq!(post(&server, &sid, "4during").await.0, 200);
    server
        .session(&sid)
        .send(Message::text("from server"))
        .unwrap();
    // ...and a poll now gets only a noop, never the queued data.
    assert_eq!(poll(&server, &sid).await.1, "6");

    ws_send(&mut ws, "5").await;
    assert_eq!(ws_text(&mut ws).await, "4during");
    assert_eq!(ws_text(&mut ws).await, "4from server");
    assert_eq!(server.session(&sid).transport(), TransportKind::WebSocket);

    ws_send(&mut ws, "4after").await;
    assert_eq!(
        ws_text(&mut ws).await,
        "4after",
        "nothing duplicated in between"
    );
}

#[tokio::test]
async fn probe_and_upgrade_may_arrive_back_to_back() {
    let server = TestServer::start(quiet()).await;
    let sid = open_polling(&server).await;
    let mut ws = attach(&server, &sid).await;
    ws_send(&mut ws, "2probe").await;
    ws_send(&mut ws, "5").await;
    ws_send(&mut ws, "4hello").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    assert_eq!(ws_text(&mut ws).await, "4hello");
}

#[tokio::test]
async fn polling_after_the_upgrade_is_a_bad_request() {
    let server = TestServer::start(quiet()).await;
    let sid = open_polling(&server).await;
    let mut ws = upgrade(&server, &sid).await;

    let res = http()
        .get(server.url(&format!("EIO=4&transport=polling&sid={sid}")))
        .send()
        .await
        .unwrap();
    common::assert_error(res, 400, 3, "Bad request").await;
    let res = http()
        .post(server.url(&format!("EIO=4&transport=polling&sid={sid}")))
        .body("4x")
        .send()
        .await
        .unwrap();
    common::assert_error(res, 400, 3, "Bad request").await;
    // the session itself is fine
    ws_send(&mut ws, "4hello").await;
    assert_eq!(ws_text(&mut ws).await, "4hello");
}

#[tokio::test]
async fn a_second_websocket_for_the_session_is_accepted_then_closed() {
    // As the reference server does: the handshake completes (101), then
    // the new WebSocket gets a close frame without a status code.
    let server = TestServer::start(quiet()).await;
    let sid = open_polling(&server).await;
    let url = server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}"));
    let mut ws = ws_connect(&url).await;
    // while the first one is upgrading...
    let mut second = ws_connect(&url).await;
    assert_eq!(ws_close_frame(&mut second).await, Ok(None));
    finish_upgrade(&server, &sid, &mut ws).await;
    // ...and after it completed
    let mut third = ws_connect(&url).await;
    assert_eq!(ws_close_frame(&mut third).await, Ok(None));
    assert_eq!(server.session(&sid).transport(), TransportKind::WebSocket);
    ws_send(&mut ws, "4hello").await;
    assert_eq!(ws_text(&mut ws).await, "4hello");
}

#[tokio::test]
async fn a_second_websocket_right_after_the_upgrade_packet_is_closed() {
    // engine.io-protocol "ignores WebSocket connection with same sid after
    // upgrade": the second WebSocket comes before the `5` is awaited.
    let server = TestServer::start(quiet()).await;
    let sid = open_polling(&server).await;
    let url = server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}"));
    let mut ws = ws_connect(&url).await;
    ws_send(&mut ws, "2probe").await;
    ws_send(&mut ws, "5").await;
    let mut second = ws_connect(&url).await;
    assert_eq!(ws_close_frame(&mut second).await, Ok(None));
    assert_eq!(ws_text(&mut ws).await, "3probe");
    ws_send(&mut ws, "4hello").await;
    assert_eq!(ws_text(&mut ws).await, "4hello");
}

/// The status and body of a polling request for `sid` on `client`.
async fn polling_request(
    client: &reqwest::Client,
    server: &TestServer,
    sid: &str,
    post: bool,
) -> (u16, String) {
    let url = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    let req = if post {
        client.post(url).body("4late")
    } else {
        client.get(url)
    };
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_request_sent_right_after_the_upgrade_packet_is_a_bad_request() {
    // The `5` and the request race to the server; the request must get the
    // answer it gets once the upgrade has settled, whichever is read first.
    let server = TestServer::start(quiet()).await;
    // One client throughout: its pooled connection makes the request as
    // fast as it can be, the hardest case for the server.
    let client = http();
    let bad_request = r#"{"code":3,"message":"Bad request"}"#;
    for (round, post) in (0..50)
        .map(|r| (r, false))
        .chain((0..20).map(|r| (r, true)))
    {
        let open = client
            .get(server.url("EIO=4&transport=polling"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let sid = common::sid_of(&open);
        let mut ws = attach(&server, &sid).await;
        ws_send(&mut ws, "2probe").await;
        assert_eq!(ws_text(&mut ws).await, "3probe");
        ws_send(&mut ws, "5").await;
        let (status, body) = polling_request(&client, &server, &sid, post).await;
        assert_eq!(
            (status, body.as_str()),
            (400, bad_request),
            "round {round}, post: {post}"
        );
        ws_send(&mut ws, "4still there").await;
        assert_eq!(ws_text(&mut ws).await, "4still there");
    }
}

#[tokio::test]
async fn another_packet_during_the_upgrade_closes_only_the_new_transport() {
    let server = TestServer::start(quiet()).await;
    let sid = open_polling(&server).await;
    let mut ws = attach(&server, &sid).await;
    ws_send(&mut ws, "4too early").await;
    assert_eq!(ws_next(&mut ws).await, None, "the new WebSocket is closed");
    // polling goes on
    assert_eq!(post(&server, &sid, "4still polling").await.0, 200);
    assert_eq!(poll(&server, &sid).await.1, "4still polling");
    assert_eq!(server.session(&sid).transport(), TransportKind::Polling);

    // 5 before the probe is refused the same way
    let mut ws = attach(&server, &sid).await;
    ws_send(&mut ws, "5").await;
    assert_eq!(ws_next(&mut ws).await, None);
    assert_eq!(server.session(&sid).transport(), TransportKind::Polling);
}

#[tokio::test]
async fn the_upgrade_gives_up_after_upgrade_timeout() {
    let server = TestServer::start(quiet().upgrade_timeout(Duration::from_millis(200))).await;
    let sid = open_polling(&server).await;
    let mut ws = attach(&server, &sid).await;
    // say nothing: the server closes the new WebSocket
    ws_close_code(&mut ws).await;
    assert_eq!(post(&server, &sid, "4still polling").await.0, 200);
    assert_eq!(poll(&server, &sid).await.1, "4still polling");
    // and a later upgrade may succeed
    let mut ws = upgrade(&server, &sid).await;
    ws_send(&mut ws, "4upgraded").await;
    assert_eq!(ws_text(&mut ws).await, "4upgraded");
}

#[tokio::test]
async fn heartbeat_continues_across_the_upgrade() {
    let server = TestServer::start(config()).await;
    let sid = open_polling(&server).await;
    let mut ws = upgrade(&server, &sid).await;
    // three pings answered over the WebSocket keep the session open
    for _ in 0..3 {
        assert_eq!(ws_text(&mut ws).await, "2");
        ws_send(&mut ws, "3").await;
    }
    assert!(!server.session(&sid).is_closed());
}
