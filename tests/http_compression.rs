//! Polling answers of 1024 bytes or more are compressed (gzip, else
//! deflate) for clients that accept it, and only for them; smaller answers
//! and `--http-compression false` stay plain; socket.io-client polling with
//! a compressing client (Node's fetch) works.

mod common;

use std::io::Read;

use common::{TestServer, config, http, open_polling, post};

async fn get(server: &TestServer, sid: &str, accept: Option<&str>) -> reqwest::Response {
    let mut req = http().get(server.url(&format!("EIO=4&transport=polling&sid={sid}")));
    if let Some(accept) = accept {
        req = req.header("accept-encoding", accept);
    }
    req.send().await.unwrap()
}

fn big() -> String {
    format!("4{}", "a".repeat(3000))
}

#[tokio::test]
async fn large_answers_are_compressed_for_clients_that_accept_it() {
    let server = TestServer::start(config()).await;
    let sid = open_polling(&server).await;
    for (accept, coding) in [
        (Some("gzip, deflate, br"), Some("gzip")),
        (Some("deflate"), Some("deflate")),
        (Some("gzip;q=0, deflate"), Some("deflate")),
        (Some("br"), None),
        (None, None),
    ] {
        assert_eq!(post(&server, &sid, big()).await.0, 200);
        let res = get(&server, &sid, accept).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["vary"], "Accept-Encoding");
        let got = res
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(got.as_deref(), coding, "{accept:?}");
        let body = res.bytes().await.unwrap();
        let mut text = String::new();
        match coding {
            Some("gzip") => {
                assert!(
                    body.len() < 500,
                    "gzip'ed 3 KB of one letter: {}",
                    body.len()
                );
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_string(&mut text)
                    .unwrap();
            }
            Some(_) => {
                flate2::read::ZlibDecoder::new(&body[..])
                    .read_to_string(&mut text)
                    .unwrap();
            }
            None => text = String::from_utf8(body.to_vec()).unwrap(),
        }
        assert_eq!(text, big(), "{accept:?}");
    }
    // Below the threshold: plain, whatever the client accepts.
    assert_eq!(post(&server, &sid, "4small").await.0, 200);
    let res = get(&server, &sid, Some("gzip")).await;
    assert!(res.headers().get("content-encoding").is_none());
    assert_eq!(res.text().await.unwrap(), "4small");
    assert_eq!(server.engine.stats().compressed_answers, 3);
}

#[tokio::test]
async fn compression_can_be_turned_off() {
    let server = TestServer::start(config().http_compression(false)).await;
    let sid = open_polling(&server).await;
    assert_eq!(post(&server, &sid, big()).await.0, 200);
    let res = get(&server, &sid, Some("gzip")).await;
    assert!(res.headers().get("content-encoding").is_none());
    assert_eq!(res.text().await.unwrap(), big());
    assert_eq!(server.engine.stats().compressed_answers, 0);
}

#[tokio::test]
async fn socket_io_client_polls_compressed_answers() {
    let (_gateway, addr, _log) = common::spawn_gateway(&["--addr", "127.0.0.1:0"]).await;
    let verdict = common::run_node("compression-client.mjs", &[&format!("http://{addr}")]).await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["transport"], "polling", "{verdict}");
    let metrics = common::get_text(format!("http://{addr}/metrics")).await;
    let compressed: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("socketgate_polling_compressed_total "))
        .expect("the counter")
        .parse()
        .unwrap();
    assert!(
        compressed >= 2.0,
        "the large echoes came back compressed: {compressed}"
    );
    // Off: the same client, nothing compressed.
    let (_plain, addr, _log) =
        common::spawn_gateway(&["--addr", "127.0.0.1:0", "--http-compression", "false"]).await;
    let verdict = common::run_node("compression-client.mjs", &[&format!("http://{addr}")]).await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    let metrics = common::get_text(format!("http://{addr}/metrics")).await;
    assert!(
        metrics.contains("socketgate_polling_compressed_total 0"),
        "{metrics}"
    );
}
