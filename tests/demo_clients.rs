//! The command-line demo clients (`client-demo/node/demo.mjs`, with
//! socket.io-client, and `client-demo/python/demo.py`, with python-socketio)
//! against the `socketgate` binary, over HTTP long-polling: `--once` sends a
//! chat and must get it back; in normal mode each must reconnect by itself
//! when the binary is stopped (SIGTERM) and started again on the same port.
//!
//! Needs `npm ci` in `client-demo/`, and for Python a virtualenv at
//! `target/venv-demo` with `client-demo/python/requirements.txt` installed:
//!
//! ```sh
//! python3 -m venv target/venv-demo
//! target/venv-demo/bin/pip install -r client-demo/python/requirements.txt
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const STEP: Duration = Duration::from_secs(20);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `socketgate` binary on `addr`; returns it with the address it listens on.
async fn gateway(addr: &str) -> (Child, String) {
    let (child, addr, mut log) = common::spawn_gateway(&["--addr", addr]).await;
    // Keep reading its log so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
    (child, addr)
}

async fn stop(child: &mut Child) {
    common::sigterm(child).await;
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the gateway exited after SIGTERM")
        .unwrap();
    assert!(status.success(), "the gateway exited with {status}");
}

fn node_demo() -> Command {
    let modules = root().join("client-demo/node_modules/socket.io-client");
    assert!(
        modules.is_dir(),
        "{} is missing: run `npm ci` in client-demo/",
        modules.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg(root().join("client-demo/node/demo.mjs"));
    cmd
}

fn python_demo() -> Command {
    let python: PathBuf = root().join("target/venv-demo/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: create the demo's virtualenv with\n  python3 -m venv target/venv-demo\n  \
         target/venv-demo/bin/pip install -r client-demo/python/requirements.txt",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg(root().join("client-demo/python/demo.py"));
    cmd
}

/// `demo --once URL`: connects over polling, sends one chat, gets it back, exits 0.
async fn once(mut demo: Command) {
    let (_gateway, addr) = gateway("127.0.0.1:0").await;
    let mut child = demo
        .args(["--once", &format!("http://{addr}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Its output is collected as it comes, so that a demo that hangs still
    // shows how far it got.
    let stdout = tokio::spawn(read_all(child.stdout.take().unwrap()));
    let stderr = tokio::spawn(read_all(child.stderr.take().unwrap()));
    let status = match tokio::time::timeout(STEP, child.wait()).await {
        Ok(status) => Some(status.unwrap()),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let (stdout, stderr) = (stdout.await.unwrap(), stderr.await.unwrap());
    assert!(
        status.is_some_and(|s| s.success())
            && stdout.contains("(polling")
            && stdout.contains("joined lobby"),
        "demo --once failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        status.map_or_else(
            || format!("still running after {STEP:?}"),
            |s| s.to_string()
        )
    );
}

async fn read_all(mut from: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut buf = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut from, &mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// Reads the demo's output until a line contains `what`; panics with what it read.
async fn until_line(lines: &mut Lines<BufReader<ChildStdout>>, seen: &mut Vec<String>, what: &str) {
    let found = tokio::time::timeout(STEP, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            if line.contains(what) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "no line with {what:?} from the demo; it printed:\n{}",
        seen.join("\n")
    );
}

/// The demo chats every 0.5 s; the binary is stopped and started again on the
/// same port; the demo must reconnect, join again and chat again by itself.
async fn reconnects(mut demo: Command, attempt_line: &str) {
    let (mut first, addr) = gateway("127.0.0.1:0").await;
    let mut child = demo
        .args(["--every", "0.5", &format!("http://{addr}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    until_line(&mut lines, &mut seen, "joined lobby").await;
    until_line(&mut lines, &mut seen, "tick 1 from").await;
    stop(&mut first).await;
    until_line(&mut lines, &mut seen, "disconnected").await;
    until_line(&mut lines, &mut seen, attempt_line).await;
    let (_second, again) = gateway(&addr).await;
    assert_eq!(again, addr);
    until_line(&mut lines, &mut seen, "connected as").await;
    until_line(&mut lines, &mut seen, "joined lobby").await;
    until_line(&mut lines, &mut seen, "tick").await;
    let _ = child.start_kill();
}

#[tokio::test]
async fn node_demo_once() {
    once(node_demo()).await;
}

#[tokio::test]
async fn node_demo_reconnects_after_restart() {
    reconnects(node_demo(), "reconnect attempt").await;
}

#[tokio::test]
async fn python_demo_once() {
    once(python_demo()).await;
}

#[tokio::test]
async fn python_demo_reconnects_after_restart() {
    reconnects(python_demo(), "new attempt in").await;
}
