//! JSONP polling (`j=N`) for both protocol revisions: script-wrapped
//! answers, form-encoded POST bodies, the same limits as XHR polling.

mod common;

use common::{TestServer, config, http};
use socketgate::engine::CloseReason;

/// The JSON string inside `___eio[N]("…");`.
fn unwrap_script(index: u32, script: &str) -> String {
    let inner = script
        .strip_prefix(&format!("___eio[{index}]("))
        .and_then(|s| s.strip_suffix(");"))
        .unwrap_or_else(|| panic!("not a JSONP answer: {script}"));
    serde_json::from_str(inner).unwrap()
}

async fn get(server: &TestServer, query: &str, index: u32) -> (u16, String) {
    let res = http()
        .get(server.url(&format!("{query}&j={index}")))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        assert_eq!(
            res.headers()["content-type"],
            "text/javascript; charset=UTF-8"
        );
    }
    (status, res.text().await.unwrap())
}

async fn post(server: &TestServer, query: &str, index: u32, payload: &str) -> u16 {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("d", payload)
        .finish();
    let res = http()
        .post(server.url(&format!("{query}&j={index}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        assert_eq!(res.text().await.unwrap(), "ok");
    }
    status
}

#[tokio::test]
async fn a_whole_jsonp_session_over_eio4() {
    let server = TestServer::start(config()).await;
    let (status, script) = get(&server, "EIO=4&transport=polling", 0).await;
    assert_eq!(status, 200);
    let sid = common::sid_of(&unwrap_script(0, &script));
    let q = format!("EIO=4&transport=polling&sid={sid}");

    // quotes, backslashes, a line separator and binary survive the trip
    assert_eq!(
        post(&server, &q, 0, "4say \"hi\" \\ \u{2028}\u{1e}bAQID").await,
        200
    );
    let (_, script) = get(&server, &q, 0).await;
    assert!(
        !script.contains('\u{2028}'),
        "U+2028 must be escaped in a script"
    );
    assert_eq!(
        unwrap_script(0, &script),
        "4say \"hi\" \\ \u{2028}\u{1e}bAQID"
    );

    assert_eq!(post(&server, &q, 0, "1").await, 200);
    assert_eq!(server.closed(&sid).await, CloseReason::TransportClose);
    // The GET a client may have had in flight gets the noop, once, in the
    // JSONP framing; then the session is unknown.
    let (status, script) = get(&server, &q, 0).await;
    assert_eq!((status, unwrap_script(0, &script)), (200, "6".to_owned()));
    assert_eq!(get(&server, &q, 0).await.0, 400);
}

#[tokio::test]
async fn a_whole_jsonp_session_over_eio3() {
    let server = TestServer::start(config().allow_eio3(true)).await;
    let (_, script) = get(&server, "EIO=3&transport=polling", 7).await;
    let payload = unwrap_script(7, &script);
    let (_, open) = payload.split_once(':').unwrap();
    let sid = common::sid_of(open);
    let q = format!("EIO=3&transport=polling&sid={sid}");

    assert_eq!(post(&server, &q, 7, "6:4hello10:b4AQIDBA==").await, 200);
    // JSONP clients cannot take binary payloads: base64 it is
    let (_, script) = get(&server, &q, 7).await;
    assert_eq!(unwrap_script(7, &script), "6:4hello10:b4AQIDBA==");
    // the client pings, the server answers
    assert_eq!(post(&server, &q, 7, "1:2").await, 200);
    assert_eq!(unwrap_script(7, &get(&server, &q, 7).await.1), "1:3");

    assert_eq!(post(&server, &q, 7, "1:1").await, 200);
    assert_eq!(server.closed(&sid).await, CloseReason::TransportClose);
}

#[tokio::test]
async fn jsonp_posts_have_the_same_limits_and_checks() {
    let server = TestServer::start(config().max_payload(100)).await;
    let (_, script) = get(&server, "EIO=4&transport=polling", 0).await;
    let sid = common::sid_of(&unwrap_script(0, &script));
    let q = format!("EIO=4&transport=polling&sid={sid}");
    // the form-encoded body is what is limited
    assert_eq!(post(&server, &q, 0, &"x".repeat(200)).await, 413);
    assert_eq!(server.closed(&sid).await, CloseReason::PayloadTooLarge);

    let (_, script) = get(&server, "EIO=4&transport=polling", 0).await;
    let sid = common::sid_of(&unwrap_script(0, &script));
    let q = format!("EIO=4&transport=polling&sid={sid}");
    // a body without the `d` field is a parse error
    let res = http()
        .post(server.url(&format!("{q}&j=0")))
        .body("x=4hello")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(server.closed(&sid).await, CloseReason::ParseError);

    // a callback index that is not a number is refused
    let res = http()
        .get(server.url("EIO=4&transport=polling&j=alert(1)"))
        .send()
        .await
        .unwrap();
    common::assert_error(res, 400, 3, "Bad request").await;
}
