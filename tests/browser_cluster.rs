//! The demo page in headless Chromium through nginx round-robin over three
//! `socketgate` nodes sharing a real `redis-server`, with WebSocket blocked
//! from the first connection (polling only): chat works, and survives
//! SIGKILLing the node that owns (first served) page A's session.
//!
//! `tests/node/browser-cluster.mjs` drives the pages. It prints a progress
//! line `{"event":"owner","sid":…,"handshake":…}` with page A's engine sid;
//! this test finds the node that sid names, SIGKILLs it and answers
//! `KILLED <node id>` on the script's stdin; the script then checks that the
//! page reconnects by itself, still over polling, recovers its session on
//! another node, and chats again both ways. Screenshots go to
//! `target/e2e-artifacts/cluster-*.png`.
//!
//! Needs `npm ci` in `tests/node` (playwright-core) and in `client-demo`
//! (the bundle the nodes serve), `/usr/bin/chromium`, nginx and redis-server.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::cluster::{Cluster, Health, health};
use serde_json::Value;
use socketgate::engine::Sid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// The script's own watchdog is 90 s; this is the backstop (under nextest's
/// 120 s).
const SCRIPT_DEADLINE: Duration = Duration::from_secs(100);

#[tokio::test]
async fn polling_only_browser_chat_survives_a_killed_node() {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's `chromium` package (apt-get install chromium)"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = root.join("client-demo/node_modules/socket.io-client/dist/socket.io.min.js");
    assert!(
        bundle.is_file(),
        "{} is missing: run `npm ci` in client-demo/",
        bundle.display()
    );
    let node_dir = common::node_dir();
    assert!(
        node_dir.join("node_modules").is_dir(),
        "tests/node/node_modules is missing: run `npm ci` in tests/node"
    );
    let artifacts = root.join("target/e2e-artifacts");

    let mut cluster =
        Cluster::start(&["--client-bundle", bundle.to_str().expect("a UTF-8 path")]).await;
    let url = cluster.nginx.url();

    let mut script = tokio::process::Command::new("node")
        .arg(node_dir.join("browser-cluster.mjs"))
        .arg(&url)
        .arg(&artifacts)
        .current_dir(&node_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut stdin = script.stdin.take().unwrap();
    let mut stdout = tokio::io::BufReader::new(script.stdout.take().unwrap()).lines();
    let stderr_reader = script.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let mut lines = tokio::io::BufReader::new(stderr_reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });

    // Read the script's lines; kill the owner of page A's session when asked.
    let mut output = Vec::new();
    let mut killed: Option<(u16, String, Health)> = None;
    let mut handshake_uri = None;
    let run = async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            eprintln!("script: {line}");
            let json: Value = serde_json::from_str(&line).unwrap_or_default();
            output.push(line);
            if json["event"] != "owner" {
                continue;
            }
            assert!(killed.is_none(), "a second owner line");
            let sid = json["sid"].as_str().expect("a sid in the owner line");
            let owner = Sid::parse(sid)
                .unwrap_or_else(|| panic!("not a session id: {sid}"))
                .node();
            handshake_uri = json["handshake"].as_str().map(str::to_owned);
            let index = cluster
                .nodes
                .iter()
                .position(|n| n.node_id == owner)
                .unwrap_or_else(|| panic!("sid {sid} names node {owner}, which is none of ours"));
            let node = &mut cluster.nodes[index];
            // Its counters die with it: read them first.
            let last = health(&node.addr).await;
            node.child.start_kill().expect("SIGKILL the owner");
            let status = tokio::time::timeout(common::DEADLINE, node.child.wait())
                .await
                .expect("the killed node exits")
                .unwrap();
            eprintln!("killed node {owner} ({}) owning {sid}: {status}", node.addr);
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(9),
                "{status}"
            );
            killed = Some((owner, node.addr.clone(), last));
            stdin
                .write_all(format!("KILLED {owner}\n").as_bytes())
                .await
                .unwrap();
            stdin.flush().await.unwrap();
        }
    };
    if tokio::time::timeout(SCRIPT_DEADLINE, run).await.is_err() {
        let _ = script.start_kill();
        panic!("browser-cluster.mjs did not finish within {SCRIPT_DEADLINE:?}");
    }
    let status = tokio::time::timeout(common::DEADLINE, script.wait())
        .await
        .expect("the script exits once its stdout closed")
        .unwrap();
    let stderr = stderr.await.unwrap();
    if !stderr.is_empty() {
        eprintln!("--- script stderr\n{stderr}");
    }
    let verdict: Value = output
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    assert!(
        status.success() && verdict["ok"] == true,
        "the browser saw a failure ({status}):\n{verdict:#}"
    );

    // The node killed was the one that served page A's handshake and owned
    // its session; the session now lives on a survivor.
    let (killed_id, killed_addr, killed_health) = killed.expect("the script named an owner");
    let handshake_uri = handshake_uri.expect("the owner line names A's handshake");
    let handshake = cluster
        .nginx
        .access_log()
        .into_iter()
        .find(|l| l.uri == handshake_uri)
        .unwrap_or_else(|| panic!("nginx did not log A's handshake {handshake_uri}"));
    assert_eq!(
        handshake.upstreams.last(),
        Some(&killed_addr),
        "A's handshake was not served by the node that owned its session: {handshake:?}"
    );
    let new_owner = Sid::parse(verdict["newSid"].as_str().expect("newSid"))
        .expect("a sid")
        .node();
    assert_ne!(new_owner, killed_id, "the new session is on the dead node");
    assert!(
        cluster.nodes.iter().any(|n| n.node_id == new_owner),
        "the new session names node {new_owner}, which is none of ours"
    );
    assert_eq!(verdict["recovered"], "yes", "{verdict:#}");

    // Requests crossed nodes: round-robin sent a session's requests to nodes
    // that do not own it, and they forwarded them.
    let mut forwarded = killed_health.forwarded;
    let mut served = killed_health.served_forwarded;
    for node in cluster.nodes.iter().filter(|n| n.node_id != killed_id) {
        let h = health(&node.addr).await;
        eprintln!("node {}: {h:?}", h.node_id);
        forwarded += h.forwarded;
        served += h.served_forwarded;
    }
    eprintln!("killed node {killed_id} before the kill: {killed_health:?}");
    eprintln!("nginx spread: {:?}", cluster.nginx.spread());
    assert!(forwarded > 0, "no request was forwarded between nodes");
    assert!(served > 0, "no forwarded request was served by an owner");

    for node in &cluster.nodes {
        for line in node.warnings() {
            eprintln!("node {} warning: {line}", node.node_id);
        }
    }
    cluster.nginx.stop().await;
    for node in &mut cluster.nodes {
        let _ = node.child.start_kill();
        let _ = node.child.wait().await;
    }
}
