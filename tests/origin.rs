//! The allowed-origins policy on polling and WebSocket handshakes, and the
//! CORS answers it drives.

mod common;

use common::{TestServer, assert_error, config, http, open_polling};
use socketgate::AllowedOrigins;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn ws_with_origin(server: &TestServer, origin: &str) -> Result<u16, u16> {
    let mut req = server
        .ws_url("EIO=4&transport=websocket")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, res)) => Ok(res.status().as_u16()),
        Err(WsError::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn cross_site_websocket_hijacking_is_refused_by_default() {
    let server = TestServer::start(config()).await;
    assert_eq!(
        ws_with_origin(&server, "https://evil.example").await,
        Err(403)
    );
    assert_eq!(ws_with_origin(&server, "null").await, Err(403));
    // the page's own origin is welcome
    let own = format!("http://{}", server.addr);
    assert_eq!(ws_with_origin(&server, &own).await, Ok(101));
    assert_eq!(server.engine.session_count(), 1);
}

#[tokio::test]
async fn polling_from_a_foreign_origin_is_refused_by_default() {
    let server = TestServer::start(config()).await;
    let res = http()
        .get(server.url("EIO=4&transport=polling"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert_error(res, 403, 4, "Forbidden").await;
    // an existing session cannot be driven from a foreign page either
    let sid = open_polling(&server).await;
    let res = http()
        .post(server.url(&format!("EIO=4&transport=polling&sid={sid}")))
        .header("origin", "https://evil.example")
        .body("4x")
        .send()
        .await
        .unwrap();
    assert_error(res, 403, 4, "Forbidden").await;
}

#[tokio::test]
async fn listed_origins_pass_and_get_cors_headers() {
    let app = "http://app.example:8080";
    let server = TestServer::start(config().allowed_origins(AllowedOrigins::list([app]))).await;
    assert_eq!(ws_with_origin(&server, app).await, Ok(101));
    assert_eq!(
        ws_with_origin(&server, "http://app.example:8081").await,
        Err(403)
    );

    // preflight
    let res = http()
        .request(
            reqwest::Method::OPTIONS,
            server.url("EIO=4&transport=polling"),
        )
        .header("origin", app)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], app);
    assert_eq!(h["access-control-allow-credentials"], "true");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("GET") && methods.contains("POST"),
        "{methods}"
    );
    assert_eq!(h["access-control-allow-headers"], "content-type");

    // the actual request
    let res = http()
        .get(server.url("EIO=4&transport=polling"))
        .header("origin", app)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], app);
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    let vary = res.headers()["vary"].to_str().unwrap().to_owned();
    assert!(vary.contains("origin"), "{vary}");
    assert!(res.text().await.unwrap().starts_with("0{"));
}

#[tokio::test]
async fn wildcard_allows_every_origin() {
    let server = TestServer::start(config().allowed_origins(AllowedOrigins::list(["*"]))).await;
    assert_eq!(
        ws_with_origin(&server, "https://anywhere.example").await,
        Ok(101)
    );
    let res = http()
        .get(server.url("EIO=4&transport=polling"))
        .header("origin", "https://anywhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://anywhere.example"
    );
}

#[tokio::test]
async fn clients_without_an_origin_header_pass() {
    let server = TestServer::start(config()).await;
    open_polling(&server).await;
    common::ws_connect(&server.ws_url("EIO=4&transport=websocket")).await;
    // Not a cross-origin browser request: no CORS headers to compute.
    let res = common::get_ok(server.url("EIO=4&transport=polling")).await;
    let cors: Vec<_> = res
        .headers()
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-") || *k == "vary")
        .collect();
    assert!(cors.is_empty(), "{cors:?}");
}
