//! The nodes of a cluster, registered in Redis: each claims a 16-bit id
//! (carried in its session ids), says where it serves, and renews that
//! every [`NodesConfig::heartbeat`]; a node whose record lapses
//! ([`NodesConfig::ttl`]) is dead. The registry is the engine's
//! [`SessionRouter`]: it says where a session's owner serves.
//!
//! Keys: `<prefix>#node#<id>` holds `{"addr":…,"uid":…}` with an expiry.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::ConnectionManager;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::BusError;
use crate::engine::SessionRouter;

/// Settings of the node registry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodesConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Key prefix; default `socket.io`.
    pub prefix: String,
    /// The address other nodes reach this one on (its listening address,
    /// unless that is a wildcard).
    pub addr: SocketAddr,
    /// The id to claim; default none: a free random one.
    pub node_id: Option<u16>,
    /// The secret every node shares; forwarded requests carry it.
    pub secret: String,
    /// How often the record is renewed and the others are looked at;
    /// default 2 s.
    pub heartbeat: Duration,
    /// How long a record lives without renewal; default 6 s.
    pub ttl: Duration,
}

impl NodesConfig {
    /// The defaults, for a node serving on `addr`.
    pub fn new(url: impl Into<String>, addr: SocketAddr, secret: impl Into<String>) -> Self {
        NodesConfig {
            url: url.into(),
            prefix: "socket.io".to_owned(),
            addr,
            node_id: None,
            secret: secret.into(),
            heartbeat: Duration::from_secs(2),
            ttl: Duration::from_secs(6),
        }
    }
}

/// What the registry counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodesStats {
    /// Live nodes seen at the last look, this one included.
    pub alive: usize,
    /// Nodes that appeared since this one started.
    pub joined: u64,
    /// Nodes that went (record lapsed or removed, or unreachable).
    pub died: u64,
}

struct Inner {
    config: NodesConfig,
    id: u16,
    /// This node's record.
    record: String,
    conn: ConnectionManager,
    /// The other nodes, as last seen.
    known: RwLock<HashMap<u16, SocketAddr>>,
    /// Nodes a forward could not reach, and when: treated as dead until
    /// their record is renewed after that.
    unreachable: Mutex<HashMap<u16, Instant>>,
    joined: AtomicU64,
    died: AtomicU64,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// This node's membership of a cluster; see the module docs. Cheap to
/// clone; the heartbeat stops with the last clone (or [`leave`](Self::leave)).
#[derive(Clone)]
pub struct NodeRegistry(Arc<Inner>);

impl std::fmt::Debug for NodeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRegistry")
            .field("id", &self.0.id)
            .field("addr", &self.0.config.addr)
            .finish()
    }
}

/// Renews a record only while it is ours: a node whose record lapsed (Redis
/// away) and whose id another node took does not take it back.
const RENEW: &str = r"
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0";

/// Removes a record only while it is ours.
const REMOVE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

fn key(prefix: &str, id: u16) -> String {
    format!("{prefix}#node#{id}")
}

fn record_addr(record: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(record).ok()?;
    v.get("addr")?.as_str()?.parse().ok()
}

impl NodeRegistry {
    /// Claims an id (the one configured, or a free random one) and starts
    /// the heartbeat. Redis must answer: a node that cannot say where it
    /// serves cannot own sessions others route to. Retries for a few
    /// seconds, then fails.
    pub async fn join(config: NodesConfig) -> Result<Self, BusError> {
        let conn = super::manager(&config.url)?;
        let uid = super::redis::node_uid();
        let record = serde_json::json!({ "addr": config.addr.to_string(), "uid": uid }).to_string();
        let ttl = config.ttl.as_millis().to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut attempts = 0u32;
        let id = loop {
            let id = match config.node_id {
                Some(id) => id,
                None => random_id(),
            };
            let claimed: Result<Option<String>, _> = redis::cmd("SET")
                .arg(key(&config.prefix, id))
                .arg(&record)
                .arg("NX")
                .arg("PX")
                .arg(&ttl)
                .query_async(&mut conn.clone())
                .await;
            match claimed {
                Ok(Some(_)) => break id,
                Ok(None) if config.node_id.is_some() => {
                    return Err(BusError::Setup(format!(
                        "node id {id} is taken by a live node: give every node its own --node-id, or none"
                    )));
                }
                Ok(None) => {
                    attempts += 1;
                    if attempts > 100 {
                        return Err(BusError::Setup("no free node id".into()));
                    }
                }
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "Redis not reachable yet to claim a node id");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    return Err(BusError::Setup(format!(
                        "cannot register this node in Redis ({e}): the cluster needs Redis up when a node starts"
                    )));
                }
            }
        };
        tracing::info!(node = id, addr = %config.addr, "joined the cluster");
        let inner = Arc::new(Inner {
            config,
            id,
            record,
            conn,
            known: RwLock::new(HashMap::new()),
            unreachable: Mutex::new(HashMap::new()),
            joined: AtomicU64::new(0),
            died: AtomicU64::new(0),
            stop: CancellationToken::new(),
        });
        inner.look().await;
        tokio::spawn(heartbeat(Arc::downgrade(&inner)));
        Ok(NodeRegistry(inner))
    }

    /// The id this node claimed.
    pub fn id(&self) -> u16 {
        self.0.id
    }

    /// Counters and the number of live nodes.
    pub fn stats(&self) -> NodesStats {
        NodesStats {
            alive: self.0.known.read().unwrap_or_else(|e| e.into_inner()).len() + 1,
            joined: self.0.joined.load(Ordering::Relaxed),
            died: self.0.died.load(Ordering::Relaxed),
        }
    }

    /// Stops the heartbeat and removes this node's record: the others stop
    /// routing to it at once.
    pub async fn leave(&self) {
        self.0.stop.cancel();
        let removed: Result<i64, _> = redis::Script::new(REMOVE)
            .key(key(&self.0.config.prefix, self.0.id))
            .arg(&self.0.record)
            .invoke_async(&mut self.0.conn.clone())
            .await;
        match removed {
            Ok(_) => tracing::info!(node = self.0.id, "left the cluster"),
            Err(e) => tracing::warn!(
                node = self.0.id,
                error = %e,
                "could not remove this node's record; it lapses by itself"
            ),
        }
    }
}

fn random_id() -> u16 {
    let mut raw = [0u8; 2];
    let _ = getrandom::fill(&mut raw);
    // 0 is a single server's id.
    u16::from_be_bytes(raw).max(1)
}

impl Inner {
    /// Renews this node's record and reads everyone's.
    async fn look(&self) {
        let mut conn = self.conn.clone();
        let renewed: Result<i64, _> = redis::Script::new(RENEW)
            .key(key(&self.config.prefix, self.id))
            .arg(&self.record)
            .arg(self.config.ttl.as_millis().to_string())
            .invoke_async(&mut conn)
            .await;
        match renewed {
            Ok(1) => {}
            Ok(_) => tracing::error!(
                node = self.id,
                "another node took this node's id while Redis was unreachable: restart this node"
            ),
            Err(e) => {
                tracing::debug!(error = %e, "node heartbeat failed");
                return;
            }
        }
        let pattern = format!("{}#node#*", self.config.prefix);
        let mut keys: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let page: Result<(u64, Vec<String>), _> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await;
            let Ok((next, page)) = page else { return };
            keys.extend(page);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let records: Vec<Option<String>> = if keys.is_empty() {
            Vec::new()
        } else {
            match redis::cmd("MGET").arg(&keys).query_async(&mut conn).await {
                Ok(r) => r,
                Err(_) => return,
            }
        };
        let mut now = HashMap::new();
        for (k, record) in keys.iter().zip(records) {
            let id = k.rsplit('#').next().and_then(|s| s.parse::<u16>().ok());
            if let (Some(id), Some(addr)) = (id, record.as_deref().and_then(record_addr))
                && id != self.id
                && !self.is_unreachable(id)
            {
                now.insert(id, addr);
            }
        }
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        for (id, addr) in &now {
            if !known.contains_key(id) {
                self.joined.fetch_add(1, Ordering::Relaxed);
                tracing::info!(node = id, %addr, "a node joined the cluster");
            }
        }
        for (id, addr) in known.iter() {
            if !now.contains_key(id) {
                self.died.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    node = id,
                    %addr,
                    "a node left the cluster (record removed or lapsed): its clients reconnect to the others"
                );
            }
        }
        *known = now;
    }

    fn is_unreachable(&self, id: u16) -> bool {
        let marks = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        // Trusted for one record lifetime: a node that was restarted on
        // the same address claims a new id anyway.
        marks
            .get(&id)
            .is_some_and(|at| at.elapsed() < self.config.ttl)
    }
}

async fn heartbeat(inner: Weak<Inner>) {
    let (interval, stop) = match inner.upgrade() {
        Some(i) => (i.config.heartbeat, i.stop.clone()),
        None => return,
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        inner.look().await;
    }
}

impl SessionRouter for NodeRegistry {
    fn locate(&self, node: u16) -> BoxFuture<'static, Option<SocketAddr>> {
        let inner = self.0.clone();
        Box::pin(async move {
            if node == inner.id || inner.is_unreachable(node) {
                return None;
            }
            let cached = inner
                .known
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&node)
                .copied();
            if cached.is_some() {
                return cached;
            }
            // A node that joined since the last look.
            let record: Option<String> = redis::cmd("GET")
                .arg(key(&inner.config.prefix, node))
                .query_async(&mut inner.conn.clone())
                .await
                .ok()
                .flatten();
            let addr = record.as_deref().and_then(record_addr)?;
            inner
                .known
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(node, addr);
            Some(addr)
        })
    }

    fn secret(&self) -> &str {
        &self.0.config.secret
    }

    fn unreachable(&self, node: u16, addr: SocketAddr) {
        let mut marks = self.0.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = marks
            .insert(node, Instant::now())
            .is_none_or(|at| at.elapsed() >= self.0.config.ttl);
        drop(marks);
        let removed = self
            .0
            .known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&node)
            .is_some();
        if fresh && removed {
            self.0.died.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                node,
                %addr,
                "a node does not answer: its clients get 'Session ID unknown' and reconnect to the others"
            );
        }
    }
}
