//! The gateway binary driven by a backend, through its settings: the HTTP
//! API (`--api-key`, on the main listener or `--api-addr`), the hooks
//! (`--connect-hook`, `--event-hook` with `--event-hook-events`,
//! `--disconnect-hook`, `--hook-timeout-ms`, `--hook-headers`, the relay
//! off with `--relay false`), and the relay's limits
//! (`--relay-events-per-second`, `--relay-burst`, `--max-client-rooms`).

mod common;

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

/// A raw socket.io client on the main namespace, connected with `auth`;
/// returns the CONNECT answer too.
async fn connect(addr: &str, auth: &str, headers: &[(&str, &str)]) -> (common::Ws, String) {
    let mut request = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert!(common::ws_text(&mut ws).await.starts_with("0{"));
    common::ws_send(&mut ws, &format!("40{auth}")).await;
    let answer = common::ws_event(&mut ws).await;
    (ws, answer)
}

/// The ack with id `id`, skipping other packets.
async fn ack(ws: &mut common::Ws, id: u32) -> Value {
    let prefix = format!("43{id}");
    loop {
        let packet = common::ws_event(ws).await;
        if let Some(rest) = packet.strip_prefix(&prefix) {
            return serde_json::from_str(rest).unwrap();
        }
    }
}

#[tokio::test]
async fn a_backend_publishes_through_the_api() {
    let (_gateway, addr, _log) =
        common::spawn_gateway(&["--addr", "127.0.0.1:0", "--api-key", "k1,k2"]).await;
    let (mut ws, answer) = connect(&addr, "", &[]).await;
    assert!(answer.starts_with("40{"), "{answer}");
    common::ws_send(&mut ws, r#"421["join","lobby"]"#).await;
    assert_eq!(ack(&mut ws, 1).await, json!(["lobby"]));

    let emit = |key: &'static str| {
        common::http()
            .post(format!("http://{addr}/api/emit"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(
                json!({"rooms": ["relay:lobby"], "event": "news", "args": [{"x": 1}]}).to_string(),
            )
            .send()
    };
    let res = emit("wrong").await.unwrap();
    assert_eq!(res.status(), 401);
    let res = emit("k2").await.unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(answer, json!({"result": {}}));
    assert_eq!(common::ws_event(&mut ws).await, r#"42["news",{"x":1}]"#);
    let metrics = common::get_text(format!("http://{addr}/metrics")).await;
    for line in [
        r#"socketgate_api_calls_total{endpoint="emit",status="2xx"} 1"#,
        r#"socketgate_api_calls_total{endpoint="emit",status="4xx"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }

    // Without a key the API is off.
    let (_plain, plain, _log) = common::spawn_gateway(&["--addr", "127.0.0.1:0"]).await;
    let res = common::http()
        .post(format!("http://{plain}/api/emit"))
        .bearer_auth("k1")
        .header("content-type", "application/json")
        .body(json!({"event": "news"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn the_api_can_have_a_listener_of_its_own() {
    let api_addr = free_addr();
    let (_gateway, addr, _log) = common::spawn_gateway(&[
        "--addr",
        "127.0.0.1:0",
        "--api-key",
        "k",
        "--api-addr",
        &api_addr,
    ])
    .await;
    let (mut ws, _) = connect(&addr, "", &[]).await;
    let body = json!({"event": "hello", "args": [1]});
    let emit = |on: String| {
        common::http()
            .post(format!("http://{on}/api/emit"))
            .header("x-api-key", "k")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let main = emit(addr.to_string()).await.unwrap();
    assert_eq!(main.status(), 404, "not on the public listener");
    let apart = emit(api_addr.to_string()).await.unwrap();
    assert_eq!(apart.status(), 200);
    assert_eq!(common::ws_event(&mut ws).await, r#"42["hello",1]"#);
}

#[derive(Default)]
struct Seen {
    connects: Vec<(Value, HeaderMap)>,
    events: Vec<Value>,
    disconnects: Vec<Value>,
}

type Shared = Arc<Mutex<Seen>>;

async fn backend() -> (String, Shared) {
    let seen = Shared::default();
    let app = axum::Router::new()
        .route(
            "/connect",
            post(
                |State(seen): State<Shared>, headers: HeaderMap, Json(body): Json<Value>| async move {
                    let allow = body["auth"]["token"] == "good";
                    seen.lock().unwrap().connects.push((body, headers));
                    Json(if allow {
                        json!({"allow": true, "data": {"user": "u1"}, "rooms": ["r1"]})
                    } else {
                        json!({"allow": false, "message": "nope", "data": {"why": "token"}})
                    })
                },
            ),
        )
        .route(
            "/event",
            post(|State(seen): State<Shared>, Json(body): Json<Value>| async move {
                let n = body["args"][0]["n"].clone();
                seen.lock().unwrap().events.push(body);
                Json(json!({"ack": [{"ok": true, "n": n}]}))
            }),
        )
        .route(
            "/disconnect",
            post(|State(seen): State<Shared>, Json(body): Json<Value>| async move {
                seen.lock().unwrap().disconnects.push(body);
                axum::http::StatusCode::NO_CONTENT
            }),
        )
        .with_state(seen.clone());
    let (addr, _task) = common::serve(app).await;
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn the_binary_calls_the_backend_hooks() {
    let (url, seen) = backend().await;
    let (connect_hook, event_hook, disconnect_hook) = (
        format!("{url}/connect"),
        format!("{url}/event"),
        format!("{url}/disconnect"),
    );
    let (_gateway, addr, _log) = common::spawn_gateway(&[
        "--addr",
        "127.0.0.1:0",
        "--connect-hook",
        &connect_hook,
        "--event-hook",
        &event_hook,
        "--event-hook-events",
        "order.*",
        "--disconnect-hook",
        &disconnect_hook,
        "--hook-timeout-ms",
        "2000",
        "--hook-headers",
        "cookie,x-tenant",
        "--relay",
        "false",
    ])
    .await;

    // Refused: the backend's message and data.
    let (_refused, answer) = connect(&addr, r#"{"token":"bad"}"#, &[]).await;
    let refusal: Value = serde_json::from_str(answer.strip_prefix("44").unwrap()).unwrap();
    assert_eq!(
        refusal,
        json!({"message": "nope", "data": {"why": "token"}})
    );

    // Allowed, with only the listed headers passed on.
    let headers = [
        ("cookie", "session=s1"),
        ("x-tenant", "t9"),
        ("x-secret", "never"),
    ];
    let (mut ws, answer) = connect(&addr, r#"{"token":"good"}"#, &headers).await;
    assert!(answer.starts_with("40{\"sid\":"), "{answer}");
    {
        let seen = seen.lock().unwrap();
        let (body, _) = seen.connects.last().unwrap();
        assert_eq!(body["headers"]["cookie"], "session=s1", "{body}");
        assert_eq!(body["headers"]["x-tenant"], "t9", "{body}");
        assert!(body["headers"].get("x-secret").is_none(), "{body}");
        assert_eq!(body["auth"]["token"], "good");
    }

    // A matching event goes to the backend, whose answer is the ack.
    common::ws_send(&mut ws, r#"427["order.create",{"n":3}]"#).await;
    assert_eq!(ack(&mut ws, 7).await, json!([{"ok": true, "n": 3}]));
    {
        let seen = seen.lock().unwrap();
        let event = seen.events.last().unwrap();
        assert_eq!(event["event"], "order.create", "{event}");
        assert_eq!(event["data"], json!({"user": "u1"}), "{event}");
    }
    // The relay is off: a chat goes nowhere (no ack comes, no hook call).
    common::ws_send(&mut ws, r#"428["echo","x"]"#).await;
    common::ws_send(&mut ws, r#"429["order.check",{"n":4}]"#).await;
    assert_eq!(ack(&mut ws, 9).await, json!([{"ok": true, "n": 4}]));
    assert_eq!(seen.lock().unwrap().events.len(), 2);

    // Leaving is told (best effort: it arrives here).
    drop(ws);
    common::until("the disconnect hook", || {
        !seen.lock().unwrap().disconnects.is_empty()
    })
    .await;
    assert_eq!(
        seen.lock().unwrap().disconnects[0]["data"],
        json!({"user": "u1"})
    );
}

#[tokio::test]
async fn relay_limits_come_from_the_settings() {
    let (_gateway, addr, _log) = common::spawn_gateway(&[
        "--addr",
        "127.0.0.1:0",
        "--relay-events-per-second",
        "1",
        "--relay-burst",
        "2",
        "--max-client-rooms",
        "1",
    ])
    .await;
    let (mut ws, _) = connect(&addr, "", &[]).await;
    common::ws_send(&mut ws, r#"421["join","a"]"#).await;
    assert_eq!(ack(&mut ws, 1).await, json!(["a"]));
    common::ws_send(&mut ws, r#"422["join","b"]"#).await;
    let refused = ack(&mut ws, 2).await;
    assert!(
        refused[0]["error"].as_str().unwrap().contains("rooms"),
        "{refused}"
    );
    common::ws_send(&mut ws, r#"423["echo","c"]"#).await;
    assert_eq!(ack(&mut ws, 3).await, json!([{"error": "rate limited"}]));
    let metrics = common::get_text(format!("http://{addr}/metrics")).await;
    assert!(
        metrics.contains("socketgate_relay_rate_limited_total 1"),
        "{metrics}"
    );
}

/// `--ws-compression`: a WebSocket client offering permessage-deflate gets
/// it when the setting is on, and not when it is off (the default).
#[tokio::test]
async fn ws_compression_is_negotiated_when_turned_on() {
    for (args, negotiated) in [
        (vec!["--addr", "127.0.0.1:0", "--ws-compression"], true),
        (vec!["--addr", "127.0.0.1:0"], false),
    ] {
        let (_gateway, addr, _log) = common::spawn_gateway(&args).await;
        let mut request = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits"
                .parse()
                .unwrap(),
        );
        let (_ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        let extensions = response
            .headers()
            .get("sec-websocket-extensions")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            extensions
                .as_deref()
                .is_some_and(|e| e.contains("permessage-deflate")),
            negotiated,
            "{args:?}: {extensions:?}"
        );
    }
}
