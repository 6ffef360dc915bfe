//! Every example in examples/ as a user runs it: built by cargo (the test
//! command builds all targets), started as a process, and driven by the
//! real npm clients. An example that stops working fails CI.
//!
//! - `conformance engineio`: engine.io-client 6.6 (polling, WebSocket,
//!   upgrade) against the echo engine;
//! - `conformance socketio`: socket.io-client 4.8 in each mode (auth echoed
//!   on `/` and `/custom`, binary round trip and ack, unknown namespace
//!   refused), and socket.io-client 2.5.0 with `--allow-eio3`;
//! - `quickstart`, `axum_chat`, `bench_server`: tests/node/examples-client.mjs.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::run_node;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The example's binary, next to this test's.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/examples-… → target/<profile>/examples/<name>
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join(name))
        .expect("a target directory");
    assert!(
        path.is_file(),
        "{} is missing: build the examples (the README's test command, `bash tests/run.sh`, does)",
        path.display()
    );
    path
}

/// A running example and the base URL it listens on.
struct Running {
    _child: Child,
    base: String,
}

/// Starts `name` with `args` and `env`; the base URL is read from the line
/// it prints when it listens (`… on http://ADDR`), or is `fixed`.
async fn start(name: &str, args: &[&str], env: &[(&str, &str)], fixed: Option<&str>) -> Running {
    let mut child = Command::new(example(name))
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} runs: {e}"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    forward(child.stdout.take().unwrap(), tx.clone());
    forward(child.stderr.take().unwrap(), tx);
    let base = match fixed {
        Some(addr) => {
            // It prints nothing: wait until it accepts connections.
            let deadline = tokio::time::Instant::now() + common::DEADLINE;
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{name} did not listen on {addr} (is the port taken?)"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            format!("http://{addr}")
        }
        None => tokio::time::timeout(common::DEADLINE, async {
            while let Some(line) = rx.recv().await {
                if let Some(url) = line.split(" on http://").nth(1) {
                    return format!("http://{}", url.trim());
                }
            }
            panic!("{name} exited before listening");
        })
        .await
        .unwrap_or_else(|_| panic!("{name} started in time")),
    };
    Running {
        _child: child,
        base,
    }
}

/// Sends each line `output` prints to `tx`.
fn forward<R>(output: R, tx: tokio::sync::mpsc::UnboundedSender<String>)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(output).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
}

/// The conformance servers' 300/200 ms heartbeat is the public suites'
/// setting; under a loaded CI machine a pong may come later than 200 ms.
const GENEROUS_HEARTBEAT: [(&str, &str); 2] =
    [("PING_INTERVAL_MS", "1000"), ("PING_TIMEOUT_MS", "1500")];

async fn conformance(mode: &str, extra: &[&str]) -> Running {
    let mut args = vec![mode];
    args.extend_from_slice(extra);
    let env = [GENEROUS_HEARTBEAT[0], GENEROUS_HEARTBEAT[1], ("PORT", "0")];
    start("conformance", &args, &env, None).await
}

#[tokio::test]
async fn conformance_engineio_with_engine_io_client() {
    let server = conformance("engineio", &[]).await;
    for scenario in ["polling", "websocket", "upgrade"] {
        let v = run_node(
            "engineio-client.mjs",
            &[scenario, &server.base, "/engine.io/"],
        )
        .await;
        assert_eq!(v["scenario"], scenario, "{v}");
    }
}

#[tokio::test]
async fn conformance_socketio_with_socket_io_client() {
    let server = conformance("socketio", &[]).await;
    for (mode, transport) in [
        ("polling", "polling"),
        ("websocket", "websocket"),
        ("default", "websocket"),
    ] {
        let v = run_node("socketio-client.mjs", &["conformance", mode, &server.base]).await;
        assert_eq!(v["transport"], transport, "{v}");
    }
}

#[tokio::test]
async fn conformance_socketio_with_socket_io_client_2() {
    let server = conformance("socketio", &["--allow-eio3"]).await;
    for (mode, transport) in [
        ("polling", "polling"),
        ("websocket", "websocket"),
        ("default", "websocket"),
    ] {
        let v = run_node("legacy-client.mjs", &["conformance", mode, &server.base]).await;
        assert_eq!(v["transport"], transport, "{v}");
    }
    // And current clients on the same server.
    let v = run_node(
        "socketio-client.mjs",
        &["conformance", "default", &server.base],
    )
    .await;
    assert_eq!(v["transport"], "websocket", "{v}");
}

/// The three small examples, each in every transport mode.
async fn drive(scenario: &str, server: &Running) {
    for (mode, transport) in [
        ("polling", "polling"),
        ("websocket", "websocket"),
        ("default", "websocket"),
    ] {
        let v = run_node("examples-client.mjs", &[scenario, mode, &server.base]).await;
        assert_eq!(v["transport"], transport, "{scenario} {mode}: {v}");
    }
}

#[tokio::test]
async fn quickstart() {
    // It listens where the README says: 127.0.0.1:3000.
    let server = start("quickstart", &[], &[], Some("127.0.0.1:3000")).await;
    drive("quickstart", &server).await;
}

#[tokio::test]
async fn axum_chat() {
    let server = start("axum_chat", &[], &[("PORT", "0")], None).await;
    drive("axum-chat", &server).await;
}

#[tokio::test]
async fn bench_server() {
    let server = start("bench_server", &["--port", "0"], &[], None).await;
    drive("bench", &server).await;
}
