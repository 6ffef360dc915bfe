//! Third-party socket.io clients against the `socketgate` binary with its
//! default settings (connection state recovery off), over polling and over
//! WebSocket:
//!
//! - python-socketio 5.18: the sync `socketio.Client` and the asyncio
//!   `socketio.AsyncClient` (`tests/python/clients.py`, run with
//!   `target/venv-demo/bin/python`);
//! - rust_socketio 0.6 (`tests/rust-client/`, a crate of its own built into
//!   `target/rust-client`).
//!
//! Each client checks the relay (`echo` with one and several arguments,
//! binary included, handled by handlers of exactly that arity; acks; `join`
//! and a room chat that reaches the member and not an outsider) and prints
//! a JSON verdict line. `bash tests/run.sh` installs the venv and builds the
//! Rust client; without them these tests fail and say so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

/// Longer than the clients' own watchdogs (45 s), so that a hanging client
/// still reports how far it got.
const RUN: Duration = Duration::from_secs(60);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `socketgate` binary with its defaults on a free port; its log is
/// kept for the failure message.
async fn gateway() -> (Child, String, Arc<Mutex<Vec<String>>>) {
    let (child, addr, mut log) = common::spawn_gateway(&["--addr", "127.0.0.1:0"]).await;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let keep = lines.clone();
    // Keep reading its log so that it never blocks on a full pipe.
    tokio::spawn(async move {
        while let Ok(Some(line)) = log.next_line().await {
            keep.lock().unwrap().push(line);
        }
    });
    (child, format!("http://{addr}"), lines)
}

fn python(mode: &str, transport: &str) -> Command {
    let python: PathBuf = root().join("target/venv-demo/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run the README's test command, `bash tests/run.sh`, which creates it \
         and installs client-demo/python/requirements.txt and tests/python/requirements.txt",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/python/clients.py"))
        .args([mode, transport]);
    cmd
}

fn rust_socketio(transport: &str) -> Command {
    let bin = root().join("target/rust-client/debug/socketgate-rust-client");
    assert!(
        bin.is_file(),
        "{} is missing: run the README's test command, `bash tests/run.sh`, which builds \
         tests/rust-client (CARGO_TARGET_DIR=target/rust-client cargo build --manifest-path \
         tests/rust-client/Cargo.toml)",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.arg(transport);
    cmd
}

async fn read_all(mut from: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut buf = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut from, &mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// Runs `client <args…> URL` against a fresh gateway and asserts its
/// verdict: exit 0, `"ok": true`, over `transport`.
async fn verdict(mut client: Command, transport: &str) -> Value {
    let (_gateway, url, log) = gateway().await;
    let mut child = client
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the client runs");
    // Output is collected as it comes, so that a client that hangs still
    // shows how far it got.
    let stdout = tokio::spawn(read_all(child.stdout.take().unwrap()));
    let stderr = tokio::spawn(read_all(child.stderr.take().unwrap()));
    let status = match tokio::time::timeout(RUN, child.wait()).await {
        Ok(status) => Some(status.unwrap()),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let (stdout, stderr) = (stdout.await.unwrap(), stderr.await.unwrap());
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
    let verdict: Value = last
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success())
            && verdict["ok"] == true
            && verdict["transport"] == transport,
        "the client failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- gateway log\n{}",
        status.map_or_else(|| format!("still running after {RUN:?}"), |s| s.to_string()),
        log.lock().unwrap().join("\n")
    );
    verdict
}

#[tokio::test]
async fn python_sync_polling() {
    verdict(python("sync", "polling"), "polling").await;
}

#[tokio::test]
async fn python_sync_websocket() {
    verdict(python("sync", "websocket"), "websocket").await;
}

#[tokio::test]
async fn python_asyncio_polling() {
    verdict(python("asyncio", "polling"), "polling").await;
}

#[tokio::test]
async fn python_asyncio_websocket() {
    verdict(python("asyncio", "websocket"), "websocket").await;
}

#[tokio::test]
async fn rust_socketio_polling() {
    verdict(rust_socketio("polling"), "polling").await;
}

#[tokio::test]
async fn rust_socketio_websocket() {
    verdict(rust_socketio("websocket"), "websocket").await;
}

/// Handshake over polling, then the upgrade to WebSocket
/// (`TransportType::WebsocketUpgrade`, which fails when the upgrade does).
#[tokio::test]
async fn rust_socketio_websocket_upgrade() {
    verdict(rust_socketio("upgrade"), "upgrade").await;
}
