//! The `socketgate` binary: starts with its defaults on a given address,
//! serves the demo page and the relay to the real socket.io-client, and on
//! SIGTERM tells connected clients and exits cleanly.

mod common;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn binary_serves_the_relay_and_shuts_down_on_sigterm() {
    let (mut gateway, addr, mut log) = common::spawn_gateway(&["--addr", "127.0.0.1:0"]).await;

    let index = common::http()
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
    assert!(
        index.text().await.unwrap().contains("id=\"state\""),
        "the demo page"
    );

    let mut client = Command::new("node")
        .arg(common::node_dir().join("gateway-client.mjs"))
        .arg(format!("http://{addr}"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(common::DEADLINE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap_or_default();
    assert!(first.contains("\"ready\":true"), "{first}");

    // The health route counts the client's session.
    let health = common::get_text(format!("http://{addr}/health")).await;
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["sessions"], 1, "{health}");

    common::sigterm(&gateway).await;

    let verdict = tokio::time::timeout(common::DEADLINE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&verdict).unwrap()["reason"],
        "transport close",
        "{verdict}"
    );
    let status = tokio::time::timeout(Duration::from_secs(15), gateway.wait())
        .await
        .expect("the gateway exited after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    // drain the rest of the log so we can see the clean stop
    let mut rest = Vec::new();
    while let Ok(Some(line)) = log.next_line().await {
        rest.push(line);
    }
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    assert!(client.wait().await.unwrap().success());
}

/// `gateway::serve` hands each request its peer address, as axum's
/// `ConnectInfo` would: the per-IP handshake limit sees it. The socket.io
/// path and the gateway's own routes are both served.
#[tokio::test]
async fn serve_passes_the_peer_address_to_the_engine() {
    use socketgate::engine::EngineConfig;
    use socketgate::gateway::{GatewayConfig, serve};
    use socketgate::socketio::SocketIoConfig;

    let engine = EngineConfig::default().handshakes_per_ip(Some(2));
    let config = GatewayConfig::default().io(SocketIoConfig::default().engine(engine));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, config, async move {
        let _ = stopped.await;
    }));

    let handshake = format!("http://{addr}/socket.io/?EIO=4&transport=polling");
    for _ in 0..2 {
        assert!(common::get_text(&handshake).await.starts_with("0{"));
    }
    let refused = common::http().get(&handshake).send().await.unwrap();
    common::assert_error(refused, 429, 3, "Too many handshakes").await;
    let health = common::get_text(format!("http://{addr}/health")).await;
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["sessions"], 2, "{health}");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("the gateway stopped")
        .unwrap()
        .unwrap();
}

/// `--redis-url`: two gateway processes on one Redis relay a chat between
/// their clients, and `/health` reports the bus.
#[tokio::test]
async fn two_gateways_on_redis_relay_between_their_clients() {
    let redis = common::redis::RedisServer::start().await;
    let url = redis.url();
    let (_one, addr1, _log1) =
        common::spawn_gateway(&["--addr", "127.0.0.1:0", "--redis-url", &url]).await;
    let (_two, addr2, _log2) =
        common::spawn_gateway(&["--addr", "127.0.0.1:0", "--redis-url", &url]).await;
    for addr in [&addr1, &addr2] {
        common::until_async("the bus to be up", || async {
            let health = common::get_text(format!("http://{addr}/health")).await;
            let health: serde_json::Value = serde_json::from_str(&health).unwrap();
            health["cluster"]["bus"] == "up"
        })
        .await;
    }
    let join = |addr: String| async move {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let mut ws = common::ws_connect(&url).await;
        assert!(common::ws_text(&mut ws).await.starts_with("0{"));
        common::ws_send(&mut ws, "40").await;
        assert!(common::ws_event(&mut ws).await.starts_with("40{"));
        ws
    };
    let mut c1 = join(addr1.clone()).await;
    let mut c2 = join(addr2.clone()).await;
    // Both join the same room (through the relay's rooms); chat from 1.
    for ws in [&mut c1, &mut c2] {
        common::ws_send(ws, "421[\"join\",\"lobby\"]").await;
        assert_eq!(common::ws_event(ws).await, "431[\"lobby\"]");
    }
    // Both gateways are subscribed before the chat.
    let client = redis::Client::open(url.as_str()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    common::until_async("both gateways to subscribe", || {
        let mut conn = conn.clone();
        async move {
            let counts: Vec<(String, usize)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("socket.io-request#/#")
                .query_async(&mut conn)
                .await
                .unwrap();
            counts[0].1 == 2
        }
    })
    .await;
    common::ws_send(
        &mut c1,
        "42[\"chat\",{\"room\":\"lobby\",\"text\":\"across\"}]",
    )
    .await;
    let chat = common::ws_event(&mut c2).await;
    assert!(chat.contains("\"text\":\"across\""), "{chat}");
    let health = common::get_text(format!("http://{addr1}/health")).await;
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert!(
        health["cluster"]["published"].as_u64().unwrap() >= 1,
        "{health}"
    );
    assert_eq!(health["cluster"]["malformed"], 0, "{health}");
}
