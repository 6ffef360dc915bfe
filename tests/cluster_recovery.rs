//! Connection state recovery on a cluster store (sessions and packets in a
//! real Redis): the recovery contract of tests/recovery.rs holds with the
//! real socket.io-client, a client recovers on another server after a
//! graceful shutdown, and an offset that left the capped stream means a
//! fresh socket, never a partial replay.

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::sio::{SioServer, config};
use serde_json::Value;
use socketgate::socketio::{RecoveryConfig, SocketIo, SocketIoConfig};
use socketgate::{ClusterStore, ClusterStoreConfig};

fn recovery(window: Duration) -> RecoveryConfig {
    RecoveryConfig::default().max_disconnection_duration(window)
}

async fn server_on(redis: &RedisServer, recovery: RecoveryConfig) -> SocketIo {
    server_with_store(redis, recovery).await.0
}

async fn server_with_store(
    redis: &RedisServer,
    recovery: RecoveryConfig,
) -> (SocketIo, ClusterStore) {
    let cfg: SocketIoConfig = config().recovery(recovery.clone());
    let store = ClusterStore::new(ClusterStoreConfig::new(redis.url(), &recovery))
        .await
        .expect("the store starts");
    let io = SocketIo::builder()
        .config(cfg)
        .cluster_store(store.clone())
        .build()
        .unwrap();
    (io, store)
}

async fn run(scenario: &str, mode: &str, window: Duration) -> Value {
    let redis = RedisServer::start().await;
    let io = server_on(&redis, recovery(window)).await;
    let server = SioServer::serve(io, "127.0.0.1:0".parse().unwrap()).await;
    common::run_node("recovery-client.mjs", &[scenario, mode, &server.base()]).await
}

async fn recovered(scenario: &str, mode: &str) {
    let v = run(scenario, mode, Duration::from_secs(120)).await;
    assert_eq!(v["recovered"], true, "{v}");
    assert_eq!(v["events"]["direct"], 50, "{v}");
    assert_eq!(v["events"]["room"], 50, "{v}");
    assert_eq!(v["data"], serde_json::json!({ "x": 1 }), "{v}");
}

mod transport_close {
    use super::*;

    #[tokio::test]
    async fn polling() {
        recovered("transport-close", "polling").await
    }

    #[tokio::test]
    async fn websocket() {
        recovered("transport-close", "websocket").await
    }

    #[tokio::test]
    async fn polling_then_upgrade() {
        recovered("transport-close", "default").await
    }
}

#[tokio::test]
async fn ping_timeout_websocket() {
    recovered("ping-timeout", "websocket").await
}

#[tokio::test]
async fn not_after_the_window() {
    let v = run("expired", "websocket", Duration::from_millis(1000)).await;
    assert_eq!(v["recovered"], false, "{v}");
    assert_ne!(v["firstSocketId"], v["secondSocketId"], "{v}");
}

/// A server shuts down gracefully; another one (a node with a store of its
/// own, on the same Redis) takes its address, and the waiting client is
/// recovered there with the 20 events sent before the shutdown.
#[tokio::test]
async fn recovered_by_another_node_after_a_graceful_shutdown() {
    let redis = RedisServer::start().await;
    let window = recovery(Duration::from_secs(120));
    let first = SioServer::serve(
        server_on(&redis, window.clone()).await,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    // A reference: the Redis must outlive the second server.
    let redis = &redis;
    common::sio::recovered_across_shutdown(first, "websocket", |addr| async move {
        SioServer::serve(server_on(redis, window).await, addr).await
    })
    .await;
}

/// The last argument of an event packet: its offset.
fn offset_of(packet: &str) -> String {
    let args: Value = serde_json::from_str(packet.strip_prefix("42").unwrap()).unwrap();
    args.as_array()
        .and_then(|a| a.last())
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no offset in {packet}"))
        .to_owned()
}

/// A raw WebSocket client joined to `/`: its socket id and pid, the
/// contract's `auth` event read.
async fn join(server: &SioServer) -> (common::Ws, String, String) {
    let mut ws = server.ws_open().await;
    common::ws_send(&mut ws, "40").await;
    let answer = common::ws_text(&mut ws).await;
    let json: Value = serde_json::from_str(answer.strip_prefix("40").unwrap()).unwrap();
    let auth = common::ws_event(&mut ws).await;
    assert!(auth.starts_with("42[\"auth\""), "{auth}");
    (
        ws,
        json["sid"].as_str().unwrap().to_owned(),
        json["pid"]
            .as_str()
            .expect("recovery gives a pid")
            .to_owned(),
    )
}

/// A raw WebSocket client that comes back with the private session id and
/// offset of a socket it had: the socket and its CONNECT answer.
async fn come_back(server: &SioServer, pid: &str, offset: &str) -> (common::Ws, Value) {
    let mut ws = server.ws_open().await;
    let auth = serde_json::json!({ "pid": pid, "offset": offset });
    common::ws_send(&mut ws, &format!("40{auth}")).await;
    let answer = common::ws_text(&mut ws).await;
    let json = serde_json::from_str(answer.strip_prefix("40").expect("a CONNECT answer"))
        .unwrap_or_else(|_| panic!("{answer}"));
    (ws, json)
}

/// The stream keeps about `max_packets` entries. A client whose offset was
/// trimmed away is not recovered (a new socket id and pid), while one whose
/// offset is still there gets everything after it.
#[tokio::test]
async fn an_offset_that_left_the_stream_is_not_recovered() {
    let redis = RedisServer::start().await;
    let io = server_on(&redis, recovery(Duration::from_secs(60)).max_packets(200)).await;
    let server = SioServer::serve(io, "127.0.0.1:0".parse().unwrap()).await;

    let (mut ws, id, pid) = join(&server).await;
    server.io.emit("first", &1).unwrap();
    let first = common::ws_event(&mut ws).await;
    assert!(first.starts_with("42[\"first\",1,"), "{first}");
    let offset = offset_of(&first);
    drop(ws);
    common::until("the socket left", || {
        server.io.of("/").unwrap().sockets().is_empty()
    })
    .await;
    // Far more than the stream keeps.
    for i in 0..2000 {
        server.io.emit("later", &i).unwrap();
    }
    common::until_async("the stream was trimmed", || async {
        let len = redis.stream_len().await;
        len > 0 && len < 1000
    })
    .await;

    let (_ws, json) = come_back(&server, &pid, &offset).await;
    let answer = json.to_string();
    assert_ne!(json["sid"], id.as_str(), "{answer}");
    assert_ne!(
        json["pid"],
        pid.as_str(),
        "a new session gets a new pid: {answer}"
    );
    server.stop().await;
}

/// With the offset still in the stream, the replay holds every packet
/// after it, in order, each once, and the live ones follow.
#[tokio::test]
async fn a_replay_is_complete_and_in_order_with_live_packets() {
    let redis = RedisServer::start().await;
    let io = server_on(&redis, recovery(Duration::from_secs(60))).await;
    let server = SioServer::serve(io, "127.0.0.1:0".parse().unwrap()).await;
    let (mut ws, id, pid) = join(&server).await;
    server.io.emit("n", &-1).unwrap();
    let offset = offset_of(&common::ws_event(&mut ws).await);
    drop(ws);
    common::until("the socket left", || {
        server.io.of("/").unwrap().sockets().is_empty()
    })
    .await;
    for i in 0..100 {
        server.io.emit("n", &i).unwrap();
    }
    // Emitted while the client comes back: live or replayed, never both.
    let io = server.io.clone();
    let emitter = tokio::spawn(async move {
        for i in 100..300 {
            io.emit("n", &i).unwrap();
            tokio::task::yield_now().await;
        }
    });
    let (mut ws, json) = come_back(&server, &pid, &offset).await;
    let answer = json.to_string();
    assert_eq!(json["sid"], id.as_str(), "recovered: {answer}");
    emitter.await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 300 {
        let packet = common::ws_event(&mut ws).await;
        let args: Value = serde_json::from_str(packet.strip_prefix("42").unwrap()).unwrap();
        if args[0] == "n" {
            seen.push(args[1].as_i64().unwrap());
        }
    }
    assert_eq!(seen, (0..300).collect::<Vec<_>>());
    server.stop().await;
}

/// Redis goes away and comes back empty: what was emitted meanwhile waits
/// in the bounded queue and is delivered, in order, once it is back; the
/// server never stops answering, and later packets flow as before.
#[tokio::test]
async fn a_redis_restart_delays_packets_but_loses_none_queued() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let io = server_on(&redis, recovery(Duration::from_secs(60))).await;
    let server = SioServer::serve(io, "127.0.0.1:0".parse().unwrap()).await;
    let (mut ws, _, _) = join(&server).await;

    redis.kill().await;
    for i in 0..10 {
        server.io.emit("n", &i).unwrap();
    }
    // The server still answers: a new client gets its session.
    let _other = server.ws_open().await;
    let _redis = RedisServer::start_on(port).await;
    for i in 10..20 {
        server.io.emit("n", &i).unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let packet = common::ws_event(&mut ws).await;
        let args: Value = serde_json::from_str(packet.strip_prefix("42").unwrap()).unwrap();
        assert_eq!(args[0], "n", "{packet}");
        seen.push(args[1].as_i64().unwrap());
    }
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    server.stop().await;
}

/// The session kept in Redis follows the rooms a socket is put in or
/// taken out of by the server (`to(id).join`, as the HTTP API and the Admin
/// UI do), not only those it joins itself: a node that dies leaves it as it
/// was, and the socket recovers elsewhere in its rooms.
#[tokio::test]
async fn server_side_room_changes_reach_the_kept_session() {
    let redis = RedisServer::start().await;
    let io = server_on(&redis, recovery(Duration::from_secs(60))).await;
    let server = SioServer::serve(io, "127.0.0.1:0".parse().unwrap()).await;
    let (_ws, id, pid) = join(&server).await;
    let conn = redis.conn().await;
    let record = || {
        let mut conn = conn.clone();
        let key = format!("socket.io#session#{pid}");
        async move {
            redis::cmd("HGET")
                .arg(&key)
                .arg("rec")
                .query_async::<Option<Vec<u8>>>(&mut conn)
                .await
                .unwrap()
                .unwrap_or_default()
        }
    };
    let holds = |room: &'static str| {
        move || async move {
            record()
                .await
                .windows(room.len())
                .any(|w| w == room.as_bytes())
        }
    };
    common::until_async("the live session is in Redis", || async {
        !record().await.is_empty()
    })
    .await;
    let ns = server.io.of("/").unwrap();
    ns.to(id.as_str()).join("vip-room");
    common::until_async("the server-side join is in Redis", holds("vip-room")).await;
    ns.to(id.as_str()).leave("vip-room");
    common::until_async("the server-side leave is in Redis", || {
        let check = holds("vip-room");
        async move { !check().await }
    })
    .await;
    server.stop().await;
}

/// Past `max_sessions` disconnected sockets in a window, the next one that
/// goes is not kept: its client starts afresh (and it is counted), while
/// the one kept recovers.
#[tokio::test]
async fn past_max_sessions_a_socket_that_goes_is_not_kept() {
    let redis = RedisServer::start().await;
    let window = recovery(Duration::from_secs(60)).max_sessions(1);
    let (io, store) = server_with_store(&redis, window).await;
    let server = SioServer::serve(io, "127.0.0.1:0".parse().unwrap()).await;
    let (mut first, first_id, first_pid) = join(&server).await;
    let (mut second, second_id, second_pid) = join(&server).await;
    server.io.emit("n", &1).unwrap();
    let first_offset = offset_of(&common::ws_event(&mut first).await);
    let second_offset = offset_of(&common::ws_event(&mut second).await);
    // One goes, then the other: the first is kept, the second is not.
    drop(first);
    common::until("the first socket left", || {
        server.io.of("/").unwrap().sockets().len() == 1
    })
    .await;
    drop(second);
    common::until("the second socket left", || {
        server.io.of("/").unwrap().sockets().is_empty()
    })
    .await;
    assert_eq!(store.stats().sessions_dropped, 1, "{:?}", store.stats());
    // Its live record is removed too (else it would recover from that).
    let key = format!("socket.io#session#{second_pid}");
    common::until_async("the second's session is gone from Redis", || async {
        !redis.exists(&key).await
    })
    .await;
    let (_ws, first) = come_back(&server, &first_pid, &first_offset).await;
    assert_eq!(first["sid"], first_id.as_str(), "the kept one recovers");
    let (_ws, second) = come_back(&server, &second_pid, &second_offset).await;
    assert_ne!(
        second["sid"],
        second_id.as_str(),
        "the one past the bound starts afresh"
    );
    server.stop().await;
}

/// A socket that leaves on purpose cannot be recovered: its session is
/// removed from Redis, and presenting its pid again gives a new socket.
#[tokio::test]
async fn a_socket_that_left_on_purpose_is_forgotten() {
    let redis = RedisServer::start().await;
    let io = server_on(&redis, recovery(Duration::from_secs(60))).await;
    let server = SioServer::serve(io, "127.0.0.1:0".parse().unwrap()).await;
    let (mut ws, id, pid) = join(&server).await;
    server.io.emit("n", &1).unwrap();
    let offset = offset_of(&common::ws_event(&mut ws).await);
    let key = format!("socket.io#session#{pid}");
    common::until_async("the live session is in Redis", || redis.exists(&key)).await;
    common::ws_send(&mut ws, "41").await;
    common::until_async("the session is gone from Redis", || async {
        !redis.exists(&key).await
    })
    .await;

    let (_ws, json) = come_back(&server, &pid, &offset).await;
    let answer = json.to_string();
    assert_ne!(json["sid"], id.as_str(), "{answer}");
    server.stop().await;
}

/// Whatever lands in the stream that is not a packet (another program, a
/// corrupted write) is skipped and counted; the packets around it arrive.
#[tokio::test]
async fn bad_stream_entries_are_counted_and_skipped() {
    let redis = RedisServer::start().await;
    let (io, store) = server_with_store(&redis, recovery(Duration::from_secs(60))).await;
    let server = SioServer::serve(io, "127.0.0.1:0".parse().unwrap()).await;
    let (mut ws, _, _) = join(&server).await;
    server.io.emit("n", &1).unwrap();
    assert!(common::ws_event(&mut ws).await.starts_with("42[\"n\",1,"));
    let mut conn = redis.conn().await;
    for junk in [&b"\xc1"[..], b"not msgpack", b"\x93\xa1x\x80\x80"] {
        let _: String = redis::cmd("XADD")
            .arg("socket.io#stream")
            .arg("*")
            .arg("m")
            .arg(junk)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let _: String = redis::cmd("XADD")
        .arg("socket.io#stream")
        .arg("*")
        .arg("other")
        .arg("field")
        .query_async(&mut conn)
        .await
        .unwrap();
    server.io.emit("n", &2).unwrap();
    assert!(common::ws_event(&mut ws).await.starts_with("42[\"n\",2,"));
    assert_eq!(store.stats().malformed, 4, "{:?}", store.stats());
    server.stop().await;
}
