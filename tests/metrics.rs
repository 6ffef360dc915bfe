//! `GET /metrics`: after a known scenario against the gateway binary (raw
//! polling and WebSocket clients: handshakes, an upgrade, a broadcast, a
//! client that closes), the Prometheus counters have those exact values.

mod common;

use std::collections::HashMap;

/// The scrape as `name{labels}` → value.
async fn scrape(addr: &str) -> HashMap<String, f64> {
    let res = common::http()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = res.text().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(metrics: &HashMap<String, f64>, name: &str) -> f64 {
    *metrics
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in the scrape: {metrics:#?}"))
}

#[tokio::test]
async fn counters_match_a_known_scenario() {
    let (_gateway, addr, _log) = common::spawn_gateway(&["--addr", "127.0.0.1:0"]).await;
    let base = format!("http://{addr}/socket.io/?EIO=4&transport=polling");
    let before = scrape(&addr).await;
    assert_eq!(
        value(
            &before,
            r#"socketgate_handshakes_total{transport="polling"}"#
        ),
        0.0
    );

    // Two polling clients, both in the main namespace.
    let mut polling = Vec::new();
    for _ in 0..2 {
        let sid = common::handshake_sid(&base).await;
        let url = format!("{base}&sid={sid}");
        let res = common::http().post(&url).body("40").send().await.unwrap();
        assert_eq!(res.status(), 200);
        let connected = common::get_text(&url).await;
        assert!(connected.starts_with("40{"), "{connected}");
        polling.push(url);
    }
    // One WebSocket client.
    let mut ws =
        common::ws_connect(&format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await;
    assert!(common::ws_text(&mut ws).await.starts_with("0{"));
    common::ws_send(&mut ws, "40").await;
    assert!(common::ws_text(&mut ws).await.starts_with("40{"));
    // One client that starts on polling and upgrades.
    let sid = common::handshake_sid(&base).await;
    let res = common::http()
        .post(format!("{base}&sid={sid}"))
        .body("40")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        common::get_text(format!("{base}&sid={sid}"))
            .await
            .starts_with("40{")
    );
    let mut upgraded = common::ws_connect(&format!(
        "ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={sid}"
    ))
    .await;
    common::ws_send(&mut upgraded, "2probe").await;
    assert_eq!(common::ws_text(&mut upgraded).await, "3probe");
    common::ws_send(&mut upgraded, "5").await;

    // A chat to everyone: one broadcast to the four sockets.
    common::ws_send(&mut ws, r#"42["chat",{"text":"hi"}]"#).await;
    assert!(common::ws_event(&mut ws).await.starts_with(r#"42["chat""#));
    assert!(
        common::ws_event(&mut upgraded)
            .await
            .starts_with(r#"42["chat""#)
    );
    for url in &polling {
        assert!(common::get_text(url).await.starts_with(r#"42["chat""#));
    }

    // The WebSocket client leaves.
    drop(ws);
    common::until_async("the close is counted", || async {
        scrape(&addr)
            .await
            .get(r#"socketgate_disconnects_total{reason="transport close"}"#)
            == Some(&1.0)
    })
    .await;

    let m = scrape(&addr).await;
    assert_eq!(
        value(&m, r#"socketgate_handshakes_total{transport="polling"}"#),
        3.0
    );
    assert_eq!(
        value(&m, r#"socketgate_handshakes_total{transport="websocket"}"#),
        1.0
    );
    assert_eq!(value(&m, "socketgate_upgrades_total"), 1.0);
    assert_eq!(
        value(&m, r#"socketgate_sessions{transport="polling"}"#),
        2.0
    );
    assert_eq!(
        value(&m, r#"socketgate_sessions{transport="websocket"}"#),
        1.0
    );
    // Four CONNECTs and the chat.
    assert_eq!(value(&m, "socketgate_messages_in_total"), 5.0);
    assert_eq!(value(&m, "socketgate_broadcasts_total"), 1.0);
    assert_eq!(value(&m, "socketgate_broadcast_deliveries_total"), 4.0);
    assert_eq!(
        value(&m, r#"socketgate_disconnects_total{reason="ping timeout"}"#),
        0.0
    );
    assert!(value(&m, "socketgate_frames_out_total") >= 4.0);
    assert!(value(&m, "socketgate_bytes_out_total") > 0.0);
    assert!(value(&m, "socketgate_bytes_in_total") > 0.0);
    // Labels come from bounded sets only: no event names or ids.
    assert!(
        m.keys().all(|k| !k.contains("chat") && !k.contains(&sid)),
        "{m:#?}"
    );
}
