//! Cluster members on one real `redis-server`, in the test's process or
//! beside it: socketgate nodes serving the test contract (tests/common/sio.rs)
//! on a [`RedisBus`], and a Node socket.io 4.8 server on
//! `@socket.io/redis-adapter` (tests/node/cluster-node.mjs).

use std::time::Duration;

use socketgate::socketio::{SocketIo, SocketIoConfig};
use socketgate::{ClusterStore, RedisBus, RedisConfig};

use super::redis::RedisServer;
use super::sio::SioServer;

/// A socketgate node on the bus.
pub struct Node {
    pub server: SioServer,
    pub bus: RedisBus,
}

impl Node {
    /// A node with `cfg` on the bus `bus` describes, and with `store` for
    /// connection state recovery (then `cfg` must turn recovery on).
    pub async fn start(bus: RedisConfig, cfg: SocketIoConfig, store: Option<ClusterStore>) -> Node {
        let bus = RedisBus::new(bus).unwrap();
        let mut builder = SocketIo::builder()
            .config(cfg)
            .adapter(bus.adapter_factory());
        if let Some(store) = store {
            builder = builder.cluster_store(store);
        }
        let server =
            SioServer::serve(builder.build().unwrap(), "127.0.0.1:0".parse().unwrap()).await;
        Node { server, bus }
    }

    /// Waits until this node counts `n` servers on its bus (itself
    /// included): every one of them is subscribed.
    pub async fn sees(&self, n: usize) {
        let ns = self.server.io.of("/").unwrap();
        let deadline = tokio::time::Instant::now() + super::DEADLINE;
        while ns.server_count().await.ok() != Some(n) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} servers never subscribed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A Node socket.io 4.8 server on `@socket.io/redis-adapter` and the
/// Redis `redis`, built with `parser` (`"json"` or `"msgpack"`, the real
/// `socket.io-msgpack-parser`); its port. Killed when dropped.
pub async fn node_socketio_server(
    redis: &RedisServer,
    parser: &str,
) -> (tokio::process::Child, u16) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new("node")
        .arg(super::node_dir().join("cluster-node.mjs"))
        .args(["server", &redis.url(), parser])
        .current_dir(super::node_dir())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(super::DEADLINE, lines.next_line())
        .await
        .expect("the Node server started")
        .unwrap()
        .expect("the Node server printed its port");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let port = v["listening"].as_u64().unwrap_or_else(|| panic!("{line}"));
    (child, u16::try_from(port).unwrap())
}
