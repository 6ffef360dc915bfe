//! The nodes of a cluster as the gateway binary runs them: ids claimed in
//! Redis and carried in session ids, requests for another node's session
//! forwarded to it (with the cluster secret), the advertised address, and
//! readiness during a shutdown.

mod common;

use std::process::Stdio;

use serde_json::Value;
use socketgate::engine::Sid;

async fn health(addr: &str) -> Value {
    let text = common::get_text(format!("http://{addr}/health")).await;
    serde_json::from_str(&text).unwrap()
}

fn url(addr: &str, query: &str) -> String {
    format!("http://{addr}/socket.io/?EIO=4&transport=polling{query}")
}

/// A node of a cluster on `redis`, with the secret in the environment
/// (the way the README recommends giving it).
async fn node(redis: &str, secret: &str, extra: &[&str]) -> (tokio::process::Child, String) {
    let mut args = vec!["--addr", "127.0.0.1:0", "--redis-url", redis];
    args.extend_from_slice(extra);
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_socketgate"));
    cmd.args(&args)
        .env("SOCKETGATE_CLUSTER_SECRET", secret)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("the socketgate binary runs");
    let addr = common::listening(&mut child, "http").await;
    (child, addr)
}

/// Opens a session on `owner` and connects the main namespace.
async fn session_on(owner: &str) -> String {
    let sid = common::handshake_sid(url(owner, "")).await;
    let res = common::http()
        .post(url(owner, &format!("&sid={sid}")))
        .body("40")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    sid
}

#[tokio::test]
async fn a_node_claims_its_id_and_a_taken_id_is_refused() {
    let redis = common::redis::RedisServer::start().await;
    let (_a, a) = node(&redis.url(), "s", &["--node-id", "7"]).await;
    assert_eq!(health(&a).await["node_id"], 7);
    let sid = common::handshake_sid(url(&a, "")).await;
    assert_eq!(
        Sid::parse(&sid).unwrap().node(),
        7,
        "the sid names its node"
    );

    // A second node asking for the same id does not start.
    let out = tokio::time::timeout(
        common::DEADLINE,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_socketgate"))
            .args(["--addr", "127.0.0.1:0", "--redis-url", &redis.url()])
            .args(["--node-id", "7"])
            .env("NO_COLOR", "1")
            .output(),
    )
    .await
    .expect("the second node exits")
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("node id 7 is taken"), "{stderr}");

    // Without --node-id, nodes pick distinct free ids.
    let (_b, b) = node(&redis.url(), "s", &[]).await;
    let (_c, c) = node(&redis.url(), "s", &[]).await;
    let mut ids = Vec::new();
    for addr in [&a, &b, &c] {
        ids.push(health(addr).await["node_id"].as_u64().unwrap());
    }
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    // And each sees the others.
    common::until_async("every node sees three", || async {
        health(&b).await["cluster"]["nodes"]["alive"] == 3
    })
    .await;
}

#[tokio::test]
async fn any_node_serves_a_session_and_a_dead_owner_means_code_1() {
    let redis = common::redis::RedisServer::start().await;
    let (mut a, owner) = node(&redis.url(), "shared", &[]).await;
    let (_b, other) = node(&redis.url(), "shared", &[]).await;

    // Opened on A, polled through B: the CONNECT answer comes back.
    let sid = session_on(&owner).await;
    let body = common::get_text(url(&other, &format!("&sid={sid}"))).await;
    assert!(body.starts_with("40{\"sid\":"), "{body}");
    // A POST through B reaches the session on A: the relay echoes.
    let res = common::http()
        .post(url(&other, &format!("&sid={sid}")))
        .body(r#"42["echo","hi"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
    let body = common::get_text(url(&other, &format!("&sid={sid}"))).await;
    assert_eq!(body, r#"42["echo","hi"]"#);
    let (hb, ha) = (health(&other).await, health(&owner).await);
    assert!(hb["routing"]["forwarded"].as_u64().unwrap() >= 3, "{hb}");
    assert!(
        ha["routing"]["served_forwarded"].as_u64().unwrap() >= 3,
        "{ha}"
    );

    // The owner dies: its sessions are unknown everywhere, and the client
    // re-handshakes.
    a.start_kill().unwrap();
    a.wait().await.unwrap();
    let res = common::http()
        .get(url(&other, &format!("&sid={sid}")))
        .send()
        .await
        .unwrap();
    common::assert_error(res, 400, 1, "Session ID unknown").await;
    let hb = health(&other).await;
    assert!(
        hb["routing"]["forward_failures"].as_u64().unwrap()
            + hb["routing"]["owner_unknown"].as_u64().unwrap()
            >= 1,
        "{hb}"
    );
    // Its record goes with it (the others stop routing to it).
    common::until_async("the dead node is noticed", || async {
        health(&other).await["cluster"]["nodes"]["alive"] == 1
    })
    .await;
}

/// `--advertise-addr` is where the other nodes forward to: a node that
/// advertises an address nobody listens on cannot be reached, and clients
/// of its sessions that come through another node are told to start over.
#[tokio::test]
async fn other_nodes_forward_to_the_advertised_address() {
    let redis = common::redis::RedisServer::start().await;
    let dead_end = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = dead_end.local_addr().unwrap().to_string();
    drop(dead_end);
    let (_a, owner) = node(&redis.url(), "k", &["--advertise-addr", &nowhere]).await;
    let (_b, other) = node(&redis.url(), "k", &[]).await;
    let sid = session_on(&owner).await;
    let res = common::http()
        .get(url(&other, &format!("&sid={sid}")))
        .send()
        .await
        .unwrap();
    common::assert_error(res, 400, 1, "Session ID unknown").await;
    let hb = health(&other).await;
    assert_eq!(hb["routing"]["forward_failures"], 1, "{hb}");
    // Served directly, the session is fine.
    let body = common::get_text(url(&owner, &format!("&sid={sid}"))).await;
    assert!(body.starts_with("40{\"sid\":"), "{body}");
}

/// A node that shuts down answers 503 on /ready (and to handshakes) from
/// the start of its shutdown, while it still serves its clients, and takes
/// its record out of Redis when it is done.
#[tokio::test]
async fn readiness_turns_503_when_a_shutdown_begins() {
    let redis = common::redis::RedisServer::start().await;
    let (a, addr) = node(&redis.url(), "r", &["--shutdown-grace-ms", "3000"]).await;
    let (_b, other) = node(&redis.url(), "r", &[]).await;
    let ready = common::http()
        .get(format!("http://{addr}/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // A polling client with no GET pending holds the shutdown for its
    // idle grace (1 s): the window in which /ready is looked at.
    let _sid = session_on(&addr).await;
    common::sigterm(&a).await;
    common::until_async("/ready answers 503", || async {
        let res = common::http()
            .get(format!("http://{addr}/ready"))
            .send()
            .await;
        matches!(res, Ok(r) if r.status() == 503)
    })
    .await;
    let res = common::http().get(url(&addr, "")).send().await.unwrap();
    assert_eq!(res.status(), 503, "no handshake while shutting down");
    // Gone from the cluster once it left.
    common::until_async("the node left", || async {
        health(&other).await["cluster"]["nodes"]["alive"] == 1
    })
    .await;
}

/// A node whose Redis is unreachable is not ready (it cannot reach the
/// rest of the cluster), and is again once Redis is back.
#[tokio::test]
async fn readiness_follows_redis() {
    let mut redis = common::redis::RedisServer::start().await;
    let port = redis.port;
    let (_a, addr) = node(&redis.url(), "r", &[]).await;
    let ready = || async {
        common::http()
            .get(format!("http://{addr}/ready"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    common::until_async("ready", || async { ready().await == 200 }).await;
    redis.kill().await;
    common::until_async("not ready without Redis", || async { ready().await == 503 }).await;
    let _redis = common::redis::RedisServer::start_on(port).await;
    common::until_async("ready again", || async { ready().await == 200 }).await;
}
