//! Several socketgate nodes on a real `redis-server`: broadcasts (to all,
//! to rooms, except rooms, binary, volatile) and room operations reach
//! sockets on every node, `local()` stays local, one sender's messages
//! arrive in order, and a Redis restart costs only what was sent while it
//! was down.

mod common;

use std::time::Duration;

use common::bus::Node;
use common::redis::RedisServer;
use common::sio::config;
use common::{Ws, ws_event, ws_send};
use socketgate::RedisConfig;
use socketgate::socketio::Payload;
use tokio_tungstenite::tungstenite::Message as WsMessage;

async fn node(redis: &RedisServer) -> Node {
    node_with(RedisConfig::new(redis.url())).await
}

async fn node_with(bus: RedisConfig) -> Node {
    // A heartbeat slow enough for raw clients that do not read while the
    // test waits on something else.
    let mut cfg = config();
    cfg.engine = cfg.engine.ping_interval(Duration::from_secs(10));
    Node::start(bus, cfg, None).await
}

/// `n` nodes, each subscribed (every node counts all of them).
async fn cluster(redis: &RedisServer, n: usize) -> Vec<Node> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(node(redis).await);
    }
    for node in &nodes {
        node.sees(n).await;
    }
    nodes
}

/// The next event's JSON (pings answered on the way).
async fn next(ws: &mut Ws) -> serde_json::Value {
    let text = ws_event(ws).await;
    serde_json::from_str(text.strip_prefix("42").unwrap_or_else(|| panic!("{text}"))).unwrap()
}

/// One raw client on each of three nodes.
async fn one_client_each(nodes: &[Node]) -> [Ws; 3] {
    let (a, _) = nodes[0].server.ws_joined().await;
    let (b, _) = nodes[1].server.ws_joined().await;
    let (c, _) = nodes[2].server.ws_joined().await;
    [a, b, c]
}

/// The client joins `room` through the contract's `join` (acked).
async fn join(ws: &mut Ws, room: &str) {
    ws_send(ws, &format!("421[\"join\",\"{room}\"]")).await;
    assert_eq!(ws_event(ws).await, format!("431[\"{room}\"]"));
}

/// A broadcast to everyone from `from`: each client's next event is it,
/// which proves nothing else reached them before.
async fn marker(from: &Node, clients: &mut [&mut Ws], n: u32) {
    from.server.io.emit("marker", &n).unwrap();
    for ws in clients.iter_mut() {
        assert_eq!(next(ws).await, serde_json::json!(["marker", n]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_every_node_and_local_ones_stay() {
    let redis = RedisServer::start().await;
    let nodes = cluster(&redis, 3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let [mut wa, mut wb, mut wc] = one_client_each(&nodes).await;
    join(&mut wb, "r").await;

    // To all, from a node with one client.
    a.server.io.emit("all", &1).unwrap();
    for ws in [&mut wa, &mut wb, &mut wc] {
        assert_eq!(next(ws).await, serde_json::json!(["all", 1]));
    }
    // To a room whose only member is on another node.
    c.server.io.to("r").emit("room", &2).unwrap();
    assert_eq!(next(&mut wb).await, serde_json::json!(["room", 2]));
    marker(a, &mut [&mut wa, &mut wb, &mut wc], 1).await;
    // Except that room.
    a.server
        .io
        .of("/")
        .unwrap()
        .except("r")
        .emit("except", &3)
        .unwrap();
    assert_eq!(next(&mut wa).await, serde_json::json!(["except", 3]));
    assert_eq!(next(&mut wc).await, serde_json::json!(["except", 3]));
    marker(a, &mut [&mut wa, &mut wb, &mut wc], 2).await;
    // Binary, nested.
    let mut payload = Payload::new().bin(vec![1u8, 2, 3]);
    let nested = payload.attach(vec![4u8]);
    payload = payload.arg(serde_json::json!({ "file": nested }));
    b.server
        .io
        .of("/")
        .unwrap()
        .emit_payload("bin", &payload)
        .unwrap();
    for ws in [&mut wa, &mut wb, &mut wc] {
        let text = ws_event(ws).await;
        assert_eq!(
            text,
            "452-[\"bin\",{\"_placeholder\":true,\"num\":0},{\"file\":{\"_placeholder\":true,\"num\":1}}]"
        );
        for want in [vec![1u8, 2, 3], vec![4u8]] {
            match common::ws_next(ws).await {
                Some(WsMessage::Binary(b)) => assert_eq!(b.as_ref(), want.as_slice()),
                other => panic!("{other:?}"),
            }
        }
    }
    // Volatile: the clients keep up, so they get it.
    a.server
        .io
        .of("/")
        .unwrap()
        .all()
        .volatile()
        .emit("v", &4)
        .unwrap();
    for ws in [&mut wa, &mut wb, &mut wc] {
        assert_eq!(next(ws).await, serde_json::json!(["v", 4]));
    }
    // `local()`: this node only.
    a.server
        .io
        .of("/")
        .unwrap()
        .all()
        .local()
        .emit("local", &5)
        .unwrap();
    assert_eq!(next(&mut wa).await, serde_json::json!(["local", 5]));
    marker(c, &mut [&mut wa, &mut wb, &mut wc], 3).await;

    let stats = a.bus.stats();
    assert!(stats.up, "{stats:?}");
    assert_eq!(stats.unpublished, 0, "{stats:?}");
    assert_eq!(stats.malformed, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_senders_messages_arrive_in_order_on_every_node() {
    let redis = RedisServer::start().await;
    let nodes = cluster(&redis, 2).await;
    let (mut wb, _) = nodes[1].server.ws_joined().await;
    for i in 0..1000 {
        nodes[0].server.io.emit("seq", &i).unwrap();
    }
    for i in 0..1000 {
        assert_eq!(next(&mut wb).await, serde_json::json!(["seq", i]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_operations_reach_sockets_on_every_node() {
    let redis = RedisServer::start().await;
    let nodes = cluster(&redis, 3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let [mut wa, mut wb, mut wc] = one_client_each(&nodes).await;
    join(&mut wb, "r").await;

    // Everyone in "r" (only b, on node B) joins "team", from node A.
    a.server.io.of("/").unwrap().to("r").join("team");
    // ...and everyone (a, b and c) joins "all-of-us".
    c.server.io.of("/").unwrap().all().join("all-of-us");
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    let member = |node: &Node, room: &str| {
        node.server.io.of("/").unwrap().sockets()[0]
            .rooms()
            .iter()
            .any(|r| &**r == room)
    };
    while !(member(b, "team")
        && member(a, "all-of-us")
        && member(b, "all-of-us")
        && member(c, "all-of-us"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "remote joins did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!member(a, "team") && !member(c, "team"));
    c.server.io.to("team").emit("team", &1).unwrap();
    assert_eq!(next(&mut wb).await, serde_json::json!(["team", 1]));
    marker(a, &mut [&mut wa, &mut wb, &mut wc], 1).await;

    // Leave, from another node.
    b.server.io.of("/").unwrap().all().leave("all-of-us");
    while member(a, "all-of-us") || member(c, "all-of-us") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "remote leaves did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Disconnect the room's sockets from node C: b gets its DISCONNECT.
    c.server.io.of("/").unwrap().to("team").disconnect_sockets();
    assert_eq!(ws_event(&mut wb).await, "41");
    marker(a, &mut [&mut wa, &mut wc], 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_only_what_was_sent_while_it_was_down() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let nodes = cluster(&redis, 3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (mut wa, _) = a.server.ws_joined().await;
    let (mut wb, _) = b.server.ws_joined().await;
    let (mut wc, _) = c.server.ws_joined().await;
    marker(a, &mut [&mut wa, &mut wb, &mut wc], 1).await;

    redis.kill().await;
    common::until("node A to see the bus down", || !a.bus.stats().up).await;
    // Local traffic goes on, and what could not be published is counted.
    a.server.io.emit("while-down", &1).unwrap();
    assert_eq!(next(&mut wa).await, serde_json::json!(["while-down", 1]));
    common::until("the unpublished count", || a.bus.stats().unpublished >= 1).await;
    // What can only go to other nodes says it could not.
    let refused = a.server.io.of("/").unwrap().server_side_emit("hello", &1);
    assert!(
        matches!(refused, Err(socketgate::socketio::EmitError::Cluster(_))),
        "{refused:?}"
    );

    let _redis = RedisServer::start_on(port).await;
    let back = tokio::time::Instant::now();
    // Within 5 s of Redis being back, a broadcast from A reaches B and C.
    let mut n = 100;
    loop {
        a.server.io.emit("after", &n).unwrap();
        let got = tokio::time::timeout(Duration::from_millis(200), next(&mut wb)).await;
        match got {
            Ok(v) if v[0] == "after" => break,
            _ => {}
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "the cluster did not heal within 5 s"
        );
        n += 1;
    }
    println!("healed {:?} after Redis was back", back.elapsed());
    // C is subscribed again too: a marker from B reaches it (B may take a
    // moment more to see Redis back: until then it drops, and counts).
    let mut n = 200;
    loop {
        b.server.io.emit("marker", &n).unwrap();
        let got = tokio::time::timeout(Duration::from_millis(200), next(&mut wc)).await;
        if got.is_ok_and(|v| v[0] == "marker") {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "C did not hear from B within 5 s"
        );
        n += 1;
    }
    let stats = a.bus.stats();
    assert!(stats.up && stats.unpublished >= 1, "{stats:?}");
}

/// Runs one `@socket.io/redis-emitter` call.
async fn emitter(redis: &RedisServer, args: &[&str]) {
    let url = redis.url();
    let mut all = vec!["emitter", url.as_str()];
    all.extend_from_slice(args);
    common::run_node("cluster-node.mjs", &all).await;
}

/// A Node socket.io 4.8 server on `@socket.io/redis-adapter`; its port.
async fn node_server(redis: &RedisServer) -> (tokio::process::Child, u16) {
    common::bus::node_socketio_server(redis, "json").await
}

/// A raw client of the Node server, joined to `/`.
async fn node_client(port: u16) -> Ws {
    let mut ws = common::ws_connect(&format!(
        "ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    ))
    .await;
    assert!(common::ws_text(&mut ws).await.starts_with("0{"));
    ws_send(&mut ws, "40").await;
    assert!(ws_event(&mut ws).await.starts_with("40{\"sid\":"));
    ws
}

/// Sends an event with ack id `id` and waits for the ack (events that
/// arrive meanwhile are returned too).
async fn call(ws: &mut Ws, id: u32, event: &str, arg: serde_json::Value) -> Vec<serde_json::Value> {
    ws_send(ws, &format!("42{id}[\"{event}\",{arg}]")).await;
    let mut others = Vec::new();
    loop {
        let text = ws_event(ws).await;
        if text.starts_with(&format!("43{id}")) {
            return others;
        }
        if let Some(binary) = text.strip_prefix("45") {
            // A binary event: its attachments follow.
            let (count, json) = binary.split_once('-').unwrap();
            for _ in 0..count.parse::<usize>().unwrap() {
                common::ws_next(ws).await;
            }
            others.push(serde_json::from_str(json).unwrap());
            continue;
        }
        others.push(serde_json::from_str(text.strip_prefix("42").unwrap()).unwrap());
    }
}

/// Sends an event with ack id `id` and returns the ack's first argument
/// (other events on the way are dropped).
async fn call_ack(ws: &mut Ws, id: u32, event: &str, arg: serde_json::Value) -> serde_json::Value {
    if arg.is_null() {
        ws_send(ws, &format!("42{id}[\"{event}\"]")).await;
    } else {
        ws_send(ws, &format!("42{id}[\"{event}\",{arg}]")).await;
    }
    loop {
        let text = ws_event(ws).await;
        if let Some(ack) = text.strip_prefix(&format!("43{id}")) {
            return serde_json::from_str::<serde_json::Value>(ack).unwrap()[0].clone();
        }
    }
}

/// JSON strings, sorted.
fn sorted_texts(values: &[serde_json::Value]) -> Vec<String> {
    let mut texts: Vec<String> = values
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    texts
}

/// The other nodes' answers to a broadcast with acks, sorted.
fn remote_answers(results: &socketgate::socketio::AckResults) -> Vec<String> {
    let mut replies: Vec<String> = results
        .remote_replies
        .iter()
        .map(|p| p.args[0].as_str().unwrap().to_owned())
        .collect();
    replies.sort();
    replies
}

async fn wait_servers(node: &Node, n: usize) {
    node.sees(n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_emitter_reaches_clients_on_every_node() {
    let redis = RedisServer::start().await;
    let nodes = cluster(&redis, 2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (mut wa, _) = a.server.ws_joined().await;
    let (mut wb, _) = b.server.ws_joined().await;
    ws_send(&mut wa, "421[\"join\",\"r\"]").await;
    assert_eq!(ws_event(&mut wa).await, "431[\"r\"]");

    emitter(&redis, &["emit"]).await;
    for ws in [&mut wa, &mut wb] {
        assert_eq!(
            next(ws).await,
            serde_json::json!(["from-emitter", { "n": 1 }])
        );
    }
    emitter(&redis, &["emit-room", "r"]).await;
    assert_eq!(
        next(&mut wa).await,
        serde_json::json!(["from-emitter", { "n": 2 }])
    );
    marker(b, &mut [&mut wa, &mut wb], 1).await;
    emitter(&redis, &["emit-binary"]).await;
    for ws in [&mut wa, &mut wb] {
        assert_eq!(
            ws_event(ws).await,
            "452-[\"from-emitter\",{\"_placeholder\":true,\"num\":0},{\"nested\":{\"_placeholder\":true,\"num\":1}}]"
        );
        for want in [vec![7u8, 8, 9], vec![10u8]] {
            match common::ws_next(ws).await {
                Some(WsMessage::Binary(b)) => assert_eq!(b.as_ref(), want.as_slice()),
                other => panic!("{other:?}"),
            }
        }
    }
    emitter(&redis, &["sockets-join", "r", "r2"]).await;
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    let socket = a.server.io.of("/").unwrap().sockets()[0].clone();
    while !socket.rooms().iter().any(|r| &**r == "r2") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "socketsJoin did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.server.io.to("r2").emit("r2", &1).unwrap();
    assert_eq!(next(&mut wa).await, serde_json::json!(["r2", 1]));
    emitter(&redis, &["sockets-leave", "r", "r2"]).await;
    while socket.rooms().iter().any(|r| &**r == "r2") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "socketsLeave did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    emitter(&redis, &["disconnect", "r"]).await;
    assert_eq!(ws_event(&mut wa).await, "41");
    marker(b, &mut [&mut wb], 2).await;
    assert_eq!(a.bus.stats().malformed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_socket_io_server_and_socketgate_nodes_share_a_cluster() {
    let redis = RedisServer::start().await;
    let nodes = cluster(&redis, 2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (_node, port) = node_server(&redis).await;
    wait_servers(a, 3).await;
    let mut wn = node_client(port).await;
    let (mut wa, _) = a.server.ws_joined().await;
    let (mut wb, _) = b.server.ws_joined().await;

    // socketgate → Node.
    a.server.io.emit("from-rust", &1).unwrap();
    for ws in [&mut wn, &mut wa, &mut wb] {
        assert_eq!(next(ws).await, serde_json::json!(["from-rust", 1]));
    }
    // Node → socketgate, binary included.
    let own = call(
        &mut wn,
        1,
        "bcast",
        serde_json::json!({ "event": "from-node", "data": { "x": 1 }, "withBinary": true }),
    )
    .await;
    assert!(own.is_empty() || own[0][0] == "from-node", "{own:?}");
    for ws in [&mut wa, &mut wb] {
        assert_eq!(
            ws_event(ws).await,
            "451-[\"from-node\",{\"x\":1},{\"_placeholder\":true,\"num\":0}]"
        );
        match common::ws_next(ws).await {
            Some(WsMessage::Binary(b)) => assert_eq!(b.as_ref(), [1, 2, 3]),
            other => panic!("{other:?}"),
        }
    }
    // Rooms both ways: b (socketgate) and n (Node) in "mix".
    ws_send(&mut wb, "421[\"join\",\"mix\"]").await;
    assert_eq!(ws_event(&mut wb).await, "431[\"mix\"]");
    call(&mut wn, 2, "join", serde_json::json!("mix")).await;
    call(
        &mut wn,
        3,
        "bcast",
        serde_json::json!({ "to": "mix", "event": "mix", "data": "n" }),
    )
    .await;
    assert_eq!(next(&mut wb).await, serde_json::json!(["mix", "n"]));
    a.server.io.to("mix").emit("mix", &"a").unwrap();
    // n got its own "mix" (it is in the room) before the ack, or after it.
    loop {
        let v = next(&mut wn).await;
        if v == serde_json::json!(["mix", "a"]) {
            break;
        }
        assert_eq!(v, serde_json::json!(["mix", "n"]));
    }
    assert_eq!(next(&mut wb).await, serde_json::json!(["mix", "a"]));
    marker(a, &mut [&mut wa, &mut wb], 1).await;
    // Node's requests get socketgate's answers: fetchSockets sees b...
    let b_id = b.server.io.of("/").unwrap().sockets()[0].id().to_string();
    b.server.io.of("/").unwrap().sockets()[0].set_data(serde_json::json!({ "user": "b" }));
    let fetched = call_ack(&mut wn, 10, "fetch", serde_json::json!({ "room": "mix" })).await;
    let fetched = fetched.as_array().unwrap();
    assert_eq!(fetched.len(), 2, "{fetched:?}");
    let fb = fetched
        .iter()
        .find(|s| s["id"] == b_id.as_str())
        .unwrap_or_else(|| panic!("{fetched:?}"));
    let mut rooms = vec![b_id.clone(), "mix".to_owned()];
    rooms.sort();
    assert_eq!(fb["rooms"], serde_json::json!(rooms));
    assert_eq!(fb["data"], serde_json::json!({ "user": "b" }));
    assert_eq!(fb["address"], "127.0.0.1");
    assert_eq!(fb["auth"], serde_json::json!({}));
    // ...allRooms includes socketgate's rooms...
    let rooms = call_ack(&mut wn, 11, "all-rooms", serde_json::Value::Null).await;
    assert!(
        rooms
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("mix")),
        "{rooms}"
    );
    assert!(
        rooms.as_array().unwrap().contains(&serde_json::json!(b_id)),
        "{rooms}"
    );
    // ...and a broadcast with acks from Node gets b's answer (n answers its
    // own poll too).
    ws_send(
        &mut wn,
        "4212[\"poll\",{\"room\":\"mix\",\"timeoutMs\":3000}]",
    )
    .await;
    let answer_poll = |text: &str| -> Option<String> {
        let rest = text.strip_prefix("42")?;
        let (id, json) = rest.split_at(rest.find('[')?);
        (json == "[\"poll\",\"ready?\"]").then(|| id.to_owned())
    };
    let id = answer_poll(&ws_event(&mut wb).await).expect("b is polled");
    ws_send(&mut wb, &format!("43{id}[\"yes-b\"]")).await;
    let report = loop {
        let text = ws_event(&mut wn).await;
        if let Some(id) = answer_poll(&text) {
            ws_send(&mut wn, &format!("43{id}[\"yes-n\"]")).await;
        } else if let Some(ack) = text.strip_prefix("4312") {
            break serde_json::from_str::<serde_json::Value>(ack).unwrap()[0].clone();
        }
    };
    assert_eq!(
        report,
        serde_json::json!({ "error": null, "responses": ["yes-b", "yes-n"] })
    );

    // And socketgate's requests get Node's answers: fetchSockets from A
    // sees n, and a broadcast with acks from A gets n's answer.
    let found = a
        .server
        .io
        .of("/")
        .unwrap()
        .to("mix")
        .fetch_sockets()
        .await
        .unwrap();
    assert_eq!(found.silent_nodes, 0);
    assert_eq!(found.items.len(), 2, "{:?}", found.items);
    let poll = tokio::spawn({
        let ns = a.server.io.of("/").unwrap();
        async move {
            ns.to("mix")
                .timeout(Duration::from_millis(3000))
                .emit_with_ack("poll", &"ready?")
                .await
                .unwrap()
        }
    });
    for (ws, answer) in [(&mut wn, "yes-n"), (&mut wb, "yes-b")] {
        let id = loop {
            if let Some(id) = answer_poll(&ws_event(ws).await) {
                break id;
            }
        };
        ws_send(ws, &format!("43{id}[\"{answer}\"]")).await;
    }
    let results = poll.await.unwrap();
    let replies = remote_answers(&results);
    assert_eq!(replies, ["yes-b", "yes-n"]);
    assert_eq!((results.remote_missing, results.silent_nodes), (0, 0));

    // A room operation from Node reaches socketgate's sockets...
    call(
        &mut wn,
        4,
        "rooms-op",
        serde_json::json!({ "op": "join", "from": "mix", "room": "mix2" }),
    )
    .await;
    let socket_b = b.server.io.of("/").unwrap().sockets()[0].clone();
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    while !socket_b.rooms().iter().any(|r| &**r == "mix2") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Node's socketsJoin did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...and one from socketgate reaches Node's: n joins "rj", then a
    // broadcast from n to "rj" comes back to n.
    a.server.io.of("/").unwrap().to("mix").join("rj");
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let got = call(
            &mut wn,
            5,
            "bcast",
            serde_json::json!({ "to": "rj", "event": "rj", "data": 0 }),
        )
        .await;
        let got = if got.is_empty() {
            tokio::time::timeout(Duration::from_millis(200), next(&mut wn))
                .await
                .ok()
        } else {
            got.into_iter().next()
        };
        if got.is_some_and(|v| v == serde_json::json!(["rj", 0])) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "socketgate's join did not reach Node"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_acks_and_rooms_span_the_nodes() {
    let redis = RedisServer::start().await;
    let nodes = cluster(&redis, 3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (mut wb, b_id) = b.server.ws_joined().await;
    let (mut wc, c_id) = c.server.ws_joined().await;
    let (_wc2, c2_id) = c.server.ws_joined().await;
    ws_send(&mut wb, "421[\"join\",\"r\"]").await;
    assert_eq!(ws_event(&mut wb).await, "431[\"r\"]");
    ws_send(&mut wc, "421[\"join\",\"r\"]").await;
    assert_eq!(ws_event(&mut wc).await, "431[\"r\"]");
    b.server.io.of("/").unwrap().sockets()[0].set_data(serde_json::json!({ "n": "b" }));

    // fetchSockets from A (which has no socket) finds them on B and C.
    let ns = a.server.io.of("/").unwrap();
    let found = ns.to("r").fetch_sockets().await.unwrap();
    assert_eq!(found.silent_nodes, 0);
    let mut ids: Vec<String> = found.items.iter().map(|s| s.id().to_string()).collect();
    ids.sort();
    let mut want = vec![b_id.clone(), c_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    let fb = found
        .items
        .iter()
        .find(|s| s.id().as_str() == b_id)
        .unwrap();
    assert_eq!(fb.data(), &serde_json::json!({ "n": "b" }));
    assert_eq!(fb.handshake()["address"], "127.0.0.1");
    // ...and what is done to a fetched socket reaches it on its node.
    fb.emit("direct", &1).unwrap();
    assert_eq!(next(&mut wb).await, serde_json::json!(["direct", 1]));
    fb.join("fetched");
    let socket_b = b.server.io.of("/").unwrap().sockets()[0].clone();
    common::until("the remote join", || {
        socket_b.rooms().iter().any(|r| &**r == "fetched")
    })
    .await;

    // allRooms spans the nodes.
    let rooms = ns.all_rooms().await.unwrap();
    for room in ["r", "fetched", b_id.as_str(), c_id.as_str(), c2_id.as_str()] {
        assert!(
            rooms.items.iter().any(|r| &**r == room),
            "{room}: {:?}",
            rooms.items
        );
    }

    // A broadcast with acks from A: b and c answer, c2 does not.
    let poll = tokio::spawn({
        let ns = ns.clone();
        async move {
            ns.all()
                .timeout(Duration::from_millis(1500))
                .emit_with_ack("poll", &"ready?")
                .await
                .unwrap()
        }
    });
    for (ws, answer) in [(&mut wb, "yes-b"), (&mut wc, "yes-c")] {
        let text = ws_event(ws).await;
        let rest = text.strip_prefix("42").unwrap();
        let (id, json) = rest.split_at(rest.find('[').unwrap());
        assert_eq!(json, "[\"poll\",\"ready?\"]");
        ws_send(ws, &format!("43{id}[\"{answer}\"]")).await;
    }
    let results = poll.await.unwrap();
    let replies = remote_answers(&results);
    assert_eq!(replies, ["yes-b", "yes-c"]);
    assert_eq!(results.remote_missing, 1, "c2 did not answer");
    assert_eq!(results.silent_nodes, 0);
    assert!(
        results.replies.is_empty() && results.missing.is_empty(),
        "no socket on A"
    );

    // A listener that never answers (it counts as a node) does not make a
    // request hang: it ends at its deadline and says one node was silent.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut mute = client.get_async_pubsub().await.unwrap();
    mute.subscribe("socket.io-request#/#").await.unwrap();
    wait_servers(a, 4).await;
    let started = tokio::time::Instant::now();
    let found = ns
        .all()
        .timeout(Duration::from_millis(500))
        .fetch_sockets()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(found.silent_nodes, 1);
    assert_eq!(
        found.items.len(),
        3,
        "b, c and c2 still answered: {found:?}"
    );
    drop(mute);

    // A fetched socket leaves a room, and is disconnected, on its node.
    fb.leave("fetched");
    common::until("the remote leave", || {
        !socket_b.rooms().iter().any(|r| &**r == "fetched")
    })
    .await;
    fb.disconnect();
    assert_eq!(ws_event(&mut wb).await, "41");
}

/// Hostile or broken messages on every channel: counted as malformed and
/// dropped; the nodes keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bus_input_is_counted_and_dropped() {
    let redis = RedisServer::start().await;
    let nodes = cluster(&redis, 2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (mut wa, _) = a.server.ws_joined().await;
    let (mut wb, _) = b.server.ws_joined().await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // Nested 10,000 arrays deep, an array claiming 4 billion items, a map
    // claiming as many, truncated input, a broadcast of the wrong shape,
    // and requests that are not what they say.
    let mut deep = vec![0x91u8; 10_000];
    deep.push(0xc0);
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("socket.io#/#", deep),
        ("socket.io#/#", vec![0xdd, 0xff, 0xff, 0xff, 0xff]),
        (
            "socket.io#/#",
            vec![0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, b'x'],
        ),
        ("socket.io#/#", vec![0x93, 0xa1]),
        ("socket.io#/#", b"\x93\x01\x02\x03".to_vec()),
        ("socket.io#/#room#", b"not msgpack at all".to_vec()),
        ("socket.io-request#/#", br#"{"type":2,"opts":5}"#.to_vec()),
        ("socket.io-request#/#", br#"{"type":99}"#.to_vec()),
        ("socket.io-request#/#", b"{".to_vec()),
        ("socket.io-response#/#", br#"{"requestId":7}"#.to_vec()),
    ];
    let count = bad.len() as u64;
    for (channel, payload) in bad {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    common::until("every bad message to be counted on both nodes", || {
        a.bus.stats().malformed >= count && b.bus.stats().malformed >= count
    })
    .await;
    // Nothing reached the clients, and the cluster still works.
    marker(a, &mut [&mut wa, &mut wb], 1).await;
    marker(b, &mut [&mut wa, &mut wb], 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_events_reach_the_other_nodes_and_come_back_answered() {
    let redis = RedisServer::start().await;
    let nodes = cluster(&redis, 3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for (node, name) in [(a, "a"), (b, "b"), (c, "c")] {
        let seen = seen.clone();
        node.server
            .io
            .of("/")
            .unwrap()
            .on_server_side("hello", move |args, ack| {
                seen.lock().unwrap().push((name, args.args.clone()));
                if let Some(ack) = ack {
                    ack.send(format!("{name}:{}", args.args[0]));
                }
            });
    }
    let ns = a.server.io.of("/").unwrap();
    // Without an ack: B and C run their handler, A (the sender) does not.
    ns.server_side_emit("hello", &1).unwrap();
    common::until("B and C to handle it", || seen.lock().unwrap().len() == 2).await;
    let mut names: Vec<&str> = seen.lock().unwrap().iter().map(|(n, _)| *n).collect();
    names.sort();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(seen.lock().unwrap()[0].1, [serde_json::json!(1)]);
    // With an ack: one answer per other node.
    let answers = ns
        .server_side_emit_with_ack("hello", &2, Duration::from_secs(2))
        .await
        .unwrap();
    let answers = sorted_texts(&answers.items);
    assert_eq!(answers, ["b:2", "c:2"]);

    // A Node server in the cluster answers and asks too.
    let (_node, port) = node_server(&redis).await;
    wait_servers(a, 4).await;
    let answers = ns
        .server_side_emit_with_ack("hello", &3, Duration::from_secs(2))
        .await
        .unwrap();
    let answers = sorted_texts(&answers.items);
    assert_eq!(answers, ["b:3", "c:3", "node:3"]);
    let mut wn = node_client(port).await;
    let report = call_ack(&mut wn, 1, "sse", serde_json::json!(4)).await;
    assert_eq!(
        report,
        serde_json::json!({ "error": null, "responses": ["a:4", "b:4", "c:4"] })
    );
}

/// The real socket.io-client 4.8, one client per node, in each transport
/// mode: room broadcasts with binary, except, and one sender's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_clients_spread_over_three_nodes() {
    let redis = RedisServer::start().await;
    let nodes = cluster(&redis, 3).await;
    let bases: Vec<String> = nodes.iter().map(|n| n.server.base()).collect();
    for mode in ["polling", "websocket", "default"] {
        let v = common::run_node(
            "cluster-client.mjs",
            &[mode, &bases[0], &bases[1], &bases[2]],
        )
        .await;
        if mode != "default" {
            assert_eq!(v["transport"], mode, "{v}");
        }
    }
    for node in &nodes {
        let stats = node.bus.stats();
        assert_eq!((stats.unpublished, stats.malformed), (0, 0), "{stats:?}");
    }
}

/// Two clusters on one Redis, kept apart by their channel prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_prefix_keeps_clusters_apart() {
    let redis = RedisServer::start().await;
    let mut app2 = RedisConfig::new(redis.url());
    app2.prefix = "app2".to_owned();
    let (a, b) = (node_with(app2.clone()).await, node_with(app2).await);
    let other = node(&redis).await;
    let client = redis::Client::open(redis.url()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    common::until_async("both app2 nodes to subscribe", || {
        let mut conn = conn.clone();
        async move {
            let counts: Vec<(String, usize)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("app2-request#/#")
                .arg("socket.io-request#/#")
                .query_async(&mut conn)
                .await
                .unwrap();
            counts[0].1 == 2 && counts[1].1 == 1
        }
    })
    .await;
    let (mut wb, _) = b.server.ws_joined().await;
    let (mut wo, _) = other.server.ws_joined().await;
    a.server.io.emit("app2", &1).unwrap();
    assert_eq!(next(&mut wb).await, serde_json::json!(["app2", 1]));
    // The node on the default prefix got nothing: its next event is its
    // own marker.
    other.server.io.emit("marker", &2).unwrap();
    assert_eq!(next(&mut wo).await, serde_json::json!(["marker", 2]));
}
/// Binary goes between nodes as bytes: to a server-side handler, and to a
/// socket found on another node by `fetch_sockets`.
#[tokio::test]
async fn binary_reaches_other_nodes_handlers_and_fetched_sockets() {
    use socketgate::socketio::Payload;
    let redis = RedisServer::start().await;
    let nodes = cluster(&redis, 2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    b.server
        .io
        .of("/")
        .unwrap()
        .on_server_side("file", move |args, _| {
            let _ = tx.send(args);
        });
    let ns = a.server.io.of("/").unwrap();
    let sent = Payload::new().arg("name").bin(vec![0u8, 1, 2, 255]);
    ns.server_side_emit_payload("file", &sent).unwrap();
    let got = tokio::time::timeout(common::DEADLINE, rx.recv())
        .await
        .expect("B's handler ran")
        .unwrap();
    assert_eq!(got.args[0], "name");
    assert_eq!(
        got.binary(1).map(|b| b.to_vec()),
        Some(vec![0u8, 1, 2, 255])
    );

    // A client on B, found from A, sent binary from A.
    let (mut ws, id) = b.server.ws_joined().await;
    let found = ns.all().fetch_sockets().await.unwrap();
    let remote = found
        .items
        .iter()
        .find(|s| s.id().as_str() == id)
        .expect("B's socket found from A");
    remote
        .emit_payload("file", &Payload::new().bin(vec![9u8, 8]))
        .unwrap();
    let header = common::ws_event(&mut ws).await;
    assert!(
        header.starts_with(r#"451-["file",{"_placeholder":true,"num":0}"#),
        "{header}"
    );
    match common::ws_next(&mut ws).await {
        Some(WsMessage::Binary(b)) => assert_eq!(&b[..], &[9u8, 8]),
        other => panic!("the attachment: {other:?}"),
    }
}
