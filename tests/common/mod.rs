//! Shared test harness: a real server on 127.0.0.1:0 with an echoing,
//! recording engine handler, plus small raw HTTP / WebSocket / Node helpers.
#![allow(dead_code)]

pub mod bus;
pub mod cluster;
pub mod nginx;
pub mod probe;
pub mod redis;
pub mod sio;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use socketgate::engine::{CloseReason, Engine, EngineConfig, EngineHandler, Message, Session, Sid};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous deadline for anything a test waits on.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// What the engine reported.
#[derive(Debug, Clone)]
pub enum Event {
    Open(Sid),
    Message(Sid, Message),
    Close(Sid, CloseReason),
}

/// Echoes every message back and records every event.
struct Recorder {
    tx: mpsc::UnboundedSender<Event>,
}

impl EngineHandler for Recorder {
    fn on_open(&self, session: &Session) {
        let _ = self.tx.send(Event::Open(session.sid()));
    }
    fn on_message(&self, session: &Session, message: Message) {
        let _ = self.tx.send(Event::Message(session.sid(), message.clone()));
        let _ = session.send(message);
    }
    fn on_close(&self, session: &Session, reason: CloseReason) {
        let _ = self.tx.send(Event::Close(session.sid(), reason));
    }
}

/// A running server: the engine under `/engine.io/` in front of an axum
/// router with a normal route at `/hello`.
pub struct TestServer {
    pub addr: SocketAddr,
    pub engine: Engine,
    events: Mutex<mpsc::UnboundedReceiver<Event>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `app` on 127.0.0.1:0 (peer addresses recorded); the task stops
/// when aborted.
pub async fn serve(app: Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    serve_on(app, "127.0.0.1:0".parse().unwrap()).await
}

/// Serves `app` on `addr` (a restarted server takes its predecessor's).
pub async fn serve_on(app: Router, addr: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (addr, task)
}

/// Short heartbeat for tests; each test says what else it changes.
pub fn config() -> EngineConfig {
    EngineConfig::default()
        .path("/engine.io/")
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
}

impl TestServer {
    pub async fn start(config: EngineConfig) -> TestServer {
        let (tx, rx) = mpsc::unbounded_channel();
        let engine = Engine::new(config, Recorder { tx });
        let app = Router::new()
            .route("/hello", get(|| async { "hello from axum" }))
            .layer(engine.layer());
        let (addr, task) = serve(app).await;
        TestServer {
            addr,
            engine,
            events: Mutex::new(rx),
            task,
        }
    }

    pub fn url(&self, query: &str) -> String {
        format!("http://{}/engine.io/?{query}", self.addr)
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/engine.io/?{query}", self.addr)
    }

    /// Waits for the first event that `pick` accepts (earlier ones are
    /// discarded); panics after [`DEADLINE`].
    pub async fn wait_for<T>(&self, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let next = {
                let mut rx = self.events.lock().unwrap();
                rx.try_recv()
            };
            match next {
                Ok(e) => {
                    if let Some(v) = pick(&e) {
                        return v;
                    }
                }
                Err(_) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "event not seen within {DEADLINE:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }

    /// Waits until the engine reports that `sid` closed, and returns why.
    pub async fn closed(&self, sid: &str) -> CloseReason {
        self.wait_for(|e| match e {
            Event::Close(s, r) if s.as_str() == sid => Some(*r),
            _ => None,
        })
        .await
    }

    /// Waits until no session is left.
    pub async fn drained(&self) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while self.engine.session_count() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} sessions still open",
                self.engine.session_count()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// [`until`] with an asynchronous condition.
pub async fn until_async<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `cond` until it holds; panics after [`DEADLINE`].
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl TestServer {
    pub fn session(&self, sid: &str) -> Session {
        self.engine
            .session(&Sid::parse(sid).expect("a sid"))
            .expect("a live session")
    }

    /// Waits until the session has a pending GET (`get`) / POST (`post`).
    pub async fn pending(&self, sid: &str, get: bool, post: bool) {
        let session = self.session(sid);
        until("pending requests", || {
            session.pending_requests() == (get, post)
        })
        .await;
    }
}

// ---- raw HTTP ---------------------------------------------------------

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(DEADLINE)
        .build()
        .unwrap()
}

/// The body of a GET (any status).
pub async fn get_text(url: impl reqwest::IntoUrl) -> String {
    http().get(url).send().await.unwrap().text().await.unwrap()
}

/// A GET at `url` that must answer 200.
pub async fn get_ok(url: impl reqwest::IntoUrl) -> reqwest::Response {
    let res = http().get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res
}

/// A polling handshake at `url`; returns the sid.
pub async fn handshake_sid(url: impl reqwest::IntoUrl) -> String {
    sid_of(&get_ok(url).await.text().await.unwrap())
}

/// A polling handshake; returns the sid.
pub async fn open_polling(server: &TestServer) -> String {
    handshake_sid(server.url("EIO=4&transport=polling")).await
}

pub async fn poll(server: &TestServer, sid: &str) -> (u16, String) {
    let res = http()
        .get(server.url(&format!("EIO=4&transport=polling&sid={sid}")))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

pub async fn post(server: &TestServer, sid: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
    let res = http()
        .post(server.url(&format!("EIO=4&transport=polling&sid={sid}")))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Asserts an engine.io error answer.
pub async fn assert_error(res: reqwest::Response, status: u16, code: u8, message: &str) {
    assert_eq!(res.status().as_u16(), status);
    let json: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(json["code"], code, "{json}");
    assert_eq!(json["message"], message, "{json}");
}

// ---- raw WebSocket ------------------------------------------------------

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket session opened directly; returns it with its sid.
pub async fn open_ws(server: &TestServer) -> (Ws, String) {
    let mut ws = ws_connect(&server.ws_url("EIO=4&transport=websocket")).await;
    let open = ws_text(&mut ws).await;
    (ws, sid_of(&open))
}

/// The sid in an open packet (`0{"sid":…}`).
pub fn sid_of(open: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(open.strip_prefix('0').expect("an open packet")).unwrap();
    json["sid"].as_str().expect("a sid").to_owned()
}

pub async fn ws_connect(url: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("WebSocket handshake");
    ws
}

/// The next text or binary message (control frames skipped); `None` once
/// the connection is closed.
pub async fn ws_next(ws: &mut Ws) -> Option<WsMessage> {
    loop {
        let next = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("frame in time");
        match next {
            Some(Ok(m @ (WsMessage::Text(_) | WsMessage::Binary(_)))) => return Some(m),
            Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

pub async fn ws_text(ws: &mut Ws) -> String {
    match ws_next(ws).await {
        Some(WsMessage::Text(t)) => t.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next text message that is not a heartbeat ping; pings on the way
/// are answered.
pub async fn ws_event(ws: &mut Ws) -> String {
    loop {
        let t = ws_text(ws).await;
        if t == "2" {
            ws_send(ws, "3").await;
            continue;
        }
        return t;
    }
}

pub async fn ws_send(ws: &mut Ws, text: &str) {
    ws.send(WsMessage::text(text)).await.unwrap();
}

/// Reads frames until the server closes; returns the close frame's code.
pub async fn ws_close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        let next = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("close in time");
        match next {
            Some(Ok(WsMessage::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Reads until the server ends the WebSocket: `Ok(code)` when it sent a
/// close frame (`None`: a close frame without a status code), `Err` when
/// the connection ended without one (reset or EOF), with what was seen.
pub async fn ws_close_frame(ws: &mut Ws) -> Result<Option<u16>, String> {
    loop {
        let next = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("close in time");
        match next {
            Some(Ok(WsMessage::Close(frame))) => return Ok(frame.map(|f| u16::from(f.code))),
            None => return Err("end of stream without a close frame".into()),
            Some(Err(e)) => return Err(format!("error without a close frame: {e}")),
            Some(Ok(_)) => {}
        }
    }
}

// ---- the socketgate binary ----------------------------------------------

/// The binary's log (stderr), line by line.
pub type GatewayLog = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>;

/// Starts the `socketgate` binary with `args` (give it `--addr`), waits
/// until it listens, and returns it with the address and the rest of its log.
pub async fn spawn_gateway(args: &[&str]) -> (tokio::process::Child, String, GatewayLog) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_socketgate"))
        .args(args)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the socketgate binary runs");
    let mut log = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = log.next_line().await.unwrap() {
            if let Some(url) = line.split("listening on http://").nth(1) {
                return url.trim().to_owned();
            }
        }
        panic!("the gateway exited before listening");
    })
    .await
    .expect("the gateway started");
    (child, addr, log)
}

/// Reads a gateway child's log (its piped stderr) until its
/// "listening on <scheme>://" line, and returns that address; the rest of
/// the log is drained (and echoed to the test's output) in the background.
pub async fn listening(child: &mut tokio::process::Child, scheme: &str) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut log = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let marker = format!("listening on {scheme}://");
    let addr = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = log.next_line().await.unwrap() {
            eprintln!("{line}");
            if let Some(url) = line.split(&marker).nth(1) {
                return url.trim().to_owned();
            }
        }
        panic!("the gateway exited before listening");
    })
    .await
    .expect("the gateway started");
    tokio::spawn(async move {
        while let Ok(Some(line)) = log.next_line().await {
            eprintln!("{line}");
        }
    });
    addr
}

/// Sends SIGTERM to a child process (the gateway binary).
pub async fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("the child is running").to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "kill -TERM {pid}: {status}");
}

// ---- Node clients -------------------------------------------------------

pub fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// Starts a Node script from `tests/node` with its stdout and stderr piped
/// (killed when dropped).
pub fn spawn_node(script: &str, args: &[&str]) -> tokio::process::Child {
    spawn_node_env(script, args, &[])
}

/// [`spawn_node`] with more environment variables.
pub fn spawn_node_env(script: &str, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Child {
    let dir = node_dir();
    assert!(
        dir.join("node_modules").is_dir(),
        "tests/node/node_modules is missing: run the README's test command (it runs `npm ci` in tests/node)"
    );
    tokio::process::Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node must be installed to run the interop tests")
}

/// Runs a Node script from `tests/node` and returns its parsed last line
/// (`{"ok":true,…}`); panics with the script's output when it fails.
pub async fn run_node(script: &str, args: &[&str]) -> serde_json::Value {
    run_node_env(script, args, &[]).await
}

/// [`run_node`] with more environment variables.
pub async fn run_node_env(script: &str, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let child = spawn_node_env(script, args, env);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("node script finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let verdict: serde_json::Value = serde_json::from_str(last).unwrap_or_default();
    assert!(
        out.status.success() && verdict["ok"] == true,
        "{script} {args:?} {env:?} failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    verdict
}
