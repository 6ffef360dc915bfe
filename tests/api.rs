//! The HTTP API (`socketgate::api`) against real socket.io-client 4.x
//! receivers (tests/node/api-client.mjs): keys, error answers, emit to
//! rooms and with acks, binary arguments, join / leave / disconnect by room
//! and by socket id, the sockets listing, batches, and two nodes on a real
//! Redis.

mod common;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use common::redis::RedisServer;
use common::{DEADLINE, http, spawn_node};
use serde_json::{Value, json};
use socketgate::api::{self, ApiConfig};
use socketgate::socketio::SocketIo;
use socketgate::{RedisBus, RedisConfig};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const KEY: &str = "test-key-0123456789";

/// A server with the API in front of socket.io (`/` and `/custom`).
struct Server {
    addr: SocketAddr,
    io: SocketIo,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(api: ApiConfig) -> Server {
        Self::serve(SocketIo::new(common::sio::config()), api).await
    }

    async fn serve(io: SocketIo, api: ApiConfig) -> Server {
        io.ns("/custom", |_| {});
        let app = axum::Router::new()
            .merge(api::router(&io, api))
            .layer(io.layer());
        let (addr, task) = common::serve(app).await;
        Server { addr, io, task }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An API client with the right key in `Authorization: Bearer`.
    fn api(&self) -> Api {
        Api {
            base: self.base(),
            auth: Some(("authorization", format!("Bearer {KEY}"))),
        }
    }
}

/// Calls the API.
struct Api {
    base: String,
    auth: Option<(&'static str, String)>,
}

impl Api {
    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let req = match &self.auth {
            Some((name, value)) => req.header(*name, value),
            None => req,
        };
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
        (status, json)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, body.to_string()).await
    }

    async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        self.send(http().post(format!("{}{path}", self.base)).body(body))
            .await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(http().get(format!("{}{path}", self.base))).await
    }

    /// A call that must succeed; its `result`.
    async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.post(path, body.clone()).await;
        assert_eq!(status, 200, "{path} {body}: {answer}");
        answer["result"].clone()
    }
}

/// Asserts an error answer.
fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        answer.1
    );
}

/// socket.io-client sockets reporting what they get, each in its own
/// queue.
struct Receivers {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    queues: HashMap<String, VecDeque<Value>>,
    ids: HashMap<String, String>,
}

impl Receivers {
    /// Connects `clients` (see api-client.mjs) to `base` and waits until
    /// all are connected.
    async fn start(base: &str, clients: Value) -> Receivers {
        let mut child = spawn_node("api-client.mjs", &[base, &clients.to_string()]);
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut rx = Receivers {
            _child: child,
            lines,
            queues: HashMap::new(),
            ids: HashMap::new(),
        };
        loop {
            let line = rx.line().await;
            match line["type"].as_str() {
                Some("ready") => return rx,
                Some("connect") => {
                    let (name, id) = (line["client"].as_str(), line["id"].as_str());
                    rx.ids
                        .insert(name.unwrap().to_owned(), id.unwrap().to_owned());
                }
                _ => panic!("before all connected: {line}"),
            }
        }
    }

    async fn line(&mut self) -> Value {
        let line = tokio::time::timeout(DEADLINE, self.lines.next_line())
            .await
            .expect("a line from api-client.mjs in time")
            .unwrap()
            .expect("api-client.mjs ended");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
    }

    fn id(&self, client: &str) -> String {
        self.ids[client].clone()
    }

    /// The next thing `client` reported (an event or a disconnect).
    async fn next(&mut self, client: &str) -> Value {
        loop {
            if let Some(v) = self.queues.get_mut(client).and_then(VecDeque::pop_front) {
                return v;
            }
            let line = self.line().await;
            let who = line["client"].as_str().expect("a client's line").to_owned();
            self.queues.entry(who).or_default().push_back(line);
        }
    }

    /// The next event of `client`: `[event, …args]`.
    async fn event(&mut self, client: &str) -> Value {
        let line = self.next(client).await;
        assert_eq!(line["type"], "event", "{client}: {line}");
        let mut all = vec![line["event"].clone()];
        all.extend(line["args"].as_array().unwrap().iter().cloned());
        Value::from(all)
    }

    /// A marker emitted to everyone is each client's next event: nothing
    /// else reached them before it.
    async fn marker(&mut self, api: &Api, clients: &[&str], n: u32) {
        api.ok("/api/emit", json!({ "event": "marker", "args": [n] }))
            .await;
        for c in clients {
            assert_eq!(self.event(c).await, json!(["marker", n]), "{c}");
        }
    }
}

fn clients(names: &[&str]) -> Value {
    names.iter().map(|n| json!({ "name": n })).collect()
}

#[tokio::test]
async fn the_api_is_off_without_a_key() {
    let server = Server::start(ApiConfig::default()).await;
    let api = server.api();
    for path in ["/api/emit", "/api/batch", "/api", "/api/"] {
        let answer = api.post(path, json!({ "event": "x" })).await;
        assert_error(&answer, 404, "not_found");
    }
    assert_error(&api.get("/api/sockets").await, 404, "not_found");
    // An empty key is no key.
    let server = Server::start(ApiConfig::default().key("")).await;
    let answer = server
        .api()
        .post("/api/emit", json!({ "event": "x" }))
        .await;
    assert_error(&answer, 404, "not_found");
}

#[tokio::test]
async fn keys_are_checked_in_both_headers_and_errors_are_json() {
    let server = Server::start(ApiConfig::default().key("other-key").key(KEY)).await;
    let mut rx = Receivers::start(&server.base(), clients(&["a"])).await;
    let with = |auth: Option<(&'static str, &str)>| Api {
        base: server.base(),
        auth: auth.map(|(h, v)| (h, v.to_owned())),
    };
    let body = json!({ "event": "news", "args": [1] });
    for api in [
        with(None),
        with(Some(("authorization", "Bearer wrong"))),
        with(Some(("authorization", &format!("Bearer {KEY}x")))),
        with(Some(("authorization", KEY))),
        with(Some(("x-api-key", "wrong"))),
        with(Some(("x-api-key", ""))),
    ] {
        assert_error(
            &api.post("/api/emit", body.clone()).await,
            401,
            "unauthorized",
        );
        assert_error(&api.get("/api/sockets").await, 401, "unauthorized");
        // Without a key, even an unknown path says nothing more.
        assert_error(&api.get("/api/nothing").await, 401, "unauthorized");
    }
    // Nothing was sent: the client's next event is the first call's.
    for (n, api) in [
        with(Some(("authorization", &format!("Bearer {KEY}")))),
        with(Some(("authorization", &format!("bearer {KEY}")))),
        with(Some(("x-api-key", KEY))),
        with(Some(("x-api-key", "other-key"))),
    ]
    .into_iter()
    .enumerate()
    {
        let answer = api
            .post("/api/emit", json!({ "event": "news", "args": [n] }))
            .await;
        assert_eq!(answer, (200, json!({ "result": {} })));
        assert_eq!(rx.event("a").await, json!(["news", n]));
    }

    let api = server.api();
    assert_error(&api.get("/api/nothing").await, 404, "not_found");
    let answer = api.get("/api/emit").await;
    assert_error(&answer, 405, "method_not_allowed");
    let res = http()
        .delete(format!("{}/api/sockets", server.base()))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET");
    assert_error(
        &api.post_raw("/api/emit", "{not json").await,
        400,
        "invalid_json",
    );
    assert_error(&api.post_raw("/api/emit", "").await, 400, "invalid_json");
    let answer = api
        .post("/api/emit", json!({ "event": "x", "rooms": ["r", 7] }))
        .await;
    assert_error(&answer, 400, "invalid_field");
    assert_eq!(answer.1["error"]["message"], "rooms[1]: a string expected");
    let answer = api
        .post("/api/emit", json!({ "event": "x", "romos": ["r"] }))
        .await;
    assert_eq!(answer.1["error"]["message"], "romos: unknown field");
    let answer = api
        .post("/api/emit", json!({ "event": "disconnect" }))
        .await;
    assert_error(&answer, 400, "reserved_event");
    let answer = api
        .post(
            "/api/emit",
            json!({ "event": "x", "args": [{ "f": { "_base64": "@@@" } }] }),
        )
        .await;
    assert_error(&answer, 400, "invalid_base64");
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("args[0].f._base64")
    );
    let answer = api
        .post("/api/emit", json!({ "namespace": "/nope", "event": "x" }))
        .await;
    assert_error(&answer, 404, "unknown_namespace");
    let answer = api.post("/api/join", json!({ "join": "r" })).await;
    assert_error(&answer, 400, "missing_selector");
    // One byte over the default 1 MiB, declared or streamed.
    let big = format!(
        "{{\"event\":\"x\",\"args\":[\"{}\"]}}",
        "a".repeat(1024 * 1024)
    );
    assert_error(
        &api.post_raw("/api/emit", big.clone()).await,
        413,
        "payload_too_large",
    );
    // Streamed: no length declared.
    let chunks: Vec<_> = big
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok::<_, std::io::Error>(http_body::Frame::data(bytes::Bytes::copy_from_slice(c))))
        .collect();
    let stream = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
    let answer = api.post_raw("/api/emit", reqwest::Body::wrap(stream)).await;
    assert_error(&answer, 413, "payload_too_large");
    // None of the refused calls reached the client.
    rx.marker(&api, &["a"], 1).await;
}

#[tokio::test]
async fn emit_reaches_rooms_except_rooms_and_namespaces_with_binary_as_binary() {
    let server = Server::start(ApiConfig::default().key(KEY)).await;
    let api = server.api();
    let mut rx = Receivers::start(
        &server.base(),
        json!([{ "name": "a" }, { "name": "b", "transport": "polling" }, { "name": "c", "nsp": "/custom" }]),
    )
    .await;
    let a = rx.id("a");
    api.ok("/api/join", json!({ "sockets": [a], "join": "r" }))
        .await;

    let args = json!(["hi", { "_base64": "AQID" }, { "nested": [{ "_base64": "/w==" }], "n": 1 }]);
    api.ok(
        "/api/emit",
        json!({ "rooms": ["r"], "event": "news", "args": args }),
    )
    .await;
    let binary = |hex: &str| json!({ "$binary": hex, "$class": "Buffer" });
    let expected = json!(["news", "hi", binary("010203"), { "nested": [binary("ff")], "n": 1 }]);
    assert_eq!(rx.event("a").await, expected);
    rx.marker(&api, &["a", "b"], 1).await;

    api.ok(
        "/api/emit",
        json!({ "except": "r", "event": "not-r", "args": [{ "_base64": "AA" }] }),
    )
    .await;
    assert_eq!(rx.event("b").await, json!(["not-r", binary("00")]));
    // To one socket by its id, volatile.
    let b = rx.id("b");
    api.ok(
        "/api/emit",
        json!({ "sockets": [b], "event": "direct", "volatile": true }),
    )
    .await;
    assert_eq!(rx.event("b").await, json!(["direct"]));
    rx.marker(&api, &["a", "b"], 2).await;

    // Another namespace: only its socket.
    api.ok(
        "/api/emit",
        json!({ "namespace": "/custom", "event": "custom", "args": [[1, 2]] }),
    )
    .await;
    assert_eq!(rx.event("c").await, json!(["custom", [1, 2]]));
    rx.marker(&api, &["a", "b"], 3).await;
}

#[tokio::test]
async fn emit_with_acks_gathers_answers_and_counts_the_silent() {
    let server = Server::start(ApiConfig::default().key(KEY)).await;
    let api = server.api();
    let mut rx = Receivers::start(
        &server.base(),
        json!([{ "name": "a" }, { "name": "b", "transport": "polling" }, { "name": "quiet", "ack": "none" }]),
    )
    .await;
    let started = tokio::time::Instant::now();
    let result = api
        .ok(
            "/api/emit",
            json!({ "event": "poll", "args": ["q", { "_base64": "AQID" }], "ack_timeout_ms": 1500 }),
        )
        .await;
    // It waited for the one that never answers.
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(result["missing"], 1, "{result}");
    assert_eq!(result["silent_nodes"], 0, "{result}");
    let mut acks = result["acks"].as_array().unwrap().clone();
    acks.sort_by_key(|a| a[0].as_str().unwrap().to_owned());
    // Each answered with its name and the arguments, binary included.
    assert_eq!(
        acks,
        vec![
            json!(["a", "q", { "_base64": "AQID" }]),
            json!(["b", "q", { "_base64": "AQID" }]),
        ]
    );
    for c in ["a", "b", "quiet"] {
        let line = rx.next(c).await;
        assert_eq!(line["event"], "poll");
        assert_eq!(line["ackAsked"], true);
    }
    // Everyone answers: done as soon as they did, well before the timeout.
    let started = tokio::time::Instant::now();
    let result = api
        .ok(
            "/api/emit",
            json!({ "rooms": [rx.id("a"), rx.id("b")], "event": "poll2", "ack_timeout_ms": 30_000 }),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(result["missing"], 0);
    assert_eq!(result["acks"].as_array().unwrap().len(), 2);
    // Nobody selected: nothing to wait for.
    let result = api
        .ok(
            "/api/emit",
            json!({ "rooms": ["empty"], "event": "x", "ack_timeout_ms": 30_000 }),
        )
        .await;
    assert_eq!(
        result,
        json!({ "acks": [], "missing": 0, "silent_nodes": 0 })
    );
    let answer = api
        .post("/api/emit", json!({ "event": "x", "ack_timeout_ms": 0 }))
        .await;
    assert_error(&answer, 400, "invalid_field");
}

#[tokio::test]
async fn join_leave_and_disconnect_by_room_and_by_socket_id() {
    let server = Server::start(ApiConfig::default().key(KEY)).await;
    let api = server.api();
    let mut rx = Receivers::start(&server.base(), clients(&["a", "b", "c", "d"])).await;
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|n| rx.id(n));
    let all = ["a", "b", "c", "d"];

    // By socket id.
    api.ok(
        "/api/join",
        json!({ "sockets": [a, b], "join": ["vip", "x"] }),
    )
    .await;
    api.ok("/api/emit", json!({ "rooms": ["vip"], "event": "vip" }))
        .await;
    assert_eq!(rx.event("a").await, json!(["vip"]));
    assert_eq!(rx.event("b").await, json!(["vip"]));
    rx.marker(&api, &all, 1).await;
    // By room: everyone in "vip" joins "vip2", but those in "except".
    api.ok("/api/join", json!({ "sockets": [b], "join": "except" }))
        .await;
    api.ok(
        "/api/join",
        json!({ "rooms": ["vip"], "except": ["except"], "join": "vip2" }),
    )
    .await;
    api.ok("/api/emit", json!({ "rooms": "vip2", "event": "vip2" }))
        .await;
    assert_eq!(rx.event("a").await, json!(["vip2"]));
    rx.marker(&api, &all, 2).await;
    // Leave by socket id, then by room.
    api.ok("/api/leave", json!({ "sockets": [a], "leave": "vip" }))
        .await;
    api.ok("/api/emit", json!({ "rooms": "vip", "event": "vip" }))
        .await;
    assert_eq!(rx.event("b").await, json!(["vip"]));
    rx.marker(&api, &all, 3).await;
    api.ok(
        "/api/leave",
        json!({ "rooms": ["x"], "leave": ["vip", "x"] }),
    )
    .await;
    api.ok(
        "/api/emit",
        json!({ "rooms": ["vip", "x"], "event": "gone" }),
    )
    .await;
    rx.marker(&api, &all, 4).await;
    // Everyone, on purpose only.
    api.ok("/api/join", json!({ "all": true, "join": "everyone" }))
        .await;
    api.ok("/api/emit", json!({ "rooms": "everyone", "event": "e" }))
        .await;
    for n in all {
        assert_eq!(rx.event(n).await, json!(["e"]));
    }

    // Disconnect by room (from the namespace: the client does not come
    // back), then by socket id closing the connection.
    api.ok("/api/join", json!({ "sockets": [c], "join": "bye" }))
        .await;
    api.ok("/api/disconnect", json!({ "rooms": ["bye"] })).await;
    let line = rx.next("c").await;
    assert_eq!(
        (&line["type"], &line["reason"]),
        (&json!("disconnect"), &json!("io server disconnect"))
    );
    api.ok("/api/disconnect", json!({ "sockets": [d], "close": true }))
        .await;
    let line = rx.next("d").await;
    assert_eq!(
        (&line["type"], &line["reason"]),
        (&json!("disconnect"), &json!("transport close"))
    );
    common::until("the two sockets gone", || {
        server.io.of("/").unwrap().sockets().len() == 2
    })
    .await;
    rx.marker(&api, &["a", "b"], 5).await;
}

#[tokio::test]
async fn sockets_are_listed_with_a_handshake_summary() {
    let server = Server::start(ApiConfig::default().key(KEY)).await;
    let api = server.api();
    let rx = Receivers::start(&server.base(), clients(&["a", "b"])).await;
    let (a, b) = (rx.id("a"), rx.id("b"));
    server
        .io
        .of("/")
        .unwrap()
        .sockets()
        .iter()
        .find(|s| s.id().as_str() == a)
        .unwrap()
        .set_data(json!({ "user": 7 }));
    api.ok("/api/join", json!({ "sockets": [a], "join": "r" }))
        .await;

    let (status, answer) = api.get("/api/sockets").await;
    assert_eq!(status, 200, "{answer}");
    let mut sockets = answer["result"]["sockets"].as_array().unwrap().clone();
    assert_eq!(answer["result"]["silent_nodes"], 0);
    sockets.sort_by_key(|s| s["id"] != a);
    assert_eq!(sockets.len(), 2, "{answer}");
    assert_eq!(sockets[0]["id"], a);
    let mut rooms = vec![a.clone(), "r".to_owned()];
    rooms.sort();
    assert_eq!(sockets[0]["rooms"], json!(rooms));
    assert_eq!(sockets[0]["data"], json!({ "user": 7 }));
    assert_eq!(sockets[1]["id"], b);
    assert_eq!(sockets[1]["rooms"], json!([b]));
    assert_eq!(sockets[1]["data"], Value::Null);
    let hs = &sockets[0]["handshake"];
    assert_eq!(hs["address"], "127.0.0.1", "{hs}");
    assert_eq!(hs["query"]["EIO"], "4", "{hs}");
    assert_eq!(hs["query"]["transport"], "websocket", "{hs}");
    assert!(hs["time"].is_string() && hs["issued"].is_u64(), "{hs}");
    // A summary: no headers (cookies!), no auth unless asked for.
    assert!(
        hs.get("headers").is_none() && hs.get("auth").is_none(),
        "{hs}"
    );

    let (_, answer) = api.get("/api/sockets?namespace=%2F&room=r").await;
    let ids: Vec<_> = answer["result"]["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(a)]);
    let (_, answer) = api.get("/api/sockets?namespace=/custom").await;
    assert_eq!(answer["result"]["sockets"], json!([]));
    assert_error(
        &api.get("/api/sockets?namespace=/nope").await,
        404,
        "unknown_namespace",
    );
    let answer = api.get("/api/sockets?rooms=r").await;
    assert_error(&answer, 400, "invalid_field");
    assert_eq!(
        answer.1["error"]["message"],
        "rooms: unknown query parameter"
    );

    // With expose_auth, the client's auth object is there.
    let server = Server::start(ApiConfig::default().key(KEY).expose_auth(true)).await;
    let _rx = Receivers::start(&server.base(), clients(&["a"])).await;
    let (_, answer) = server.api().get("/api/sockets").await;
    assert_eq!(
        answer["result"]["sockets"][0]["handshake"]["auth"],
        json!({}),
        "{answer}"
    );
}

#[tokio::test]
async fn a_batch_runs_in_order_and_reports_each_command() {
    let server = Server::start(ApiConfig::default().key(KEY).max_batch(5)).await;
    let api = server.api();
    let mut rx = Receivers::start(&server.base(), clients(&["a", "b"])).await;
    let a = rx.id("a");
    let result = api
        .ok(
            "/api/batch",
            json!({ "commands": [
                { "op": "join", "sockets": [a], "join": "t" },
                { "op": "emit", "rooms": ["t"], "event": "first", "ack_timeout_ms": 5000 },
                { "op": "emit", "namespace": "/gone", "event": "x" },
                { "op": "leave", "sockets": [a], "leave": "t" },
                { "op": "emit", "rooms": ["t"], "event": "second" },
            ]}),
        )
        .await;
    assert_eq!(
        result["results"],
        json!([
            { "result": {} },
            { "result": { "acks": [["a"]], "missing": 0, "silent_nodes": 0 } },
            { "error": { "code": "unknown_namespace", "message": "commands[2]: no namespace \"/gone\" on this server" } },
            { "result": {} },
            { "result": {} },
        ])
    );
    // "first" reached a as the room's member; "second" went to an empty room.
    assert_eq!(rx.event("a").await, json!(["first"]));
    rx.marker(&api, &["a", "b"], 1).await;

    // One malformed command: 400 naming it, and none runs.
    let answer = api
        .post(
            "/api/batch",
            json!({ "commands": [
                { "op": "emit", "event": "never" },
                { "op": "emit", "event": 5 },
            ]}),
        )
        .await;
    assert_error(&answer, 400, "invalid_field");
    assert_eq!(
        answer.1["error"]["message"],
        "commands[1].event: a string expected"
    );
    let answer = api
        .post(
            "/api/batch",
            json!({ "commands": [{ "op": "shout", "event": "never" }] }),
        )
        .await;
    assert_error(&answer, 400, "invalid_field");
    let answer = api
        .post(
            "/api/batch",
            json!({ "commands": vec![json!({ "op": "emit", "event": "never" }); 6] }),
        )
        .await;
    assert_eq!(answer.1["error"]["message"], "commands: at most 5 commands");
    rx.marker(&api, &["a", "b"], 2).await;
}

/// Two nodes on one Redis, each with the API, once both listen.
async fn two_nodes(redis: &RedisServer) -> [Server; 2] {
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let bus = RedisBus::new(RedisConfig::new(redis.url())).unwrap();
        let io = SocketIo::builder()
            .config(common::sio::config())
            .adapter(bus.adapter_factory())
            .build()
            .unwrap();
        nodes.push(Server::serve(io, ApiConfig::default().key(KEY)).await);
    }
    for node in &nodes {
        let ns = node.io.of("/").unwrap();
        common::until_async("both nodes subscribed", || {
            let ns = ns.clone();
            async move { ns.server_count().await.is_ok_and(|n| n == 2) }
        })
        .await;
    }
    let [a, b]: [Server; 2] = nodes.try_into().unwrap_or_else(|_| unreachable!());
    [a, b]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_two_nodes_on_redis() {
    let redis = RedisServer::start().await;
    let [node_a, node_b] = two_nodes(&redis).await;
    let mut on_a = Receivers::start(&node_a.base(), clients(&["a"])).await;
    let mut on_b = Receivers::start(
        &node_b.base(),
        json!([{ "name": "b" }, { "name": "quiet", "ack": "none" }]),
    )
    .await;
    let api = node_a.api();
    let (a, b) = (on_a.id("a"), on_b.id("b"));

    // An emit to everyone through A's API reaches B's clients, binary too.
    api.ok(
        "/api/emit",
        json!({ "event": "hello", "args": [{ "_base64": "AQI=" }] }),
    )
    .await;
    let binary = json!({ "$binary": "0102", "$class": "Buffer" });
    assert_eq!(on_a.event("a").await, json!(["hello", binary]));
    assert_eq!(on_b.event("b").await, json!(["hello", binary]));
    assert_eq!(on_b.event("quiet").await, json!(["hello", binary]));

    // B's socket joins a room by its id through A; an emit to the room
    // through A then reaches it. (The join travels the bus, as the emit
    // does after it, in order.)
    api.ok("/api/join", json!({ "sockets": [b], "join": "far" }))
        .await;
    api.ok("/api/emit", json!({ "rooms": ["far"], "event": "far" }))
        .await;
    assert_eq!(on_b.event("b").await, json!(["far"]));
    api.ok("/api/emit", json!({ "event": "marker" })).await;
    assert_eq!(on_a.event("a").await, json!(["marker"]));
    assert_eq!(on_b.event("b").await, json!(["marker"]));
    assert_eq!(on_b.event("quiet").await, json!(["marker"]));

    // The sockets listing on A has both nodes' sockets.
    let (status, answer) = api.get("/api/sockets").await;
    assert_eq!(status, 200, "{answer}");
    let mut ids: Vec<String> = answer["result"]["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![a.clone(), b.clone(), on_b.id("quiet")];
    expected.sort();
    assert_eq!(ids, expected);
    let far = answer["result"]["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == b)
        .unwrap();
    let mut rooms = vec![b.clone(), "far".to_owned()];
    rooms.sort();
    assert_eq!(far["rooms"], json!(rooms));
    assert!(far["handshake"]["query"].is_object(), "{far}");
    assert!(far["handshake"].get("headers").is_none(), "{far}");

    // Acks from both nodes; the quiet one on B counts as missing.
    let result = api
        .ok(
            "/api/emit",
            json!({ "event": "poll", "args": ["q"], "ack_timeout_ms": 2000 }),
        )
        .await;
    let mut acks = result["acks"].as_array().unwrap().clone();
    acks.sort_by_key(|a| a[0].as_str().unwrap_or_default().to_owned());
    // Local answers carry every argument; remote ones their first (the
    // Node adapter's format).
    assert_eq!(acks, vec![json!(["a", "q"]), json!(["b"])], "{result}");
    assert_eq!(result["missing"], 1, "{result}");

    // Disconnect B's socket by id through A.
    api.ok("/api/disconnect", json!({ "sockets": [b] })).await;
    let line = on_b.next("b").await;
    assert_eq!(line["event"], "poll");
    let line = on_b.next("b").await;
    assert_eq!(line["reason"], "io server disconnect", "{line}");
}

/// The `sh` blocks of the README's "HTTP API" section.
fn readme_curl_blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## HTTP API\n")
        .nth(1)
        .expect("an HTTP API section")
        .split("\n## ")
        .next()
        .unwrap();
    section
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(code, _)| code.to_owned()))
        .collect()
}

/// Runs a README block with bash against `base` instead of port 3000;
/// the JSON answers it printed.
async fn run_readme_block(block: &str, base: &str, sid: &str) -> Vec<Value> {
    let script = block.replace("http://127.0.0.1:3000", base);
    let out = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new("bash")
            .args(["-euc", &script])
            .env("SOCKETGATE_API_KEY", KEY)
            .env("SID", sid)
            .output(),
    )
    .await
    .expect("curl in time")
    .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn the_readme_curl_examples_work() {
    let blocks = readme_curl_blocks();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let server = Server::start(ApiConfig::default().key(KEY)).await;
    let api = server.api();
    let mut rx = Receivers::start(&server.base(), clients(&["a", "b"])).await;
    let a = rx.id("a");
    api.ok("/api/join", json!({ "sockets": [a], "join": "news" }))
        .await;

    // One curl publishes to a room.
    let answers = run_readme_block(&blocks[0], &server.base(), &a).await;
    assert_eq!(answers, vec![json!({ "result": {} })]);
    assert_eq!(
        rx.event("a").await,
        json!(["headline", { "title": "hello from the backend" }])
    );
    rx.marker(&api, &["a", "b"], 1).await;

    let answers = run_readme_block(&blocks[1], &server.base(), &a).await;
    let results: Vec<&Value> = answers.iter().map(|a| &a["result"]).collect();
    assert_eq!(results.len(), 6, "{answers:?}");
    assert_eq!(results[0], &json!({}));
    assert_eq!(
        results[1],
        &json!({ "acks": [["a", "ready?"]], "missing": 0, "silent_nodes": 0 })
    );
    assert_eq!(results[2], &json!({}));
    assert_eq!(results[3]["sockets"].as_array().unwrap().len(), 1);
    assert_eq!(results[3]["sockets"][0]["id"], a);
    assert_eq!(
        results[4],
        &json!({ "results": [{ "result": {} }, { "result": {} }] })
    );
    assert_eq!(results[5], &json!({}));
    assert_eq!(rx.event("a").await, json!(["poll", "ready?"]));
    let file =
        json!(["file", { "name": "a.bin", "data": { "$binary": "010203", "$class": "Buffer" } }]);
    assert_eq!(rx.event("a").await, file);
    assert_eq!(rx.event("b").await, file);
    assert_eq!(rx.event("a").await, json!(["welcome"]));
    rx.marker(&api, &["a", "b"], 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_wait_that_cannot_ask_the_other_nodes_is_a_504() {
    let mut redis = RedisServer::start().await;
    let [node_a, _node_b] = two_nodes(&redis).await;
    let mut rx = Receivers::start(&node_a.base(), clients(&["a"])).await;
    redis.kill().await;
    let api = node_a.api();
    let answer = api
        .post(
            "/api/emit",
            json!({ "event": "poll", "ack_timeout_ms": 1000 }),
        )
        .await;
    assert_error(&answer, 504, "cluster_unavailable");
    // This node's socket got it all the same, and answered.
    let line = rx.next("a").await;
    assert_eq!(
        (&line["event"], &line["ackAsked"]),
        (&json!("poll"), &json!(true))
    );
}

/// The README's first screen shows the same publish call the "HTTP API"
/// section runs (checked above against a real server).
#[test]
fn the_readme_first_screen_shows_the_tested_publish_call() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let top = readme.split("\n## Set up").next().unwrap();
    let block = top
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split_once("```"))
        .map(|(code, _)| code)
        .expect("a curl block before Set up");
    assert!(
        readme_curl_blocks()[0].starts_with(block),
        "the first screen's curl differs from the tested one:\n{block}"
    );
}
