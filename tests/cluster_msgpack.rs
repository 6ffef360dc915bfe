//! The msgpack parser in a cluster on a real `redis-server`, with the real
//! socket.io-client 4.8 and `socket.io-msgpack-parser` 3.0.2
//! (tests/node/sio-probe.mjs, driven step by step):
//!
//! - socketgate nodes all on msgpack: room broadcasts (nested binary
//!   included) reach the room's clients on other nodes and no one else;
//!   fetchSockets, emits to a fetched socket, broadcasts with acks answered
//!   with binary, and server-side events work across them;
//! - a socketgate node and a Node socket.io server (`@socket.io/redis-adapter`,
//!   msgpack parser) exchange broadcasts and broadcasts with acks, binary
//!   included, both ways, and the Node emitter's binary reaches both;
//! - connection state recovery on the cluster store: a client that left
//!   node A recovers on node B with every missed packet, in order, binary
//!   intact;
//! - a JSON node and a msgpack node in one cluster: the bus (and the
//!   recovery stream) carry the broadcast, not a client's encoding, and
//!   each node encodes for its own clients with its own parser, so both
//!   kinds of client get the same events, binary intact.

mod common;

use std::time::Duration;

use common::bus::{Node, node_socketio_server};
use common::probe::{Probe, bin};
use common::redis::RedisServer;
use serde_json::{Value, json};
use socketgate::socketio::{Parser, Payload, RecoveryConfig, SocketIoConfig};
use socketgate::{ClusterStore, ClusterStoreConfig, RedisConfig};

fn msgpack() -> SocketIoConfig {
    common::sio::config().parser(Parser::Msgpack)
}

/// A node on `redis` with `cfg` and the pub/sub bus only.
async fn node(redis: &RedisServer, cfg: SocketIoConfig) -> Node {
    Node::start(RedisConfig::new(redis.url()), cfg, None).await
}

/// A node on `redis` with `cfg`, recovery on (a minute) and its own
/// cluster store, besides the bus: what the gateway binary runs with
/// `--redis-url` and `--recovery-ms`.
async fn recovering_node(redis: &RedisServer, cfg: SocketIoConfig) -> Node {
    let recovery = RecoveryConfig::default().max_disconnection_duration(Duration::from_secs(60));
    let store = ClusterStore::new(ClusterStoreConfig::new(redis.url(), &recovery))
        .await
        .expect("the store starts");
    Node::start(
        RedisConfig::new(redis.url()),
        cfg.recovery(recovery),
        Some(store),
    )
    .await
}

/// Waits until every node counts `nodes.len() + others` servers.
async fn all_see(nodes: &[&Node], others: usize) {
    for node in nodes {
        node.sees(nodes.len() + others).await;
    }
}

/// `payload`'s arguments as the probe reports them: every placeholder
/// replaced by its attachment as `{"$binary":"<hex>"}`.
fn as_received(payload: &Payload) -> Vec<Value> {
    fn resolve(v: &Value, bins: &[bytes::Bytes]) -> Value {
        match v {
            Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)) => {
                let num = map["num"].as_u64().expect("a placeholder number") as usize;
                bin(&bins[num])
            }
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.clone(), resolve(v, bins)))
                .collect(),
            Value::Array(items) => items.iter().map(|v| resolve(v, bins)).collect(),
            other => other.clone(),
        }
    }
    payload
        .args
        .iter()
        .map(|v| resolve(v, &payload.bins))
        .collect()
}

/// An event with binary at the top and nested in an object and an array:
/// `[<01 02 03>, {"file": <04 05>, "label": "x"}, [{"deep": <ff>}]]`.
fn nested_binary() -> Payload {
    let mut payload = Payload::new().bin(vec![1u8, 2, 3]);
    let file = payload.attach(vec![4u8, 5]);
    let deep = payload.attach(vec![0xffu8]);
    payload
        .arg(json!({ "file": file, "label": "x" }))
        .arg(json!([{ "deep": deep }]))
}

/// What [`nested_binary`] looks like to a client, spelled out.
fn nested_binary_received() -> Vec<Value> {
    vec![
        bin(&[1, 2, 3]),
        json!({ "file": bin(&[4, 5]), "label": "x" }),
        json!([{ "deep": bin(&[0xff]) }]),
    ]
}

/// Asserts that `name`'s next event is `event` with `args`, its binaries
/// Node `Buffer`s as socket.io-client hands them over.
async fn gets(probe: &mut Probe, name: &str, event: &str, args: &[Value]) {
    let got = probe.next_event(name).await;
    assert_eq!(
        (got.event.as_str(), got.args.as_slice()),
        (event, args),
        "at {name}"
    );
    assert!(
        got.binary_classes.iter().all(|c| c == "Buffer"),
        "{got:?} at {name}"
    );
}

/// A broadcast to everyone from `from`: each of `names`' next event is it,
/// which proves nothing else reached them before it.
async fn marker(probe: &mut Probe, from: &Node, names: &[&str], n: u32) {
    from.server.io.emit("marker", &n).unwrap();
    for name in names {
        gets(probe, name, "marker", &[json!(n)]).await;
    }
}

// ---- (a) socketgate nodes, all on msgpack ---------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_broadcasts_with_nested_binary_reach_msgpack_clients_on_other_nodes() {
    let redis = RedisServer::start().await;
    let (a, b, c) = (
        node(&redis, msgpack()).await,
        node(&redis, msgpack()).await,
        node(&redis, msgpack()).await,
    );
    all_see(&[&a, &b, &c], 0).await;
    let mut probe = Probe::start();
    probe.connect("b-in", &b.server.base(), "msgpack").await;
    probe.connect("b-out", &b.server.base(), "msgpack").await;
    probe.connect("c-in", &c.server.base(), "msgpack").await;
    probe.join("b-in", "r").await;
    probe.join("c-in", "r").await;

    // From A (no client there) to the room: its members on B and C get
    // every binary as binary, where it was.
    a.server
        .io
        .to("r")
        .emit_payload("news", &nested_binary())
        .unwrap();
    for name in ["b-in", "c-in"] {
        gets(&mut probe, name, "news", &nested_binary_received()).await;
    }
    // b-out, outside the room, got nothing before the marker.
    marker(&mut probe, &a, &["b-in", "b-out", "c-in"], 1).await;

    // Except the room: only b-out.
    a.server
        .io
        .of("/")
        .unwrap()
        .except("r")
        .emit("outside", &2)
        .unwrap();
    gets(&mut probe, "b-out", "outside", &[json!(2)]).await;
    marker(&mut probe, &a, &["b-in", "b-out", "c-in"], 2).await;

    // A client's binary broadcast (decoded from msgpack on C, published,
    // encoded again on B).
    let sent = probe
        .call(
            "c-in",
            json!(["bcast", { "to": "r", "event": "from-c", "data": { "n": 3 }, "withBinary": true }]),
        )
        .await;
    assert_eq!(sent, [json!("sent")]);
    for name in ["b-in", "c-in"] {
        gets(
            &mut probe,
            name,
            "from-c",
            &[json!({ "n": 3 }), bin(&[1, 2, 3])],
        )
        .await;
    }
    marker(&mut probe, &c, &["b-in", "b-out", "c-in"], 3).await;

    for node in [&a, &b, &c] {
        let stats = node.bus.stats();
        assert_eq!((stats.unpublished, stats.malformed), (0, 0), "{stats:?}");
    }
    probe.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_requests_reach_msgpack_clients_and_bring_their_binary_back() {
    let redis = RedisServer::start().await;
    let (a, b) = (node(&redis, msgpack()).await, node(&redis, msgpack()).await);
    all_see(&[&a, &b], 0).await;
    let mut probe = Probe::start();
    let b1 = probe.connect("b1", &b.server.base(), "msgpack").await;
    probe.connect("b2", &b.server.base(), "msgpack").await;
    probe.join("b1", "r").await;
    let data = json!({ "user": "b1" });
    assert_eq!(
        probe.call("b1", json!(["set-data", data])).await,
        [json!("ok")]
    );

    // fetchSockets from A finds b1 on B, with its data.
    let ns = a.server.io.of("/").unwrap();
    let found = ns.to("r").fetch_sockets().await.unwrap();
    assert_eq!(found.silent_nodes, 0);
    let ids: Vec<&str> = found.items.iter().map(|s| s.id().as_str()).collect();
    assert_eq!(ids, [b1.as_str()]);
    assert_eq!(found.items[0].data(), &data);
    // What A does to the fetched socket reaches b1, in msgpack.
    found.items[0].emit("direct", &json!({ "n": 1 })).unwrap();
    gets(&mut probe, "b1", "direct", &[json!({ "n": 1 })]).await;
    // ...and so does a binary event to its own room, from A.
    ns.to(b1.as_str())
        .emit_payload("direct-bin", &nested_binary())
        .unwrap();
    gets(&mut probe, "b1", "direct-bin", &nested_binary_received()).await;

    // A broadcast with acks from A to the room: b1 answers with binary,
    // which comes back to A as bytes.
    probe
        .answer(
            "b1",
            "poll",
            json!([{ "answer": "yes", "file": bin(&[0xca, 0xfe]) }]),
        )
        .await;
    let results = ns
        .to("r")
        .timeout(Duration::from_secs(3))
        .emit_with_ack("poll", &"ready?")
        .await
        .unwrap();
    assert_eq!(results.remote_replies.len(), 1, "{results:?}");
    assert_eq!(
        as_received(&results.remote_replies[0]),
        [json!({ "answer": "yes", "file": bin(&[0xca, 0xfe]) })]
    );
    assert_eq!((results.remote_missing, results.silent_nodes), (0, 0));
    gets(
        &mut probe,
        "b1",
        "poll",
        &[json!("ready?"), json!({ "$function": true })],
    )
    .await;
    // b2, outside the room, was neither polled nor sent anything.
    marker(&mut probe, &a, &["b1", "b2"], 1).await;

    // Server-side events between msgpack nodes, answered.
    b.server
        .io
        .of("/")
        .unwrap()
        .on_server_side("hello", |args, ack| {
            if let Some(ack) = ack {
                ack.send(format!("b:{}", args.args[0]));
            }
        });
    let answers = ns
        .server_side_emit_with_ack("hello", &7, Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(answers.items, [json!("b:7")]);
    probe.quit().await;
}

// ---- (b) with a Node socket.io server -------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_msgpack_server_and_a_socketgate_node_exchange_binary_broadcasts() {
    let redis = RedisServer::start().await;
    let a = node(&redis, msgpack()).await;
    let (_node, port) = node_socketio_server(&redis, "msgpack").await;
    all_see(&[&a], 1).await;
    let node_url = format!("http://127.0.0.1:{port}");
    let mut probe = Probe::start();
    probe.connect("g-in", &a.server.base(), "msgpack").await;
    probe.connect("g-out", &a.server.base(), "msgpack").await;
    probe.connect("n-in", &node_url, "msgpack").await;
    probe.join("g-in", "r").await;
    probe.join("n-in", "r").await;

    // socketgate -> Node: nested binary from A to the room reaches the
    // Node server's client intact.
    a.server
        .io
        .to("r")
        .emit_payload("news", &nested_binary())
        .unwrap();
    for name in ["g-in", "n-in"] {
        gets(&mut probe, name, "news", &nested_binary_received()).await;
    }
    marker(&mut probe, &a, &["g-in", "g-out", "n-in"], 1).await;

    // Node -> socketgate: the Node server broadcasts what its client sent
    // (binary nested in it) and a binary of its own.
    let data = json!({ "file": bin(&[4, 5]), "list": [bin(&[6])] });
    let sent = probe
        .call(
            "n-in",
            json!(["bcast", { "to": "r", "event": "from-node", "data": data, "withBinary": true }]),
        )
        .await;
    assert_eq!(sent, [json!("sent")]);
    for name in ["g-in", "n-in"] {
        gets(
            &mut probe,
            name,
            "from-node",
            &[data.clone(), bin(&[1, 2, 3])],
        )
        .await;
    }
    marker(&mut probe, &a, &["g-in", "g-out", "n-in"], 2).await;

    // A socketgate client's binary broadcast reaches the Node server's.
    probe
        .call(
            "g-in",
            json!(["bcast", { "to": "r", "event": "from-gate", "data": { "n": 3 }, "withBinary": true }]),
        )
        .await;
    for name in ["g-in", "n-in"] {
        gets(
            &mut probe,
            name,
            "from-gate",
            &[json!({ "n": 3 }), bin(&[1, 2, 3])],
        )
        .await;
    }
    marker(&mut probe, &a, &["g-in", "g-out", "n-in"], 3).await;

    // Broadcasts with acks, each way, answered with binary by the clients
    // of both servers.
    let g_answer = json!({ "from": "g", "file": bin(&[0x0a]) });
    let n_answer = json!({ "from": "n", "file": bin(&[0x0b]) });
    probe.answer("g-in", "poll", json!([g_answer])).await;
    probe.answer("n-in", "poll", json!([n_answer])).await;
    let polled = [json!("ready?"), json!({ "$function": true })];
    // From socketgate: g-in answers here, n-in through the Node server.
    let results = a
        .server
        .io
        .of("/")
        .unwrap()
        .to("r")
        .timeout(Duration::from_secs(3))
        .emit_with_ack("poll", &"ready?")
        .await
        .unwrap();
    assert_eq!(results.replies.len(), 1, "{results:?}");
    assert_eq!(
        as_received(&results.replies[0].1),
        std::slice::from_ref(&g_answer)
    );
    assert_eq!(results.remote_replies.len(), 1, "{results:?}");
    assert_eq!(
        as_received(&results.remote_replies[0]),
        std::slice::from_ref(&n_answer)
    );
    assert_eq!((results.remote_missing, results.silent_nodes), (0, 0));
    for name in ["g-in", "n-in"] {
        gets(&mut probe, name, "poll", &polled).await;
    }
    // From Node: g-in's answer crosses to the Node server as bytes.
    let report = probe
        .call("n-in", json!(["poll", { "room": "r", "timeoutMs": 3000 }]))
        .await;
    let mut responses = report[0]["responses"].as_array().unwrap().clone();
    responses.sort_by_key(|r| r["from"].as_str().unwrap().to_owned());
    assert_eq!(report[0]["error"], Value::Null, "{report:?}");
    assert_eq!(responses, [g_answer, n_answer]);
    for name in ["g-in", "n-in"] {
        gets(&mut probe, name, "poll", &polled).await;
    }
    marker(&mut probe, &a, &["g-in", "g-out", "n-in"], 4).await;

    // The Node emitter (@socket.io/redis-emitter) too: its binary reaches
    // the msgpack clients of both servers.
    common::run_node(
        "cluster-node.mjs",
        &["emitter", &redis.url(), "emit-binary"],
    )
    .await;
    for name in ["g-in", "g-out", "n-in"] {
        gets(
            &mut probe,
            name,
            "from-emitter",
            &[bin(&[7, 8, 9]), json!({ "nested": bin(&[10]) })],
        )
        .await;
    }

    let stats = a.bus.stats();
    assert_eq!((stats.unpublished, stats.malformed), (0, 0), "{stats:?}");
    probe.quit().await;
}

// ---- (c) recovery on another node -----------------------------------------

/// The event `name` got next, its offset (the last argument) taken off.
async fn next_with_offset(probe: &mut Probe, name: &str) -> (String, Vec<Value>, String) {
    let mut got = probe.next_event(name).await;
    let offset = match got.args.pop() {
        Some(Value::String(offset)) => offset,
        other => panic!("{} at {name} without an offset: {other:?}", got.event),
    };
    (got.event, got.args, offset)
}

/// A msgpack client on `transport` (both, upgrading, with `None`) leaves
/// node A and comes back through node B.
async fn recovers_on_another_node(transport: Option<&str>) {
    let redis = RedisServer::start().await;
    let a = recovering_node(&redis, msgpack()).await;
    let b = recovering_node(&redis, msgpack()).await;
    all_see(&[&a, &b], 0).await;
    let mut probe = Probe::start();
    let id = probe
        .connect_on("m", &a.server.base(), "msgpack", transport)
        .await;
    probe.join("m", "r").await;
    a.server
        .io
        .to("r")
        .emit_payload("before", &Payload::new().bin(vec![0u8]))
        .unwrap();
    let (event, args, first_offset) = next_with_offset(&mut probe, "m").await;
    assert_eq!((event.as_str(), args), ("before", vec![bin(&[0])]));

    // The server closes the transport; the socket is gone from A.
    probe.emit("m", json!(["close-transport"])).await;
    assert_eq!(probe.disconnected("m").await, "transport close");
    let a_ns = a.server.io.of("/").unwrap();
    common::until("m left A", || a_ns.sockets().is_empty()).await;

    // Missed: from A to the room and to the socket, alternately, each with
    // binary; once they are all in the stream, two more from B.
    let before = redis.stream_len().await;
    let mut want = Vec::new();
    for i in 0..6u8 {
        let payload = Payload::new().arg(i).bin(vec![i, 0xee]);
        let mut nested = Payload::new().arg(i);
        let file = nested.attach(vec![i]);
        let nested = nested.arg(json!({ "in": { "file": file } }));
        if i % 2 == 0 {
            a.server.io.to("r").emit_payload("room", &payload).unwrap();
            want.push(("room", as_received(&payload)));
        } else {
            a.server
                .io
                .to(id.as_str())
                .emit_payload("direct", &nested)
                .unwrap();
            want.push(("direct", as_received(&nested)));
        }
    }
    common::until_async("A's six packets in the stream", || async {
        redis.stream_len().await >= before + 6
    })
    .await;
    for i in 6..8u8 {
        let payload = Payload::new().arg(i).bin(vec![i, 0xbb]);
        b.server.io.to("r").emit_payload("room", &payload).unwrap();
        want.push(("room", as_received(&payload)));
    }
    common::until_async("B's two packets in the stream", || async {
        redis.stream_len().await >= before + 8
    })
    .await;

    // Back through B: the same socket, recovered, and every missed packet
    // once, in order, binary intact, each with a new offset.
    let back = probe.reconnect("m", &b.server.base()).await;
    assert_eq!(back["recovered"], true, "{back}");
    assert_eq!(back["id"], id.as_str(), "{back}");
    if let Some(transport) = transport {
        assert_eq!(back["transport"], transport, "{back}");
    }
    let mut offsets = vec![first_offset];
    for (event, args) in &want {
        let (got_event, got_args, offset) = next_with_offset(&mut probe, "m").await;
        assert_eq!((got_event.as_str(), &got_args), (*event, args));
        assert!(!offsets.contains(&offset), "{offset} twice: {offsets:?}");
        offsets.push(offset);
    }
    let who = probe.call("m", json!(["whoami"])).await;
    assert_eq!(who[0]["recovered"], true, "{who:?}");
    assert_eq!(who[0]["id"], id.as_str(), "{who:?}");
    assert!(
        who[0]["rooms"].as_array().unwrap().contains(&json!("r")),
        "{who:?}"
    );
    // What follows is live, from either node, and nothing came twice: the
    // next event after the replay is this one.
    a.server
        .io
        .to("r")
        .emit_payload("live", &Payload::new().bin(vec![7u8]))
        .unwrap();
    let (event, args, _) = next_with_offset(&mut probe, "m").await;
    assert_eq!((event.as_str(), args), ("live", vec![bin(&[7])]));
    probe.quit().await;
}

mod recovers_on_another_node {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn polling() {
        super::recovers_on_another_node(Some("polling")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn websocket() {
        super::recovers_on_another_node(Some("websocket")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn polling_then_upgrade() {
        super::recovers_on_another_node(None).await;
    }
}

// ---- (d) a JSON node and a msgpack node -----------------------------------

/// `name`'s next event; with `offsets` its last argument must be an
/// offset, which is taken off.
async fn next_plain(probe: &mut Probe, name: &str, offsets: bool) -> (String, Vec<Value>) {
    let mut got = probe.next_event(name).await;
    if offsets {
        assert!(
            got.args.pop().is_some_and(|o| o.is_string()),
            "{got:?} at {name} without an offset"
        );
    }
    (got.event, got.args)
}

/// A JSON node A and a msgpack node B; `recovery` gives both the cluster
/// store (broadcasts then travel through the stream, not pub/sub, and
/// every event ends with its offset).
async fn json_and_msgpack_nodes_share_broadcasts(recovery: bool) {
    let redis = RedisServer::start().await;
    let (a, b) = if recovery {
        (
            recovering_node(&redis, common::sio::config()).await,
            recovering_node(&redis, msgpack()).await,
        )
    } else {
        (
            node(&redis, common::sio::config()).await,
            node(&redis, msgpack()).await,
        )
    };
    all_see(&[&a, &b], 0).await;
    let mut probe = Probe::start();
    probe.connect("json-a", &a.server.base(), "json").await;
    probe.connect("mp-b", &b.server.base(), "msgpack").await;
    probe.connect("mp-b-out", &b.server.base(), "msgpack").await;
    probe.join("json-a", "r").await;
    probe.join("mp-b", "r").await;
    let mut markers = 0;
    let mut marker = async |probe: &mut Probe, from: &Node| {
        markers += 1;
        from.server.io.emit("marker", &markers).unwrap();
        for name in ["json-a", "mp-b", "mp-b-out"] {
            assert_eq!(
                next_plain(probe, name, recovery).await,
                ("marker".to_owned(), vec![json!(markers)]),
                "at {name}"
            );
        }
    };

    // From each node, each node's clients get it with their own parser.
    for (from, event) in [(&a, "from-json-node"), (&b, "from-msgpack-node")] {
        from.server
            .io
            .to("r")
            .emit_payload(event, &nested_binary())
            .unwrap();
        for name in ["json-a", "mp-b"] {
            assert_eq!(
                next_plain(&mut probe, name, recovery).await,
                (event.to_owned(), nested_binary_received()),
                "at {name}"
            );
        }
        // mp-b-out, outside the room, got nothing before the marker.
        marker(&mut probe, &a).await;
    }

    // A JSON client's binary (attachments) reaches the msgpack client, and
    // the other way round.
    for (sender, other) in [("json-a", "mp-b"), ("mp-b", "json-a")] {
        let data = json!({ "from": sender });
        let sent = probe
            .call(
                sender,
                json!(["bcast", { "to": "r", "event": "relay", "data": data, "withBinary": true }]),
            )
            .await;
        assert_eq!(sent, [json!("sent")]);
        for name in [sender, other] {
            assert_eq!(
                next_plain(&mut probe, name, recovery).await,
                ("relay".to_owned(), vec![data.clone(), bin(&[1, 2, 3])]),
                "at {name}"
            );
        }
        marker(&mut probe, &b).await;
    }
    probe.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_node_and_a_msgpack_node_share_broadcasts() {
    json_and_msgpack_nodes_share_broadcasts(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_node_and_a_msgpack_node_share_broadcasts_through_the_recovery_stream() {
    json_and_msgpack_nodes_share_broadcasts(true).await;
}
