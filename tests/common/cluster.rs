//! A cluster for the tests: a real `redis-server`, three `socketgate`
//! processes sharing a cluster secret, and a real nginx doing plain
//! round-robin over them (tests/no_sticky.rs, tests/browser_cluster.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use socketgate::engine::Sid;
use tokio::process::Child;

use super::nginx::Nginx;
use super::redis::RedisServer;

/// Flags every node gets besides its address, Redis and the secret: cross-node
/// recovery for a minute, and a heartbeat quick enough that a dead
/// connection is noticed within seconds.
pub const NODE_FLAGS: &[&str] = &[
    "--recovery-ms",
    "60000",
    "--ping-interval-ms",
    "1000",
    "--ping-timeout-ms",
    "2000",
    "--shutdown-grace-ms",
    "3000",
];

// ---- what a node says about itself -----------------------------------------

/// The parts of `GET /health` these tests read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Health {
    pub node_id: u16,
    /// Live nodes this one knows of, itself included.
    pub alive: u64,
    pub bus_up: bool,
    /// Requests this node forwarded to a session's owner.
    pub forwarded: u64,
    /// Forwarded requests it served as the owner.
    pub served_forwarded: u64,
    /// WebSocket upgrades it relayed to the owner.
    pub relayed: u64,
    /// Forwarded requests refused for a missing or wrong secret.
    pub refused: u64,
    /// Requests naming a node that is not alive.
    pub owner_unknown: u64,
    /// Forwards that could not reach the owner.
    pub forward_failures: u64,
    /// Sockets that recovered their session here (any node's session).
    pub recovered: u64,
    /// Recoveries asked for here that failed.
    pub not_recovered: u64,
}

/// Reads `/health`: the one place that knows the field names.
pub async fn health(addr: &str) -> Health {
    let text = super::get_text(format!("http://{addr}/health")).await;
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let r = &json["routing"];
    Health {
        node_id: json["node_id"].as_u64().expect("node_id in /health") as u16,
        alive: n(&json["cluster"]["nodes"]["alive"]),
        bus_up: json["cluster"]["bus"] == "up",
        forwarded: n(&r["forwarded"]),
        served_forwarded: n(&r["served_forwarded"]),
        relayed: n(&r["relayed"]),
        refused: n(&r["refused_forwards"]),
        owner_unknown: n(&r["owner_unknown"]),
        forward_failures: n(&r["forward_failures"]),
        recovered: n(&json["recovery"]["recovered"]),
        not_recovered: n(&json["recovery"]["not_recovered"]),
    }
}

/// The node an engine.io session id names as its owner.
pub fn owner(sid: &str) -> u16 {
    Sid::parse(sid)
        .unwrap_or_else(|| panic!("not a session id: {sid}"))
        .node()
}

// ---- the cluster -----------------------------------------------------------

/// One `socketgate` process; its log is kept (the pipe must be read, or
/// the process would block writing to it).
pub struct Gateway {
    pub child: Child,
    pub addr: String,
    pub node_id: u16,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    pub async fn start(addr: &str, redis: &str, secret: &str, extra: &[&str]) -> Gateway {
        let mut args = vec![
            "--addr",
            addr,
            "--redis-url",
            redis,
            "--cluster-secret",
            secret,
        ];
        args.extend_from_slice(NODE_FLAGS);
        args.extend_from_slice(extra);
        let (child, addr, mut lines) = super::spawn_gateway(&args).await;
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = keep.lock().unwrap();
                if log.len() >= 5_000 {
                    log.drain(..1_000);
                }
                log.push(line);
            }
        });
        let node_id = health(&addr).await.node_id;
        Gateway {
            child,
            addr,
            node_id,
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its log lines at WARN or ERROR level.
    pub fn warnings(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .cloned()
            .collect()
    }

    /// Waits until the process has exited.
    pub async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("node {} did not exit within {within:?}", self.node_id))
            .unwrap()
    }
}

/// Redis, three nodes sharing a secret, and nginx round-robin over them.
pub struct Cluster {
    pub nodes: Vec<Gateway>,
    pub nginx: Nginx,
    pub redis: RedisServer,
    pub secret: String,
}

impl Cluster {
    pub async fn start(extra: &[&str]) -> Cluster {
        let redis = RedisServer::start().await;
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).unwrap();
        let secret: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(Gateway::start("127.0.0.1:0", &redis.url(), &secret, extra).await);
        }
        let ids: BTreeSet<u16> = nodes.iter().map(|n| n.node_id).collect();
        assert_eq!(ids.len(), 3, "three nodes, three ids: {ids:?}");
        let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
        let nginx = Nginx::start(&addrs).await;
        let cluster = Cluster {
            nodes,
            nginx,
            redis,
            secret,
        };
        cluster.all_see(3).await;
        cluster
    }

    /// Waits until every running node sees `n` live nodes and its bus is up.
    pub async fn all_see(&self, n: u64) {
        for node in &self.nodes {
            let addr = node.addr.clone();
            super::until_async(&format!("node {} to see {n} nodes", node.node_id), || {
                let addr = addr.clone();
                async move {
                    let h = health(&addr).await;
                    h.alive == n && h.bus_up
                }
            })
            .await;
        }
    }

    pub fn ids(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.node_id).collect()
    }

    /// Every node's counters (a node that is down is skipped).
    pub async fn healths(&self) -> Vec<Health> {
        let mut all = Vec::new();
        for node in &self.nodes {
            if tokio::net::TcpStream::connect(&node.addr).await.is_ok() {
                all.push(health(&node.addr).await);
            }
        }
        all
    }

    /// The routing counters and nginx's spread of requests over the nodes.
    pub async fn report(&self) -> Vec<Health> {
        let healths = self.healths().await;
        for h in &healths {
            eprintln!("node {}: {h:?}", h.node_id);
        }
        let names: BTreeMap<String, u16> = self
            .nodes
            .iter()
            .map(|n| (n.addr.clone(), n.node_id))
            .collect();
        for (upstream, count) in self.nginx.spread() {
            let node = names
                .get(&upstream)
                .map_or("?".to_owned(), |id| id.to_string());
            eprintln!("nginx sent {count} requests to {upstream} (node {node})");
        }
        // A request nginx passed on to another node after one failed.
        let retried: Vec<_> = self
            .nginx
            .access_log()
            .into_iter()
            .filter(|r| r.upstreams.len() > 1)
            .collect();
        if !retried.is_empty() {
            let gets = retried.iter().filter(|r| r.method == "GET").count();
            eprintln!(
                "nginx retried {} requests on another node ({gets} GETs), e.g. {:?}",
                retried.len(),
                retried[0]
            );
        }
        healths
    }
}

impl Drop for Cluster {
    /// On failure, the end of every node's log and nginx's error log.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for node in &self.nodes {
            let log = node.log.lock().unwrap();
            eprintln!("--- node {} ({}) log, last lines", node.node_id, node.addr);
            for line in log.iter().rev().take(60).rev() {
                eprintln!("{line}");
            }
        }
        eprintln!("--- nginx error log\n{}", self.nginx.error_log());
    }
}
