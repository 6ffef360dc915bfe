//! Handshakes over both transports, and every engine.io error answer.

mod common;

use common::{TestServer, assert_error, config, http, open_polling, ws_connect, ws_text};
use socketgate::engine::Transports;
use tokio_tungstenite::tungstenite::Error as WsError;

#[tokio::test]
async fn polling_handshake_answers_the_open_packet() {
    let server = TestServer::start(config()).await;
    let res = common::get_ok(server.url("EIO=4&transport=polling")).await;
    assert_eq!(res.headers()["content-type"], "text/plain; charset=UTF-8");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = res.text().await.unwrap();
    let open: serde_json::Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
    let keys: Vec<&str> = open
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 5, "{open}");
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(open["pingInterval"], 300);
    assert_eq!(open["pingTimeout"], 200);
    assert_eq!(open["maxPayload"], 1_000_000);
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(sid.len(), 24);
    assert_eq!(server.engine.session_count(), 1);
}

#[tokio::test]
async fn websocket_handshake_sends_the_open_packet_first() {
    let server = TestServer::start(config()).await;
    let mut ws = ws_connect(&server.ws_url("EIO=4&transport=websocket")).await;
    let text = ws_text(&mut ws).await;
    let open: serde_json::Value = serde_json::from_str(text.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], serde_json::json!([]));
    assert_eq!(open["pingInterval"], 300);
}

#[tokio::test]
async fn without_websocket_the_handshake_offers_no_upgrade() {
    let cfg = config().transports(Transports {
        polling: true,
        websocket: false,
    });
    let server = TestServer::start(cfg).await;
    let res = http()
        .get(server.url("EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains(r#""upgrades":[]"#), "{body}");
    // and the disabled transport is unknown (code 0)
    let res = http()
        .get(server.url("EIO=4&transport=websocket"))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, 0, "Transport unknown").await;
}

#[tokio::test]
async fn code_0_transport_unknown() {
    let server = TestServer::start(config()).await;
    for q in ["EIO=4", "EIO=4&transport=abc", "EIO=4&transport="] {
        let res = http().get(server.url(q)).send().await.unwrap();
        assert_error(res, 400, 0, "Transport unknown").await;
    }
}

#[tokio::test]
async fn code_1_session_id_unknown() {
    let server = TestServer::start(config()).await;
    let unknown = "AAAAAAAAAAAAAAAAAAAAAAAA";
    for q in [
        format!("EIO=4&transport=polling&sid={unknown}"),
        "EIO=4&transport=polling&sid=not-a-sid".to_owned(),
    ] {
        let res = http().get(server.url(&q)).send().await.unwrap();
        assert_error(res, 400, 1, "Session ID unknown").await;
        let res = http().post(server.url(&q)).body("4x").send().await.unwrap();
        assert_error(res, 400, 1, "Session ID unknown").await;
    }
    let err = tokio_tungstenite::connect_async(
        server.ws_url(&format!("EIO=4&transport=websocket&sid={unknown}")),
    )
    .await
    .unwrap_err();
    match err {
        WsError::Http(res) => assert_eq!(res.status(), 400),
        e => panic!("expected an HTTP refusal, got {e}"),
    }
}

#[tokio::test]
async fn code_2_bad_handshake_method() {
    let server = TestServer::start(config()).await;
    let res = http()
        .post(server.url("EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, 2, "Bad handshake method").await;
    let res = http()
        .put(server.url("EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, 2, "Bad handshake method").await;
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn code_3_bad_request() {
    let server = TestServer::start(config()).await;
    // a plain GET asking for the WebSocket transport
    let res = http()
        .get(server.url("EIO=4&transport=websocket"))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, 3, "Bad request").await;
    // a polling request for a session that is on WebSocket
    let (mut ws, sid) = common::open_ws(&server).await;
    let res = http()
        .get(server.url(&format!("EIO=4&transport=polling&sid={sid}")))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, 3, "Bad request").await;
    // an Origin header that is not an origin
    let res = http()
        .get(server.url("EIO=4&transport=polling"))
        .header("origin", "http://a b")
        .send()
        .await
        .unwrap();
    assert_error(res, 400, 3, "Bad request").await;
    // the WebSocket session is untouched by all this
    common::ws_send(&mut ws, "4still here").await;
    assert_eq!(ws_text(&mut ws).await, "4still here");
}

#[tokio::test]
async fn code_4_forbidden_origin() {
    let server = TestServer::start(config()).await;
    let res = http()
        .get(server.url("EIO=4&transport=polling"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_error(res, 403, 4, "Forbidden").await;
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn code_5_unsupported_protocol_version() {
    let server = TestServer::start(config()).await;
    for q in [
        "transport=polling",
        "EIO=abc&transport=polling",
        "EIO=3&transport=polling",
        "EIO=5&transport=polling",
    ] {
        let res = http().get(server.url(q)).send().await.unwrap();
        assert_error(res, 400, 5, "Unsupported protocol version").await;
    }
    let err = tokio_tungstenite::connect_async(server.ws_url("EIO=3&transport=websocket"))
        .await
        .unwrap_err();
    match err {
        WsError::Http(res) => assert_eq!(res.status(), 400),
        e => panic!("expected an HTTP refusal, got {e}"),
    }
    // a valid handshake still works afterwards
    open_polling(&server).await;
}
