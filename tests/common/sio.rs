//! The socket.io server contract that tests/node/socketio-client.mjs
//! drives (see tests/node/README.md), on a real listener.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use socketgate::socketio::{ConnectError, Payload, Socket, SocketIo, SocketIoConfig};

pub struct SioServer {
    pub addr: SocketAddr,
    pub io: SocketIo,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SioServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Heartbeat short enough to exercise, with a pong deadline generous enough
/// for a busy CI machine (a late pong must not close a healthy session).
pub fn config() -> SocketIoConfig {
    SocketIoConfig::default().engine(
        socketgate::EngineConfig::default()
            .ping_interval(Duration::from_millis(500))
            .ping_timeout(Duration::from_millis(1000)),
    )
}

/// [`config`] that also accepts engine.io v3 (socket.io-client 2.x).
pub fn legacy_config() -> SocketIoConfig {
    let mut cfg = config();
    cfg.engine = cfg.engine.allow_eio3(true);
    cfg
}

impl SioServer {
    pub async fn start(config: SocketIoConfig) -> SioServer {
        Self::serve(SocketIo::new(config), "127.0.0.1:0".parse().unwrap()).await
    }

    /// Installs the contract on `io` and serves it on `addr`.
    pub async fn serve(io: SocketIo, addr: SocketAddr) -> SioServer {
        install_contract(&io);
        let app = axum::Router::new()
            .route("/hello", axum::routing::get(|| async { "hello" }))
            .layer(io.layer());
        let (addr, task) = super::serve_on(app, addr).await;
        SioServer { addr, io, task }
    }

    /// Stops serving and waits until the listener is released.
    pub async fn stop(mut self) {
        self.task.abort();
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = task.await;
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A raw WebSocket to the engine, its open packet read.
    pub async fn ws_open(&self) -> super::Ws {
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", self.addr);
        let mut ws = super::ws_connect(&url).await;
        assert!(super::ws_text(&mut ws).await.starts_with("0{"));
        ws
    }

    /// [`ws_open`](Self::ws_open) joined to `/`: the CONNECT answer and the
    /// contract's `auth` event read. Returns the socket id too.
    pub async fn ws_joined(&self) -> (super::Ws, String) {
        let mut ws = self.ws_open().await;
        super::ws_send(&mut ws, "40").await;
        let answer = super::ws_text(&mut ws).await;
        let json: Value =
            serde_json::from_str(answer.strip_prefix("40").expect("a CONNECT answer"))
                .unwrap_or_else(|_| panic!("{answer}"));
        let sid = json["sid"].as_str().expect("a socket id").to_owned();
        // (with recovery on, a recovery offset follows the auth object)
        let auth = super::ws_text(&mut ws).await;
        assert!(auth.starts_with("42[\"auth\",{}"), "{auth}");
        (ws, sid)
    }
}

/// Runs `script`'s `scenario` in `mode` (Node, with `env`) against a new
/// server with `cfg`; returns the verdict once the server holds no
/// session any more, whatever the clients did.
pub async fn run_scenario(
    cfg: SocketIoConfig,
    script: &str,
    scenario: &str,
    mode: &str,
    env: &[(&str, &str)],
) -> Value {
    let server = SioServer::start(cfg).await;
    let v = super::run_node_env(script, &[scenario, mode, &server.base()], env).await;
    super::until("sessions to close", || {
        server.io.engine().session_count() == 0
    })
    .await;
    v
}

/// The transport a verdict's clients ended on (all the same).
pub fn ended_on(v: &Value) -> Value {
    match v["transports"].as_array() {
        Some(all) => {
            assert!(all.iter().all(|t| *t == all[0]), "{v}");
            all[0].clone()
        }
        None => v["transport"].clone(),
    }
}

pub fn install_contract(io: &SocketIo) {
    io.ns("/", on_connect);
    io.ns("/custom", on_connect);
    io.ns("/private", on_connect).middleware(|hs| async move {
        if hs.auth.get("token").and_then(Value::as_str) == Some("secret") {
            Ok(())
        } else {
            Err(ConnectError::new("unauthorized").with_data(json!({ "code": 401 })))
        }
    });
    // `/tenant-<digits>` only: a predicate, where a `{id}` pattern would
    // also take letters.
    let tenant = |path: &str| {
        path.strip_prefix("/tenant-")
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
    };
    io.dyn_ns_with(tenant, |socket| {
        let _ = socket.emit("tenant", socket.ns());
    });
}

fn on_connect(socket: Socket) {
    let _ = socket.emit("auth", &socket.handshake().auth);
    socket.on("message", |s, ev| {
        let _ = s.emit_payload("message-back", &ev.payload);
    });
    socket.on("message-with-ack", |_, mut ev| {
        if let Some(ack) = ev.take_ack() {
            let _ = ack.send_payload(&ev.payload);
        }
    });
    socketgate::gateway::self_service_rooms(&socket);
    socket.on("bcast", |s, mut ev| {
        let spec: Value = ev.data().unwrap_or_default();
        let mut op = if spec["allButSender"] == true {
            s.broadcast()
        } else {
            s.namespace().all()
        };
        if let Some(to) = spec["to"].as_str() {
            op = op.to(to);
        }
        if let Some(except) = spec["except"].as_str() {
            op = op.except(except);
        }
        if spec["volatile"] == true {
            op = op.volatile();
        }
        let event = spec["event"].as_str().unwrap_or("none");
        let _ = if spec["withBinary"] == true {
            let payload = Payload::new()
                .arg(spec["data"].clone())
                .bin(vec![1u8, 2, 3]);
            op.emit_payload(event, &payload)
        } else {
            op.emit(event, &spec["data"])
        };
        let _ = ev.ack(&"sent");
    });
    socket.on("ask", |s, mut ev| {
        let timeout = Duration::from_millis(ev.data::<u64>().unwrap_or(1000));
        let (s, ack) = (s.clone(), ev.take_ack());
        tokio::spawn(async move {
            let reply = match s.emit_with_ack("question", "q?", timeout).await {
                // The answer's binary placeholders keep pointing at its
                // attachments, which travel along.
                Ok(answer) => Payload {
                    args: vec![json!({ "answer": answer.args.first() })],
                    bins: answer.bins,
                },
                Err(_) => Payload::new().arg(json!({ "timeout": true })),
            };
            if let Some(ack) = ack {
                let _ = ack.send_payload(&reply);
            }
        });
    });
    // A broadcast with acks: `{room, timeoutMs}` polls the room's sockets
    // and acks the asker with who answered what and who did not.
    socket.on("poll-room", |s, mut ev| {
        let spec: Value = ev.data().unwrap_or_default();
        let room = spec["room"].as_str().unwrap_or_default().to_owned();
        let timeout = Duration::from_millis(spec["timeoutMs"].as_u64().unwrap_or(1000));
        let (op, ack) = (s.namespace().to(room).timeout(timeout), ev.take_ack());
        tokio::spawn(async move {
            let report = match op.emit_with_ack("poll", "ready?").await {
                Ok(results) => {
                    let replies: serde_json::Map<_, _> = results
                        .replies
                        .iter()
                        .map(|(id, answer)| {
                            (id.as_str().to_owned(), Value::from(answer.args.clone()))
                        })
                        .collect();
                    let missing: Vec<_> = results
                        .missing
                        .iter()
                        .map(|(id, e)| json!({ "id": id.as_str(), "error": e.to_string() }))
                        .collect();
                    // Sockets on other nodes of a cluster answer without
                    // their id.
                    let remote: Vec<_> = results
                        .remote_replies
                        .iter()
                        .map(|answer| Value::from(answer.args.clone()))
                        .collect();
                    let mut report = json!({ "replies": replies, "missing": missing });
                    // Only in a cluster, where other nodes were asked.
                    if !remote.is_empty() || results.remote_missing > 0 {
                        report["remote"] = Value::from(remote);
                        report["remoteMissing"] = Value::from(results.remote_missing);
                    }
                    report
                }
                Err(e) => json!({ "error": e.to_string() }),
            };
            if let Some(ack) = ack {
                let _ = ack.send(&report);
            }
        });
    });
    socket.on("binary-please", |s, mut ev| {
        let mut payload = Payload::new().bin(vec![1u8, 2, 3]);
        let nested = payload.attach(vec![4u8, 5]);
        payload = payload.arg(json!({ "nested": nested, "label": "x" }));
        let _ = s.emit_payload("binary", &payload);
        let _ = ev.ack(&"done");
    });
    // connection state recovery (tests/node/recovery-client.mjs)
    socket.on("set-data", |s, mut ev| {
        s.set_data(ev.payload.args.first().cloned().unwrap_or_default());
        let _ = ev.ack(&"ok");
    });
    socket.on("get-data", |s, mut ev| {
        let _ = ev.ack(&s.data());
    });
    socket.on("whoami", |s, mut ev| {
        let mut rooms: Vec<String> = s.rooms().iter().map(|r| r.to_string()).collect();
        rooms.sort();
        let _ =
            ev.ack(&json!({ "id": s.id().as_str(), "rooms": rooms, "recovered": s.recovered() }));
    });
    socket.on("burst-on-disconnect", |s, mut ev| {
        let spec: Value = ev.data().unwrap_or_default();
        let room = spec["room"].as_str().unwrap_or_default().to_owned();
        let count = spec["count"].as_u64().unwrap_or(0);
        s.on_disconnect(move |s, _| {
            // The socket is gone; with recovery these are kept for it.
            for i in 0..count {
                let _ = s.emit("direct", &i);
            }
            for i in 0..count {
                let _ = s.namespace().to(room.as_str()).emit("room", &i);
            }
        });
        let _ = ev.ack(&"armed");
    });
    socket.on("close-transport", |s, _| s.close_connection());
    socket.on("disconnect-me", |s, _| s.disconnect());
}

/// The `shutdown` scenario of tests/node/recovery-client.mjs: the client
/// connects to `first` (mode: polling, websocket or default) and waits;
/// `first` emits 20 `pre` events, shuts down gracefully and stops; `second`
/// (made on the same address) must recover the client. Returns the
/// client's verdict, checked to be ok and recovered after a transport
/// close with the 20 events before it.
pub async fn recovered_across_shutdown<F, Fut>(first: SioServer, mode: &str, second: F) -> Value
where
    F: FnOnce(std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = SioServer>,
{
    use tokio::io::AsyncBufReadExt;
    let addr = first.addr;
    let mut client = tokio::process::Command::new("node")
        .arg(super::node_dir().join("recovery-client.mjs"))
        .args(["shutdown", mode, &first.base()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let mut lines = tokio::io::BufReader::new(client.stdout.take().unwrap()).lines();
    let mut out = Vec::new();
    loop {
        let line = tokio::time::timeout(super::DEADLINE, lines.next_line())
            .await
            .expect("the client got ready")
            .unwrap()
            .expect("the client is running");
        out.push(line.clone());
        if line.contains("\"ready\":true") {
            break;
        }
        assert!(!line.contains("\"ok\":false"), "{out:#?}");
    }
    for i in 0..20 {
        first.io.emit("pre", &i).unwrap();
    }
    assert!(first.io.shutdown(Duration::from_secs(5)).await);
    first.stop().await;

    let second = second(addr).await;
    let verdict = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a verdict")
            .unwrap();
        match line {
            Some(l) => {
                out.push(l.clone());
                if l.contains("\"ok\":") {
                    break serde_json::from_str::<Value>(&l).unwrap();
                }
            }
            None => panic!("the client exited without a verdict: {out:#?}"),
        }
    };
    assert_eq!(verdict["ok"], true, "{out:#?}");
    assert_eq!(verdict["recovered"], true, "{verdict}");
    assert_eq!(verdict["reason"], "transport close", "{verdict}");
    assert_eq!(verdict["counts"]["preBeforeDisconnect"], 20, "{verdict}");
    assert!(client.wait().await.unwrap().success());
    second.stop().await;
    verdict
}
