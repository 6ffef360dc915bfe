//! No sticky sessions: three `socketgate` nodes on one real `redis-server`,
//! behind a real nginx doing plain round-robin (no `ip_hash`, no cookie), so
//! every request and WebSocket of a client may land on any node. The real
//! socket.io clients (tests/node/lb-client.mjs) must see every message once
//! and in order, the nodes' counters must show that requests crossed nodes,
//! and a node killed or restarted under load must cost nothing: its clients
//! reconnect through nginx and recover their session (same id, rooms,
//! missed messages) on another node.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::cluster::{Cluster, Gateway, Health, health, owner};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::process::Child;

/// The header a forwarding node puts the cluster secret in.
const SECRET_HEADER: &str = "x-socketgate-secret";
/// The header a forwarding node puts the client's address in.
const FORWARDED_FOR_HEADER: &str = "x-socketgate-forwarded-for";

/// How long a Node scenario may run before the test gives up on it (the
/// scripts have watchdogs of their own, shorter than this).
const NODE_RUN_DEADLINE: Duration = Duration::from_secs(180);

// ---- Node scripts ------------------------------------------------------------

/// A running `lb-client.mjs`: its `READY` line (stream) when it comes, and
/// the verdict when it ends.
struct Script {
    child: Child,
    ready: tokio::sync::oneshot::Receiver<Value>,
    stdout: tokio::task::JoinHandle<Vec<String>>,
    stderr: tokio::task::JoinHandle<String>,
    args: Vec<String>,
}

fn lb_client(args: &[&str]) -> Script {
    let mut child = common::spawn_node("lb-client.mjs", args);
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let stdout = tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        let mut lines = Vec::new();
        while let Ok(Some(line)) = out.next_line().await {
            if let Some(json) = line.strip_prefix("READY ")
                && let Some(tx) = ready_tx.take()
            {
                let _ = tx.send(serde_json::from_str(json).unwrap_or_default());
            }
            lines.push(line);
        }
        lines
    });
    let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(line)) = err.next_line().await {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    Script {
        child,
        ready,
        stdout,
        stderr,
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

impl Script {
    /// Waits for the `READY {…}` line.
    async fn ready(&mut self) -> Value {
        match tokio::time::timeout(Duration::from_secs(60), &mut self.ready).await {
            Ok(Ok(v)) => v,
            _ => {
                let _ = self.child.start_kill();
                panic!("lb-client {:?} printed no READY line in time", self.args);
            }
        }
    }

    /// Waits for the end; returns the verdict (the last stdout line), which
    /// the caller checks, after printing the script's progress log.
    async fn verdict(mut self) -> Value {
        let status = match tokio::time::timeout(NODE_RUN_DEADLINE, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => {
                let _ = self.child.start_kill();
                panic!(
                    "lb-client {:?} did not finish within {NODE_RUN_DEADLINE:?}",
                    self.args
                );
            }
        };
        let stdout = self.stdout.await.unwrap();
        let stderr = self.stderr.await.unwrap();
        eprintln!("--- lb-client {:?} ({status})\n{stderr}", self.args);
        let last = stdout.iter().rev().find(|l| !l.trim().is_empty());
        last.and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| {
                panic!(
                    "lb-client {:?} gave no verdict:\n{}",
                    self.args,
                    stdout.join("\n")
                )
            })
    }
}

/// A verdict that must be ok; shown whole when it is not.
fn assert_ok(verdict: &Value) {
    assert!(
        verdict["ok"] == true,
        "the clients saw a failure:\n{verdict:#}"
    );
}

// ---- chat through the round-robin ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_clients_chat_through_round_robin() {
    let cluster = Cluster::start(&[]).await;
    let url = cluster.nginx.url();
    // Each mode with its own clients and rooms, all at once.
    let runs: Vec<Script> = ["polling", "websocket", "upgrade"]
        .iter()
        .map(|mode| lb_client(&["chat", &url, mode, "20", "10000"]))
        .collect();
    let mut verdicts = Vec::new();
    for run in runs {
        verdicts.push(run.verdict().await);
    }
    let healths = cluster.report().await;
    for v in &verdicts {
        assert_ok(v);
        eprintln!(
            "{}: {} sent, {} delivered of {} expected, {} on websocket",
            v["mode"], v["sent"], v["received"], v["expected"], v["on_websocket"]
        );
        assert!(v["sent"].as_u64().unwrap() > 0, "{v}");
    }
    // Polling-then-upgrade clients all ended on WebSocket, the upgrade
    // having landed on any node.
    let upgrade = &verdicts[2];
    assert_eq!(upgrade["on_websocket"], 20, "{upgrade:#}");

    // Sessions were opened on every node, and requests crossed nodes.
    let ids = cluster.ids();
    let owners: BTreeSet<u16> = verdicts
        .iter()
        .flat_map(|v| v["engine_ids"].as_array().unwrap().clone())
        .map(|sid| owner(sid.as_str().unwrap()))
        .collect();
    assert_eq!(
        owners,
        ids.iter().copied().collect(),
        "the sessions' owners"
    );
    let total = |f: fn(&Health) -> u64| healths.iter().map(f).sum::<u64>();
    assert!(
        total(|h| h.forwarded) > 0,
        "no request was forwarded: {healths:?}"
    );
    assert!(
        total(|h| h.served_forwarded) > 0,
        "no forwarded request was served: {healths:?}"
    );
    assert!(
        total(|h| h.relayed) > 0,
        "no WebSocket upgrade was relayed: {healths:?}"
    );
    assert_eq!(total(|h| h.refused), 0, "{healths:?}");
    // nginx used every node.
    let spread = cluster.nginx.spread();
    for node in &cluster.nodes {
        assert!(
            spread.get(&node.addr).copied().unwrap_or(0) > 0,
            "nginx sent nothing to {}: {spread:?}",
            node.addr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_clients_poll_through_round_robin() {
    let cluster = Cluster::start(&["--allow-eio3"]).await;
    let verdict = lb_client(&["legacy", &cluster.nginx.url(), "20", "10000"])
        .verdict()
        .await;
    let healths = cluster.report().await;
    assert_ok(&verdict);
    let owners: BTreeSet<u16> = verdict["engine_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sid| owner(sid.as_str().unwrap()))
        .collect();
    assert!(owners.len() > 1, "sessions on one node only: {owners:?}");
    let forwarded: u64 = healths.iter().map(|h| h.forwarded).sum();
    assert!(forwarded > 0, "no request was forwarded: {healths:?}");
}

// ---- a node going away under load ------------------------------------------------

/// How a receiver of the stream fared.
struct Receiver<'a> {
    owner: u16,
    json: &'a Value,
}

impl Receiver<'_> {
    fn disconnects(&self) -> usize {
        self.json["disconnects"].as_array().unwrap().len()
    }
    /// Every disconnect was followed by a recovered connection with the
    /// same socket id, and it is connected at the end.
    fn recovered_each_time(&self) -> bool {
        let reconnects = self.json["reconnects"].as_array().unwrap();
        self.json["connected"] == true
            && reconnects.len() >= self.disconnects()
            && reconnects
                .iter()
                .all(|r| r["recovered"] == true && r["same_id"] == true)
    }
}

/// Streams 400 messages at 50/s from a client on node 0 to 30 receivers
/// through nginx; two seconds in, `hit` takes node 1 away (and may bring it
/// back). Checks that nothing was lost, duplicated or reordered, and that
/// every receiver that lost its connection recovered its session. Returns
/// how many reconnects the clients saw and the counters of the nodes up at
/// the end.
async fn stream_while<F, Fut>(hit: F) -> (u64, Vec<Health>)
where
    F: FnOnce(Cluster) -> Fut,
    Fut: std::future::Future<Output = Cluster>,
{
    let cluster = Cluster::start(&[]).await;
    let victim = cluster.nodes[1].node_id;
    let sender = cluster.nodes[0].url();
    let mut run = lb_client(&["stream", &cluster.nginx.url(), &sender, "30", "400", "50"]);
    let ready = run.ready().await;
    let first_owners: Vec<u16> = ready["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| owner(r["engine_id"].as_str().unwrap()))
        .collect();
    // When the node goes is all this wait decides.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cluster = hit(cluster).await;
    let verdict = run.verdict().await;
    let healths = cluster.report().await;

    let receivers: Vec<Receiver> = verdict["per_receiver"]
        .as_array()
        .unwrap_or_else(|| panic!("{verdict:#}"))
        .iter()
        .zip(&first_owners)
        .map(|(json, &owner)| Receiver { owner, json })
        .collect();
    let (theirs, others): (Vec<&Receiver>, Vec<&Receiver>) =
        receivers.iter().partition(|r| r.owner == victim);
    let others_cut = others.iter().filter(|r| r.disconnects() > 0).count();
    let modes = |group: &[&Receiver]| {
        let mut modes = BTreeMap::new();
        for r in group {
            *modes
                .entry(r.json["mode"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
        modes
    };
    eprintln!(
        "{} receivers on the node that went {:?} (all must have reconnected), {} on the others ({} of them disconnected too)",
        theirs.len(),
        modes(&theirs),
        others.len(),
        others_cut
    );
    assert!(
        !theirs.is_empty(),
        "no receiver was on node {victim}: {first_owners:?}"
    );
    for r in &theirs {
        assert!(
            r.disconnects() > 0,
            "a receiver of node {victim} never disconnected: {:#}",
            r.json
        );
    }
    for r in &receivers {
        assert!(
            r.recovered_each_time(),
            "a receiver did not recover its session: {:#}",
            r.json
        );
        assert_eq!(r.json["missing"], 0, "{:#}", r.json);
    }
    assert_eq!(verdict["missing"], 0, "{verdict:#}");
    assert_eq!(verdict["duplicates"], 0, "{verdict:#}");
    assert_eq!(verdict["out_of_order"], 0, "{verdict:#}");
    assert_ok(&verdict);
    let reconnects = receivers
        .iter()
        .map(|r| r.json["reconnects"].as_array().unwrap().len() as u64)
        .sum();
    let sum = |f: fn(&Health) -> u64| healths.iter().map(f).sum::<u64>();
    eprintln!(
        "{reconnects} reconnects; the nodes up count {} recovered, {} not recovered, {} failed forwards",
        sum(|h| h.recovered),
        sum(|h| h.not_recovered),
        sum(|h| h.forward_failures)
    );
    assert_eq!(sum(|h| h.not_recovered), 0, "{healths:?}");
    (reconnects, healths)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_nothing() {
    let (reconnects, healths) = stream_while(|mut cluster| async move {
        // SIGKILL: no goodbye to the clients, to Redis or to nginx, which
        // keeps it among its upstreams and finds out by itself.
        let node = &mut cluster.nodes[1];
        eprintln!("killing node {} ({})", node.node_id, node.addr);
        node.child.start_kill().unwrap();
        node.exited(common::DEADLINE).await;
        cluster
    })
    .await;
    // Every reconnect came after the kill, so the nodes still up did every
    // recovery.
    let recovered: u64 = healths.iter().map(|h| h.recovered).sum();
    assert_eq!(recovered, reconnects, "{healths:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_loses_nothing() {
    stream_while(|mut cluster| async move {
        let (addr, id) = (cluster.nodes[1].addr.clone(), cluster.nodes[1].node_id);
        eprintln!("SIGTERM to node {id} ({addr})");
        common::sigterm(&cluster.nodes[1].child).await;
        let status = cluster.nodes[1].exited(Duration::from_secs(30)).await;
        eprintln!("node {id} exited ({status}); starting it again on {addr}");
        // nginx's upstreams are fixed: the new process takes the old port.
        let redis = cluster.redis.url();
        let restarted = Gateway::start(&addr, &redis, &cluster.secret, &[]).await;
        eprintln!("node {id} is back as node {}", restarted.node_id);
        cluster.nodes[1] = restarted;
        cluster
    })
    .await;
}

// ---- forwarding is for nodes only ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_requests_need_the_cluster_secret() {
    let cluster = Cluster::start(&[]).await;
    let b = &cluster.nodes[1];
    let sid =
        common::handshake_sid(format!("{}/socket.io/?EIO=4&transport=polling", b.url())).await;
    assert_eq!(owner(&sid), b.node_id);
    // Joins the main namespace, so a poll has something to take.
    let poll_url = format!("{}/socket.io/?EIO=4&transport=polling&sid={sid}", b.url());
    let res = common::http()
        .post(&poll_url)
        .body("40")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Claiming to come from a node without the secret, or with a wrong one.
    let forged = [
        vec![(FORWARDED_FOR_HEADER, "203.0.113.7:4000")],
        vec![(SECRET_HEADER, "guess")],
        vec![
            (SECRET_HEADER, "guess"),
            (FORWARDED_FOR_HEADER, "203.0.113.7:4000"),
        ],
    ];
    for headers in &forged {
        let mut req = common::http().get(&poll_url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        eprintln!("forged forward: {headers:?}");
        common::assert_error(req.send().await.unwrap(), 403, 4, "Forbidden").await;
    }
    assert_eq!(health(&b.addr).await.refused, forged.len() as u64);

    // The session did not suffer: with the secret, as a node would, and
    // then as the client itself, it is served.
    let res = common::http()
        .get(&poll_url)
        .header(SECRET_HEADER, &cluster.secret)
        .header(FORWARDED_FOR_HEADER, "127.0.0.1:4000")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(
        body.starts_with("40{") && body.contains("\"sid\":"),
        "{body}"
    );
    assert!(health(&b.addr).await.served_forwarded >= 1);
    // A request for B's session that reaches another node is forwarded.
    let a = &cluster.nodes[0];
    let via_a = format!("{}/socket.io/?EIO=4&transport=polling&sid={sid}", a.url());
    let res = common::http()
        .post(&via_a)
        .body("421[\"join\",\"via-a\"]")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(health(&a.addr).await.forwarded >= 1);
    let (status, body) = {
        let res = common::http().get(&poll_url).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(body, "431[\"via-a\"]");

    // A sid naming a node no one is: "Session ID unknown" from any node.
    let unused = (1..=u16::MAX)
        .find(|id| !cluster.ids().contains(id))
        .unwrap();
    let ghost = with_node(&sid, unused);
    assert_eq!(owner(&ghost), unused);
    for node in &cluster.nodes {
        let before = health(&node.addr).await.owner_unknown;
        let res = common::http()
            .get(format!(
                "{}/socket.io/?EIO=4&transport=polling&sid={ghost}",
                node.url()
            ))
            .send()
            .await
            .unwrap();
        common::assert_error(res, 400, 1, "Session ID unknown").await;
        assert_eq!(health(&node.addr).await.owner_unknown, before + 1);
    }
}

/// `sid` with its node tag (its first two bytes) replaced by `node`.
fn with_node(sid: &str, node: u16) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = URL_SAFE_NO_PAD.decode(sid).expect("a base64url sid");
    raw[..2].copy_from_slice(&node.to_be_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}
