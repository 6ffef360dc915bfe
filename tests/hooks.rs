//! Backend hooks (`socketgate::hooks`) against a real HTTP backend started
//! here, with socket.io-client 4.8 (tests/node/hooks-client.mjs): the
//! connect hook allows and refuses (a refusal is final for the client), a
//! failing backend (down, slow, 500) closes the client's transport so that
//! it reconnects by itself once the backend is back, the events hook
//! answers acks and emits to rooms in packet order, only allowlisted
//! headers reach the backend, and the disconnect hook is told. Plus the
//! relay's limits: the 51st room, and a flood throttled next to a canary.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use common::{DEADLINE, Ws, ws_connect, ws_event, ws_send, ws_text};
use futures_util::SinkExt;
use serde_json::{Value, json};
use socketgate::gateway::{RelayLimits, relay_with};
use socketgate::hooks::{self, Hooks, HooksConfig};
use socketgate::socketio::{SocketIo, SocketIoConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message as WsMessage;

// ---- the backend ----------------------------------------------------------

/// How the backend's connect hook behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    /// Answers 500.
    Fail,
    /// Answers after 2 s (past the gateway's timeout).
    Slow,
}

/// What the backend was sent, and how it answers.
struct Seen {
    mode: Mode,
    connects: Vec<Value>,
    events: Vec<Value>,
    disconnects: Vec<Value>,
}

type Shared = Arc<Mutex<Seen>>;

/// A backend on its own runtime and thread: stopping it drops every
/// connection it had (the gateway's pooled ones too), as a crashed
/// backend would.
struct Backend {
    addr: SocketAddr,
    scheme: &'static str,
    seen: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    async fn start(addr: SocketAddr, seen: Shared) -> Backend {
        Self::start_with(addr, seen, None).await
    }

    /// The backend over TLS with `tls`'s certificate: its URLs are
    /// `https://`.
    async fn start_with(
        addr: SocketAddr,
        seen: Shared,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Backend {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/connect", post(on_connect))
            .route("/events", post(on_event))
            .route("/disconnect", post(on_disconnect))
            .with_state(seen.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
                let _ = ready_tx.send(listener.local_addr().unwrap());
                match tls {
                    None => tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stop_rx => {}
                    },
                    Some(tls) => tokio::select! {
                        _ = serve_tls(listener, app, tls) => {}
                        _ = stop_rx => {}
                    },
                }
            });
            // Dropping the runtime ends every connection task.
        });
        let addr = ready_rx.await.expect("the backend started");
        Backend {
            addr,
            scheme,
            seen,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join().unwrap())
                .await
                .unwrap();
        }
    }

    fn url(&self, path: &str) -> http::Uri {
        format!("{}://{}{path}", self.scheme, self.addr)
            .parse()
            .unwrap()
    }

    fn set_mode(&self, mode: Mode) {
        self.seen.lock().unwrap().mode = mode;
    }

    fn connects(&self) -> Vec<Value> {
        self.seen.lock().unwrap().connects.clone()
    }

    fn events(&self) -> Vec<Value> {
        self.seen.lock().unwrap().events.clone()
    }

    fn disconnects(&self) -> Vec<Value> {
        self.seen.lock().unwrap().disconnects.clone()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves `app` over TLS (HTTP/1.1), one task per connection.
async fn serve_tls(listener: tokio::net::TcpListener, app: Router, tls: tokio_rustls::TlsAcceptor) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            // A client that refuses our certificate ends here.
            let Ok(stream) = tls.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn new_seen() -> Shared {
    Arc::new(Mutex::new(Seen {
        mode: Mode::Normal,
        connects: Vec::new(),
        events: Vec::new(),
        disconnects: Vec::new(),
    }))
}

async fn on_connect(State(seen): State<Shared>, Json(body): Json<Value>) -> Response {
    let mode = {
        let mut seen = seen.lock().unwrap();
        seen.connects.push(body.clone());
        seen.mode
    };
    match mode {
        Mode::Fail => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "down for maintenance").into_response();
        }
        Mode::Slow => tokio::time::sleep(Duration::from_secs(2)).await,
        Mode::Normal => {}
    }
    let answer = match body["auth"]["token"].as_str() {
        Some("good") => json!({ "allow": true, "data": { "user": "alice" }, "rooms": ["vip"] }),
        Some("guest") => json!({ "allow": true, "data": { "user": "guest" } }),
        Some("bad") => {
            json!({ "allow": false, "message": "invalid token", "data": { "code": 4001 } })
        }
        _ => json!({ "allow": false, "message": "unknown token" }),
    };
    Json(answer).into_response()
}

async fn on_event(State(seen): State<Shared>, Json(body): Json<Value>) -> Response {
    seen.lock().unwrap().events.push(body.clone());
    let user = body["data"]["user"].clone();
    let args = body["args"].clone();
    let answer = match body["event"].as_str() {
        Some("chat.say") => json!({
            "emits": [{ "rooms": ["vip"], "event": "chat.said", "args": [{ "text": args[0], "user": user }] }],
            "ack": ["stored", user],
        }),
        Some("chat.order") => {
            // Uneven delays: calls made side by side would finish out of
            // order.
            let n = args[0].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(n * 7 % 20)).await;
            json!({ "ack": [n] })
        }
        Some("chat.bin") => json!({ "ack": [args[0]] }),
        _ => json!({}),
    };
    Json(answer).into_response()
}

async fn on_disconnect(State(seen): State<Shared>, Json(body): Json<Value>) -> StatusCode {
    seen.lock().unwrap().disconnects.push(body);
    StatusCode::NO_CONTENT
}

// ---- the gateway side -------------------------------------------------------

/// A socket.io server whose main namespace is driven by the backend's
/// hooks, served on 127.0.0.1:0.
struct Gateway {
    addr: SocketAddr,
    io: SocketIo,
    hooks: Hooks,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn gateway(backend: &Backend, timeout: Duration) -> Gateway {
    gateway_with(backend, timeout, Vec::new()).await
}

/// [`gateway`] trusting the certificates of `ca_files` for https hooks.
async fn gateway_with(backend: &Backend, timeout: Duration, ca_files: Vec<PathBuf>) -> Gateway {
    let io = SocketIo::new(common::sio::config());
    let config = HooksConfig::default()
        .ca_files(ca_files)
        .connect(Some(backend.url("/connect")))
        .events(Some(backend.url("/events")))
        .event_patterns(["chat.*"])
        .disconnect(Some(backend.url("/disconnect")))
        .timeout(timeout);
    let hooks = hooks::install(&io, config).expect("valid hooks");
    let (addr, task) = common::serve(Router::new().layer(io.layer())).await;
    Gateway {
        addr,
        io,
        hooks,
        task,
    }
}

impl Gateway {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A running hooks-client.mjs, read line by line.
struct NodeRun {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: Vec<String>,
}

impl NodeRun {
    fn start(scenario: &str, url: &str) -> NodeRun {
        let mut child = common::spawn_node("hooks-client.mjs", &[scenario, url]);
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        NodeRun {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line that parses to JSON and satisfies `pick`.
    async fn line(&mut self, pick: impl Fn(&Value) -> bool) -> Value {
        let found = tokio::time::timeout(Duration::from_secs(40), async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                self.seen.push(line.clone());
                let json: Value = serde_json::from_str(&line).unwrap_or_default();
                if pick(&json) {
                    return Some(json);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(json)) => json,
            _ => {
                let _ = self.child.start_kill();
                let mut stderr = String::new();
                if let Some(mut err) = self.child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let read = err.read_to_string(&mut stderr);
                    let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
                }
                panic!(
                    "hooks-client: no such line\n--- stdout\n{}\n--- stderr\n{stderr}",
                    self.seen.join("\n")
                )
            }
        }
    }

    /// The verdict, which must be ok.
    async fn verdict(mut self) -> Value {
        let verdict = self.line(|j| j.get("ok").is_some()).await;
        assert!(
            verdict["ok"] == true,
            "hooks-client failed: {verdict}\n--- stdout\n{}",
            self.seen.join("\n")
        );
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("node exits")
            .unwrap();
        assert!(status.success(), "{status}");
        verdict
    }
}

async fn run(scenario: &str, gateway: &Gateway) -> Value {
    NodeRun::start(scenario, &gateway.url()).verdict().await
}

// ---- the tests ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_reaches_the_client_with_message_and_data_and_is_not_retried() {
    let backend = Backend::start("127.0.0.1:0".parse().unwrap(), new_seen()).await;
    let gw = gateway(&backend, Duration::from_secs(1)).await;
    let verdict = run("refuse", &gw).await;
    assert_eq!(verdict["errors"][0]["message"], "invalid token");
    // The backend was asked once: the client did not come back.
    let connects = backend.connects();
    assert_eq!(connects.len(), 1, "{connects:?}");
    assert_eq!(connects[0]["auth"], json!({ "token": "bad" }));
    let stats = gw.hooks.stats();
    assert_eq!(
        (
            stats.connect_refused,
            stats.connect_allowed,
            stats.connect_failed
        ),
        (1, 0, 0)
    );
    assert!(gw.io.of("/").unwrap().sockets().is_empty());
}

/// https hooks: a backend whose certificate the gateway was given is
/// asked as over http; one whose certificate nobody vouches for is never
/// reached (the TLS handshake fails), which counts as a failed hook and
/// closes the client's transport, as a backend that is down does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_hooks_reach_a_backend_whose_certificate_is_trusted_only() {
    let dir = common::tls::temp_dir("hooks");
    let (cert, key) = common::tls::certificate(&dir, "backend");
    let acceptor = common::tls::acceptor(&cert, &key);
    let backend =
        Backend::start_with("127.0.0.1:0".parse().unwrap(), new_seen(), Some(acceptor)).await;
    assert_eq!(backend.url("/connect").scheme_str(), Some("https"));

    let trusted = gateway_with(&backend, Duration::from_secs(1), vec![cert.clone()]).await;
    let verdict = run("refuse", &trusted).await;
    assert_eq!(verdict["errors"][0]["message"], "invalid token");
    assert_eq!(backend.connects().len(), 1);

    // The system's CAs only: the backend's self-signed certificate fails.
    let untrusted = gateway(&backend, Duration::from_secs(1)).await;
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        untrusted.addr
    );
    let mut ws = ws_connect(&url).await;
    assert!(ws_text(&mut ws).await.starts_with("0{"));
    ws_send(&mut ws, r#"40{"token":"good"}"#).await;
    let closed = tokio::time::timeout(DEADLINE, async {
        loop {
            match common::ws_next(&mut ws).await {
                None => return,
                Some(m) => assert!(!m.to_string().starts_with("40"), "connected: {m}"),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the client's transport is closed");
    assert_eq!(untrusted.hooks.stats().connect_failed, 1);
    assert_eq!(backend.connects().len(), 1, "never reached");

    // A CA file that holds no certificate is refused at start.
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let err = Hooks::new(HooksConfig::default().ca_files(vec![empty])).unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
}

/// The binary's `--hook-ca-file`: its https connect hook reaches the
/// backend the file vouches for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_trusts_its_hook_ca_file() {
    let dir = common::tls::temp_dir("hooks-binary");
    let (cert, key) = common::tls::certificate(&dir, "backend");
    let acceptor = common::tls::acceptor(&cert, &key);
    let backend =
        Backend::start_with("127.0.0.1:0".parse().unwrap(), new_seen(), Some(acceptor)).await;
    let hook = backend.url("/connect").to_string();
    let (_child, addr, _log) = common::spawn_gateway(&[
        "--addr",
        "127.0.0.1:0",
        "--connect-hook",
        &hook,
        "--hook-ca-file",
        cert.to_str().unwrap(),
    ])
    .await;
    let verdict = NodeRun::start("refuse", &format!("http://{addr}"))
        .verdict()
        .await;
    assert_eq!(verdict["errors"][0]["message"], "invalid token");
    assert_eq!(backend.connects().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_clients_get_data_rooms_acks_and_emits_and_only_listed_headers_reach_the_backend() {
    let backend = Backend::start("127.0.0.1:0".parse().unwrap(), new_seen()).await;
    let gw = gateway(&backend, Duration::from_secs(1)).await;
    let verdict = run("allow", &gw).await;
    let a_id = verdict["ids"]["a"].as_str().unwrap().to_owned();

    // The connect hook's request for A.
    let connects = backend.connects();
    let a = connects
        .iter()
        .find(|c| c["auth"]["token"] == "good")
        .expect("A's connect");
    assert_eq!(a["namespace"], "/");
    assert_eq!(
        a["headers"],
        json!({ "authorization": "Bearer good", "cookie": "sid=1" }),
        "only the allowlisted headers"
    );
    assert!(!a.to_string().contains("must-not-leak"), "{a}");
    assert_eq!(
        a["query"],
        json!({ "room": "lobby" }),
        "no engine.io params"
    );
    assert_eq!(a["address"], "127.0.0.1");
    assert_eq!(a["transport"], "polling");

    // The events hook: `chat.*` only, with the socket's data, and A's
    // `chat.order` events in the order A sent them.
    let events = backend.events();
    assert!(events.iter().all(|e| e["event"] != "other"), "{events:?}");
    let say = events
        .iter()
        .find(|e| e["event"] == "chat.say" && e["socket_id"] == a_id.as_str())
        .expect("A's chat.say");
    assert_eq!(say["data"], json!({ "user": "alice" }));
    assert_eq!(say["namespace"], "/");
    assert_eq!(say["args"], json!(["hello"]));
    let bin = events.iter().find(|e| e["event"] == "chat.bin").unwrap();
    assert_eq!(bin["args"], json!([{ "_base64": "AQID" }, "label"]));
    let order: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "chat.order")
        .map(|e| e["args"][0].as_u64().unwrap())
        .collect();
    assert_eq!(order, (0..20).collect::<Vec<_>>());

    // The disconnect hook hears of A, with its data and the reason.
    common::until_async("A's disconnect notification", || {
        let found = backend
            .disconnects()
            .iter()
            .any(|d| d["socket_id"] == a_id.as_str());
        async move { found }
    })
    .await;
    let d = backend
        .disconnects()
        .into_iter()
        .find(|d| d["socket_id"] == a_id.as_str())
        .unwrap();
    assert_eq!(
        d,
        json!({ "namespace": "/", "socket_id": a_id, "data": { "user": "alice" }, "reason": "client namespace disconnect" })
    );
    let stats = gw.hooks.stats();
    assert_eq!(stats.connect_allowed, 2);
    assert_eq!(stats.events_sent, 23, "{stats:?}");
    assert_eq!((stats.events_failed, stats.events_dropped), (0, 0));
    assert!(!stats.backend_down);
}

/// The backend fails as `fail` makes it; the client's transport is closed
/// again and again (never refused) until `heal` brings the backend back,
/// and then it connects by itself.
async fn recovers_from(
    timeout: Duration,
    fail: impl AsyncFnOnce(&mut Backend),
    heal: impl AsyncFnOnce(&mut Backend),
) {
    let mut backend = Backend::start("127.0.0.1:0".parse().unwrap(), new_seen()).await;
    let gw = gateway(&backend, timeout).await;
    fail(&mut backend).await;
    let mut node = NodeRun::start("recover", &gw.url());
    node.line(|j| j["ready"] == true).await;
    let failed = gw.hooks.stats().connect_failed;
    assert!(failed >= 2, "{failed} failed connect hook calls");
    assert!(gw.hooks.stats().backend_down);
    assert!(gw.io.of("/").unwrap().sockets().is_empty());
    heal(&mut backend).await;
    let verdict = node.verdict().await;
    assert!(verdict["closes"].as_u64().unwrap() >= 2, "{verdict}");
    let stats = gw.hooks.stats();
    assert_eq!(stats.connect_refused, 0);
    assert!(stats.connect_allowed >= 1);
    assert!(!stats.backend_down, "{stats:?}");
    backend.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_answering_500_closes_the_transport_until_it_is_back() {
    recovers_from(
        Duration::from_secs(1),
        async |b: &mut Backend| b.set_mode(Mode::Fail),
        async |b: &mut Backend| b.set_mode(Mode::Normal),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_closes_the_transport_until_it_is_back() {
    recovers_from(
        Duration::from_millis(300),
        async |b: &mut Backend| b.set_mode(Mode::Slow),
        async |b: &mut Backend| b.set_mode(Mode::Normal),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_is_down_closes_the_transport_until_it_is_back() {
    recovers_from(
        Duration::from_secs(1),
        async |b: &mut Backend| b.stop().await,
        async |b: &mut Backend| {
            // The same port again, as a restarted backend.
            let seen = b.seen.clone();
            *b = Backend::start(b.addr, seen).await;
        },
    )
    .await;
}

// ---- the relay's limits --------------------------------------------------

/// A protocol 5 client joined to `/` over a raw WebSocket.
async fn ws_client(addr: SocketAddr) -> Ws {
    let mut ws = ws_connect(&format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await;
    assert!(ws_text(&mut ws).await.starts_with("0{"));
    ws_send(&mut ws, "40").await;
    assert!(ws_event(&mut ws).await.starts_with("40{"));
    ws
}

/// The arguments of the ack with `id`, skipping other packets.
async fn ack_of(ws: &mut Ws, id: u32) -> Value {
    let prefix = format!("43{id}");
    loop {
        let packet = ws_event(ws).await;
        if let Some(args) = packet.strip_prefix(&prefix) {
            return serde_json::from_str(args).unwrap();
        }
    }
}

async fn relay_server() -> (
    SocketIo,
    socketgate::gateway::Relay,
    SocketAddr,
    tokio::task::JoinHandle<()>,
) {
    let io = SocketIo::new(SocketIoConfig::default());
    let relay = relay_with(&io, RelayLimits::default());
    let (addr, task) = common::serve(Router::new().layer(io.layer())).await;
    (io, relay, addr, task)
}

#[tokio::test]
async fn the_relay_refuses_the_51st_room_with_an_ack_error() {
    let (_io, _relay, addr, _task) = relay_server().await;
    let mut ws = ws_client(addr).await;
    for i in 0..50u32 {
        ws_send(&mut ws, &format!("42{i}[\"join\",\"room-{i}\"]")).await;
        assert_eq!(ack_of(&mut ws, i).await, json!([format!("room-{i}")]));
    }
    ws_send(&mut ws, "4250[\"join\",\"room-50\"]").await;
    assert_eq!(
        ack_of(&mut ws, 50).await,
        json!([{ "error": "too many rooms (at most 50)" }])
    );
    // Still connected, still in its rooms.
    ws_send(&mut ws, "4251[\"join\",\"room-7\"]").await;
    assert_eq!(ack_of(&mut ws, 51).await, json!(["room-7"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_throttled_while_the_canary_next_to_it_gets_everything() {
    let (io, relay, addr, _task) = relay_server().await;
    let mut flooder = ws_client(addr).await;
    let mut canary = ws_client(addr).await;
    ws_send(&mut canary, "420[\"join\",\"canary\"]").await;
    assert_eq!(ack_of(&mut canary, 0).await, json!(["canary"]));

    // 1000 echoes with acks, sent as fast as the socket takes them.
    const FLOOD: u32 = 1000;
    let started = std::time::Instant::now();
    for i in 0..FLOOD {
        flooder
            .feed(WsMessage::text(format!("42{i}[\"echo\",{i}]")))
            .await
            .unwrap();
    }
    flooder.flush().await.unwrap();
    // Meanwhile the canary chats to its room, within its own budget.
    for i in 0..20 {
        ws_send(
            &mut canary,
            &format!("42[\"chat\",{{\"room\":\"canary\",\"n\":{i}}}]"),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut got = Vec::new();
    while got.len() < 20 {
        let packet = ws_event(&mut canary).await;
        let event: Value = serde_json::from_str(packet.strip_prefix("42").unwrap()).unwrap();
        assert_eq!(event[0], "chat", "{event}");
        got.push(event[1]["n"].as_u64().unwrap());
    }
    assert_eq!(got, (0..20).collect::<Vec<_>>(), "the canary lost nothing");

    // Every flood event is answered: echoed within the budget, refused
    // past it.
    let (mut passed, mut limited) = (0u64, 0u64);
    let mut answered = 0;
    while answered < FLOOD {
        let packet = ws_event(&mut flooder).await;
        let Some(rest) = packet.strip_prefix("43") else {
            continue; // the echo events
        };
        let at = rest.find('[').unwrap();
        let args: Value = serde_json::from_str(&rest[at..]).unwrap();
        if args == json!([{ "error": "rate limited" }]) {
            limited += 1;
        } else {
            assert_eq!(args, json!([rest[..at].parse::<u64>().unwrap()]));
            passed += 1;
        }
        answered += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The burst, plus what refilled while the flood was handled.
    assert!(passed >= 100, "{passed} passed");
    assert!(
        passed as f64 <= 100.0 + 50.0 * elapsed + 1.0,
        "{passed} passed in {elapsed:.2} s"
    );
    assert_eq!(relay.rate_limited(), limited, "every drop counted");
    assert!(limited > 0);

    // Neither was closed: a token comes back 20 ms later.
    assert_eq!(io.engine().session_count(), 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    ws_send(&mut flooder, "425000[\"echo\",\"again\"]").await;
    assert_eq!(ack_of(&mut flooder, 5000).await, json!(["again"]));
    ws_send(&mut canary, "421[\"echo\",\"still here\"]").await;
    assert_eq!(ack_of(&mut canary, 1).await, json!(["still here"]));
    assert_eq!(io.of("/").unwrap().sockets().len(), 2);
}
