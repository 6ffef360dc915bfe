//! The engine mounted in an axum application: the app's routes and the
//! engine both answer, on one listener.

mod common;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use common::{TestServer, config, http, open_polling, poll, post};
use socketgate::engine::{CloseReason, Engine, EngineHandler, Message, Session};
use socketgate::{EngineLayer, EngineService};
use tower::Layer;

#[tokio::test]
async fn router_with_layer_serves_routes_and_engine() {
    // TestServer mounts the engine with `Router::layer` next to `/hello`.
    let server = TestServer::start(config()).await;
    let res = http()
        .get(format!("http://{}/hello", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "hello from axum");
    let res = http()
        .get(format!("http://{}/missing", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let sid = open_polling(&server).await;
    assert_eq!(post(&server, &sid, "4ping-pong").await.0, 200);
    assert_eq!(poll(&server, &sid).await.1, "4ping-pong");
    // the path without its trailing slash reaches the engine too
    let res = http()
        .get(format!(
            "http://{}/engine.io?EIO=4&transport=polling",
            server.addr
        ))
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().starts_with("0{"));
}

struct Upper;

impl EngineHandler for Upper {
    fn on_open(&self, _: &Session) {}
    fn on_message(&self, session: &Session, message: Message) {
        if let Some(text) = message.as_text() {
            let _ = session.send(Message::text(text.to_uppercase()));
        }
    }
    fn on_close(&self, _: &Session, _: CloseReason) {}
}

#[tokio::test]
async fn layer_wrapping_a_whole_router_and_a_standalone_engine() {
    let engine = Engine::new(socketgate::EngineConfig::default(), Upper);
    let router = Router::new().route("/", get(|| async { "index" }));
    let app = EngineLayer::new(engine.clone()).layer(router);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let make = axum::ServiceExt::<http::Request<axum::body::Body>>::into_make_service_with_connect_info::<SocketAddr>(app);
        axum::serve(listener, make).await.unwrap();
    });
    let base = format!("http://{addr}");
    assert_eq!(
        http()
            .get(&base)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "index"
    );
    let sid = common::handshake_sid(format!("{base}/socket.io/?EIO=4&transport=polling")).await;
    let url = format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(
        http()
            .post(&url)
            .body("4shout")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http().get(&url).send().await.unwrap().text().await.unwrap(),
        "4SHOUT"
    );
    // the client's address reached the session
    let session = engine
        .session(&socketgate::engine::Sid::parse(&sid).unwrap())
        .unwrap();
    assert_eq!(
        session.request().remote_addr.map(|a| a.ip()),
        Some(addr.ip())
    );
    task.abort();

    // standalone: the engine alone, 404 elsewhere
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = EngineService::standalone(Engine::new(socketgate::EngineConfig::default(), Upper));
    let task = tokio::spawn(async move {
        let make = axum::ServiceExt::<http::Request<axum::body::Body>>::into_make_service(svc);
        axum::serve(listener, make).await.unwrap();
    });
    let res = http().get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = http()
        .get(format!("http://{addr}/socket.io/?EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    task.abort();
}
