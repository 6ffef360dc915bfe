//! The Redis bus: one connection that publishes, one that subscribes, both
//! reconnecting by themselves, shared by the adapters of every namespace.
//!
//! Channels and payloads are those of the Node adapter (see `wire`), so a
//! socketgate node can share a Redis with Node socket.io servers and with
//! `@socket.io/redis-emitter`:
//! - broadcasts on `<prefix>#<nsp>#` (or `<prefix>#<nsp>#<room>#` for a
//!   broadcast to exactly one room), which every node pattern-subscribes
//!   (`<prefix>#<nsp>#*`);
//! - requests (room operations) on `<prefix>-request#<nsp>#`.
//!
//! Nothing waits for Redis: what is handed on goes through a bounded queue
//! to the publishing task; while Redis is away the queue fills and what
//! does not fit is dropped and counted. Incoming messages go through a
//! bounded queue too (a flood drops, counted). State changes (bus up,
//! down) are logged once each, not per message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::wire;
use crate::socketio::{
    Adapter, AdapterContext, AdapterError, AdapterFuture, BroadcastOptions, Gathered, LocalAdapter,
    RemoteAcks, RemoteBroadcast, RemoteOp, Room, SocketId, SocketInfo,
};

/// Settings of the Redis bus.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://host:port/db` (RESP3 is asked for on top).
    pub url: String,
    /// Channel prefix; default `socket.io`, as the Node adapter's.
    pub prefix: String,
    /// Messages waiting to be published, at most; default 10 000. Past it
    /// a broadcast is dropped for the other nodes (counted).
    pub publish_queue: usize,
    /// Messages received and not yet handled, at most; default 10 000.
    pub receive_queue: usize,
    /// How often the bus is checked (and reconnected); default 500 ms
    /// (100 ms at most while it is down).
    pub health_interval: Duration,
}

impl RedisConfig {
    /// The defaults, for the Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "socket.io".to_owned(),
            publish_queue: 10_000,
            receive_queue: 10_000,
            health_interval: Duration::from_millis(500),
        }
    }
}

/// What the bus counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusStats {
    /// Whether Redis answered the last check.
    pub up: bool,
    /// Messages published.
    pub published: u64,
    /// Messages that could not be published (Redis away, queue full).
    pub unpublished: u64,
    /// Messages received from other nodes and handled.
    pub received: u64,
    /// Messages received that could not be decoded (dropped).
    pub malformed: u64,
    /// Messages received but dropped because the receive queue was full.
    pub dropped_incoming: u64,
}

#[derive(Default)]
struct Counters {
    /// 0 (unknown) until the first check, then `UP` or `DOWN`.
    state: std::sync::atomic::AtomicU8,
    published: AtomicU64,
    unpublished: AtomicU64,
    received: AtomicU64,
    malformed: AtomicU64,
    dropped_incoming: AtomicU64,
}

struct Inner {
    /// This node's id on the bus (messages carrying it are our own).
    uid: String,
    config: RedisConfig,
    outgoing: mpsc::Sender<(String, Bytes)>,
    subscriber: ConnectionManager,
    publisher: ConnectionManager,
    namespaces: RwLock<HashMap<String, AdapterContext>>,
    /// Requests of ours waiting for answers, by request id.
    pending: std::sync::Mutex<HashMap<String, mpsc::UnboundedSender<wire::Response>>>,
    counters: Counters,
    stop: CancellationToken,
}

/// A connection to the Redis bus; hands out the adapters of a server's
/// namespaces ([`RedisBus::adapter_factory`]). Cheap to clone; the tasks
/// stop when the last clone and adapter are gone.
#[derive(Clone)]
pub struct RedisBus(Arc<Inner>);

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("uid", &self.0.uid)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Why the bus could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL {url:?}: {error}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        error: String,
    },
    /// The connection could not be configured.
    #[error("cannot set up the Redis connection: {0}")]
    Setup(String),
}

impl RedisBus {
    /// Sets up the bus. Redis need not be up yet: the connections are made
    /// (and remade) in the background, and [`stats`](Self::stats) tells
    /// when they work.
    pub fn new(config: RedisConfig) -> Result<Self, BusError> {
        let url_error = |error: String| BusError::Url {
            url: config.url.clone(),
            error,
        };
        let info: redis::ConnectionInfo = config
            .url
            .as_str()
            .parse()
            .map_err(|e: redis::RedisError| url_error(e.to_string()))?;
        // Push messages (and so a subscriber that resubscribes by itself
        // after a reconnect) need RESP3.
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let info = info.set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(|e| url_error(e.to_string()))?;
        let manager = |push: Option<mpsc::Sender<PushInfo>>, counters: Weak<Inner>| {
            let mut cfg = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(Duration::from_secs(2)))
                .set_max_delay(Duration::from_secs(1))
                .set_number_of_retries(2);
            if let Some(push) = push {
                cfg = cfg
                    .set_push_sender(move |info: PushInfo| {
                        if push.try_send(info).is_err()
                            && let Some(inner) = counters.upgrade()
                        {
                            inner
                                .counters
                                .dropped_incoming
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        Ok::<(), redis::aio::SendError>(())
                    })
                    .set_automatic_resubscription();
            }
            ConnectionManager::new_lazy_with_config(client.clone(), cfg)
                .map_err(|e| BusError::Setup(e.to_string()))
        };
        let (outgoing, to_publish) = mpsc::channel(config.publish_queue.max(1));
        let (push_tx, pushed) = mpsc::channel(config.receive_queue.max(1));
        let mut setup_error = None;
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let subscriber = manager(Some(push_tx), weak.clone());
            let publisher = manager(None, weak.clone());
            let (subscriber, publisher) = match (subscriber, publisher) {
                (Ok(s), Ok(p)) => (s, p),
                (Err(e), _) | (_, Err(e)) => {
                    setup_error = Some(e);
                    // Placeholders for a bus that is never returned.
                    let lazy = ConnectionManager::new_lazy_with_config(
                        client.clone(),
                        ConnectionManagerConfig::new(),
                    );
                    match lazy {
                        Ok(m) => (m.clone(), m),
                        Err(_) => unreachable!("a plain lazy manager needs no connection"),
                    }
                }
            };
            Inner {
                uid: node_uid(),
                config,
                outgoing,
                subscriber,
                publisher,
                namespaces: RwLock::new(HashMap::new()),
                pending: std::sync::Mutex::new(HashMap::new()),
                counters: Counters::default(),
                stop: CancellationToken::new(),
            }
        });
        if let Some(e) = setup_error {
            return Err(e);
        }
        tokio::spawn(publish_loop(Arc::downgrade(&inner), to_publish));
        tokio::spawn(receive_loop(Arc::downgrade(&inner), pushed));
        tokio::spawn(health_loop(Arc::downgrade(&inner)));
        Ok(RedisBus(inner))
    }

    /// The adapter factory for [`SocketIoBuilder::adapter`](crate::socketio::SocketIoBuilder::adapter).
    pub fn adapter_factory(&self) -> impl Fn(&str) -> Box<dyn Adapter> + Send + Sync + 'static {
        let inner = self.0.clone();
        move |path: &str| {
            Box::new(RedisAdapter {
                rooms: LocalAdapter::default(),
                bus: inner.clone(),
                path: path.to_owned(),
                attached: AtomicBool::new(false),
            }) as Box<dyn Adapter>
        }
    }

    /// The bus's counters and state.
    pub fn stats(&self) -> BusStats {
        let c = &self.0.counters;
        BusStats {
            up: c.state.load(Ordering::Relaxed) == UP,
            published: c.published.load(Ordering::Relaxed),
            unpublished: c.unpublished.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            dropped_incoming: c.dropped_incoming.load(Ordering::Relaxed),
        }
    }

    /// Whether the last check found Redis unreachable (false before the
    /// first check).
    pub fn is_down(&self) -> bool {
        self.0.counters.state.load(Ordering::Relaxed) == DOWN
    }

    /// This node's id on the bus.
    pub fn uid(&self) -> &str {
        &self.0.uid
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A random id for this node, as the Node adapter's (6 characters).
pub(crate) fn node_uid() -> String {
    let mut raw = [0u8; 6];
    if getrandom::fill(&mut raw).is_err() {
        tracing::error!("no randomness for the node's bus id: using the time");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        raw.copy_from_slice(&nanos.to_le_bytes()[..6]);
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    raw.iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect()
}

// The state before the first check is 0: unknown.
const UP: u8 = 1;
const DOWN: u8 = 2;

impl Inner {
    fn broadcast_channel(&self, nsp: &str) -> String {
        wire::broadcast_channel(&self.config.prefix, nsp, &[])
    }

    fn request_channel(&self, nsp: &str) -> String {
        wire::request_channel(&self.config.prefix, nsp)
    }

    /// Queues a message for Redis; never waits.
    fn send(&self, channel: String, payload: Bytes) -> Result<(), AdapterError> {
        if self.counters.state.load(Ordering::Relaxed) == DOWN {
            // Redis is away: the queue would only fill with stale messages.
            self.counters.unpublished.fetch_add(1, Ordering::Relaxed);
            return Err(AdapterError::Unavailable("Redis is not reachable".into()));
        }
        match self.outgoing.try_send((channel, payload)) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.counters.unpublished.fetch_add(1, Ordering::Relaxed);
                Err(AdapterError::Backlog)
            }
        }
    }

    async fn subscribe(&self, path: &str) {
        let mut conn = self.subscriber.clone();
        let pattern = format!("{}*", self.broadcast_channel(path));
        let requests = self.request_channel(path);
        for responses in [
            wire::response_channel(&self.config.prefix, path),
            wire::specific_response_channel(&self.config.prefix, path, &self.uid),
        ] {
            if let Err(e) = conn.subscribe(&responses).await {
                tracing::debug!(channel = %responses, error = %e, "subscribe failed; it is redone on reconnect");
            }
        }
        // A failure is retried by the automatic resubscription once the
        // connection is back (the subscription is recorded first).
        if let Err(e) = conn.psubscribe(&pattern).await {
            tracing::debug!(%pattern, error = %e, "psubscribe failed; it is redone on reconnect");
        }
        if let Err(e) = conn.subscribe(&requests).await {
            tracing::debug!(channel = %requests, error = %e, "subscribe failed; it is redone on reconnect");
        }
    }

    async fn unsubscribe(&self, path: &str) {
        let mut conn = self.subscriber.clone();
        let _ = conn
            .punsubscribe(format!("{}*", self.broadcast_channel(path)))
            .await;
        let _ = conn.unsubscribe(self.request_channel(path)).await;
        let _ = conn
            .unsubscribe(wire::response_channel(&self.config.prefix, path))
            .await;
        let _ = conn
            .unsubscribe(wire::specific_response_channel(
                &self.config.prefix,
                path,
                &self.uid,
            ))
            .await;
    }

    /// Sends `request` and gathers the answers until `done` says they are
    /// all in or `timeout` passes; returns them. At most
    /// [`MAX_PENDING`] requests wait at once.
    async fn ask(
        &self,
        nsp: &str,
        request_id: &str,
        request: &wire::Request,
        timeout: Duration,
        mut done: impl FnMut(&[wire::Response]) -> bool,
    ) -> Result<Vec<wire::Response>, AdapterError> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.len() >= MAX_PENDING {
                return Err(AdapterError::Backlog);
            }
            pending.insert(request_id.to_owned(), tx);
        }
        // Forgotten however this ends.
        let _pending = PendingGuard(self, request_id);
        self.send(self.request_channel(nsp), wire::encode_request(request))?;
        let mut answers = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(&answers) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(answer)) => answers.push(answer),
                _ => break,
            }
        }
        Ok(answers)
    }

    /// A request every other node answers once: the request (made with its
    /// id) goes out, and what `pick` takes from each answer is gathered
    /// until all answered or `timeout`.
    async fn ask_each_node<T>(
        &self,
        nsp: &str,
        timeout: Duration,
        request: impl FnOnce(String) -> wire::Request,
        pick: impl Fn(wire::Response) -> Option<Vec<T>>,
    ) -> Result<Gathered<T>, AdapterError> {
        let others = self.other_nodes(nsp).await?;
        if others == 0 {
            return Ok(Gathered::default());
        }
        let id = request_id();
        let request = request(id.clone());
        let answers = self
            .ask(nsp, &id, &request, timeout, |a| a.len() >= others)
            .await?;
        let silent = others.saturating_sub(answers.len());
        let items = answers.into_iter().filter_map(pick).flatten().collect();
        Ok(Gathered::new(items, silent))
    }

    /// How many other nodes listen on `nsp`'s request channel.
    async fn other_nodes(&self, nsp: &str) -> Result<usize, AdapterError> {
        let mut conn = self.publisher.clone();
        let counts: Vec<(String, usize)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(self.request_channel(nsp))
            .query_async(&mut conn)
            .await
            .map_err(|e| AdapterError::Unavailable(e.to_string()))?;
        Ok(counts.first().map_or(0, |(_, n)| *n).saturating_sub(1))
    }

    /// An answer to one of our requests.
    fn on_response(&self, payload: &Bytes) -> Result<(), wire::WireError> {
        let response = wire::decode_response(payload)?;
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = pending.get(response.request_id()) {
            let _ = tx.send(response);
        }
        Ok(())
    }

    fn context(&self, nsp: &str) -> Option<AdapterContext> {
        self.namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(nsp)
            .cloned()
    }

    /// One message from the bus.
    fn on_message(&self, channel: &[u8], payload: Bytes) {
        let request_prefix = format!("{}-request#", self.config.prefix);
        // `<prefix>-request#<nsp>#`: requests carry no namespace of their own.
        let request_nsp = channel
            .strip_prefix(request_prefix.as_bytes())
            .and_then(|rest| rest.strip_suffix(b"#"))
            .and_then(|nsp| std::str::from_utf8(nsp).ok());
        let response_prefix = format!("{}-response#", self.config.prefix);
        let handled = match request_nsp {
            Some(nsp) => self.on_request(nsp, &payload),
            None if channel.starts_with(response_prefix.as_bytes()) => self.on_response(&payload),
            None => self.on_broadcast(&payload),
        };
        match handled {
            Ok(()) => {
                self.counters.received.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "malformed message on the bus: dropped");
            }
        }
    }

    fn on_broadcast(&self, payload: &Bytes) -> Result<(), wire::WireError> {
        let message = wire::decode_broadcast(payload)?;
        if message.uid == self.uid {
            return Ok(());
        }
        if let Some(ctx) = self.context(&message.nsp) {
            let (opts, data) = into_remote_broadcast(message);
            if let Err(e) = ctx.broadcast(&RemoteBroadcast::new(opts, data)) {
                tracing::debug!(error = %e, "a broadcast from the bus could not be delivered");
            }
        }
        Ok(())
    }

    fn on_request(&self, nsp: &str, payload: &Bytes) -> Result<(), wire::WireError> {
        let request = wire::decode_request(payload)?;
        if request.uid() == Some(self.uid.as_str()) {
            return Ok(());
        }
        let Some(ctx) = self.context(nsp) else {
            return Ok(());
        };
        let respond = |response: wire::Response| {
            let channel = wire::response_channel(&self.config.prefix, nsp);
            let _ = self.send(channel, wire::encode_response(&response));
        };
        match request {
            wire::Request::Fetch {
                request_id, target, ..
            } => respond(wire::Response::Fetch {
                request_id,
                sockets: ctx
                    .sockets(&opts_of(target))
                    .into_iter()
                    .map(|s| wire::RemoteSocket {
                        id: s.id.to_string(),
                        handshake: s.handshake,
                        rooms: rooms_of(&s.rooms),
                        data: Some(s.data),
                    })
                    .collect(),
            }),
            wire::Request::AllRooms { request_id, .. } => respond(wire::Response::AllRooms {
                request_id,
                rooms: rooms_of(&ctx.rooms()),
            }),
            wire::Request::Sockets {
                request_id, rooms, ..
            } => respond(wire::Response::Sockets {
                request_id,
                sockets: ctx
                    .sockets(&opts_of(wire::Target {
                        rooms,
                        except: Vec::new(),
                    }))
                    .into_iter()
                    .map(|s| s.id.to_string())
                    .collect(),
            }),
            wire::Request::Broadcast {
                request_id,
                broadcast,
            } => {
                let timeout = Duration::from_millis(broadcast.flags.timeout.unwrap_or(5_000));
                let (opts, data) = into_remote_broadcast(broadcast);
                let (count, mut acks) =
                    ctx.broadcast_with_acks(&RemoteBroadcast::new(opts, data), timeout);
                respond(wire::Response::BroadcastClientCount {
                    request_id: request_id.clone(),
                    client_count: count as u64,
                });
                let (bus, channel) = (
                    self.outgoing.clone(),
                    wire::response_channel(&self.config.prefix, nsp),
                );
                tokio::spawn(async move {
                    while let Some(ack) = acks.recv().await {
                        let response = wire::Response::BroadcastAck {
                            request_id: request_id.clone(),
                            ack,
                        };
                        let _ = bus.try_send((channel.clone(), wire::encode_response(&response)));
                    }
                });
            }
            wire::Request::ServerSideEmit {
                request_id, data, ..
            } => {
                let reply = request_id.map(|request_id| {
                    let (bus, channel) = (
                        self.outgoing.clone(),
                        wire::response_channel(&self.config.prefix, nsp),
                    );
                    // Each node answers once; the answer goes on the
                    // shared response channel, as Node's does.
                    Box::new(move |answer: serde_json::Value| {
                        let response = wire::Response::ServerSideEmit {
                            request_id,
                            data: Some(answer),
                        };
                        let _ = bus.try_send((channel, wire::encode_response(&response)));
                    }) as crate::socketio::ServerSideReply
                });
                ctx.server_side(data, reply);
            }
            other => {
                if let Some(op) = into_remote_op(other) {
                    ctx.apply(&op);
                }
            }
        }
        Ok(())
    }
}

/// Requests of ours that may wait for answers at once.
const MAX_PENDING: usize = 10_000;

struct PendingGuard<'a>(&'a Inner, &'a str);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(self.1);
    }
}

/// A fresh request id (as Node's: 6 characters).
fn request_id() -> String {
    node_uid()
}

/// Publishes what the adapters queued, in order.
async fn publish_loop(weak: Weak<Inner>, mut queue: mpsc::Receiver<(String, Bytes)>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let stop = inner.stop.clone();
        let mut conn = inner.publisher.clone();
        drop(inner);
        let next = tokio::select! {
            next = queue.recv() => next,
            _ = stop.cancelled() => return,
        };
        let Some((channel, payload)) = next else {
            return;
        };
        let result: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(payload.as_ref())
            .query_async(&mut conn)
            .await;
        let Some(inner) = weak.upgrade() else { return };
        match result {
            Ok(_) => inner.counters.published.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                set_up(&inner, false, Some(&e.to_string()));
                inner.counters.unpublished.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Hands what the subscriber connection receives to the namespaces.
async fn receive_loop(inner: Weak<Inner>, mut pushed: mpsc::Receiver<PushInfo>) {
    loop {
        let Some(stop) = inner.upgrade().map(|i| i.stop.clone()) else {
            return;
        };
        let info = tokio::select! {
            info = pushed.recv() => info,
            _ = stop.cancelled() => return,
        };
        let Some(info) = info else { return };
        let Some(inner) = inner.upgrade() else { return };
        let mut data = info.data;
        let (channel, payload) = match (info.kind, data.len()) {
            (PushKind::Message, 2) | (PushKind::PMessage, 3) => {
                let payload = data.pop();
                (data.pop(), payload)
            }
            (PushKind::Disconnection, _) => {
                set_up(&inner, false, Some("connection lost"));
                continue;
            }
            _ => continue,
        };
        if let (Some(channel), Some(payload)) =
            (channel.and_then(into_bytes), payload.and_then(into_bytes))
        {
            inner.on_message(&channel, payload);
        }
    }
}

fn into_bytes(value: redis::Value) -> Option<Bytes> {
    match value {
        redis::Value::BulkString(b) => Some(Bytes::from(b)),
        redis::Value::SimpleString(s) => Some(Bytes::from(s)),
        _ => None,
    }
}

/// Pings both connections: that keeps them connected (a lost connection
/// is remade, and the subscriber resubscribes) and tells whether the bus
/// is up.
async fn health_loop(inner: Weak<Inner>) {
    // Checks failed in a row: one slow answer (a busy machine) does not
    // make the bus down and drop broadcasts; two do.
    let mut failed = 0u32;
    loop {
        let Some(i) = inner.upgrade() else { return };
        let (stop, interval) = (i.stop.clone(), i.config.health_interval);
        let (mut subscriber, mut publisher) = (i.subscriber.clone(), i.publisher.clone());
        drop(i);
        let ping = async {
            let a: redis::RedisResult<String> =
                redis::cmd("PING").query_async(&mut subscriber).await;
            let b: redis::RedisResult<String> =
                redis::cmd("PING").query_async(&mut publisher).await;
            a.and(b)
        };
        let result = tokio::select! {
            r = ping => r,
            _ = stop.cancelled() => return,
        };
        let Some(i) = inner.upgrade() else { return };
        match result {
            Ok(_) => {
                failed = 0;
                set_up(&i, true, None);
            }
            Err(e) => {
                failed += 1;
                if failed >= 2 {
                    set_up(&i, false, Some(&e.to_string()));
                }
            }
        }
        // Looked at more often while Redis is away (or a check just
        // failed), so that traffic resumes soon after it is back.
        let interval = if failed == 0 && i.counters.state.load(Ordering::Relaxed) == UP {
            interval
        } else {
            interval.min(Duration::from_millis(100))
        };
        drop(i);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Records the bus state; logs only changes.
fn set_up(inner: &Inner, up: bool, why: Option<&str>) {
    let now = if up { UP } else { DOWN };
    let was = inner.counters.state.swap(now, Ordering::Relaxed);
    if was != now {
        if up {
            tracing::info!(uid = %inner.uid, "Redis bus up");
        } else {
            tracing::warn!(
                uid = %inner.uid,
                reason = why.unwrap_or("unknown"),
                "Redis bus down: local delivery goes on; broadcasts to other nodes are dropped (counted in /health) until it is back"
            );
        }
    }
}

/// The adapter of one namespace on the Redis bus.
struct RedisAdapter {
    rooms: LocalAdapter,
    bus: Arc<Inner>,
    path: String,
    attached: AtomicBool,
}

impl Adapter for RedisAdapter {
    fn local(&self) -> &LocalAdapter {
        &self.rooms
    }

    fn attach(&self, ctx: AdapterContext) {
        self.attached.store(true, Ordering::Relaxed);
        self.bus
            .namespaces
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.path.clone(), ctx);
        let (bus, path) = (self.bus.clone(), self.path.clone());
        tokio::spawn(async move { bus.subscribe(&path).await });
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn publish(&self, broadcast: &RemoteBroadcast) -> Result<(), AdapterError> {
        let message = from_remote_broadcast(&self.bus.uid, &self.path, broadcast);
        let channel = message.channel(&self.bus.config.prefix);
        self.bus.send(channel, wire::encode_broadcast(&message))
    }

    fn apply_remote(&self, op: &RemoteOp) -> Result<(), AdapterError> {
        let request = from_remote_op(&self.bus.uid, op);
        self.bus.send(
            self.bus.request_channel(&self.path),
            wire::encode_request(&request),
        )
    }

    fn fetch_remote(
        &self,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> AdapterFuture<Result<Gathered<SocketInfo>, AdapterError>> {
        let (bus, path, target) = (self.bus.clone(), self.path.clone(), target_of(opts));
        Box::pin(async move {
            let uid = Some(bus.uid.clone());
            let request = |request_id| wire::Request::Fetch {
                uid,
                request_id,
                target,
            };
            let pick = |answer| match answer {
                wire::Response::Fetch { sockets, .. } => Some(
                    sockets
                        .into_iter()
                        .map(|s: wire::RemoteSocket| {
                            SocketInfo::new(
                                SocketId::from(s.id),
                                s.handshake,
                                s.rooms.into_iter().map(Room::from).collect(),
                                s.data.unwrap_or(serde_json::Value::Null),
                            )
                        })
                        .collect(),
                ),
                _ => None,
            };
            bus.ask_each_node(&path, timeout, request, pick).await
        })
    }

    fn remote_rooms(
        &self,
        timeout: Duration,
    ) -> AdapterFuture<Result<Gathered<Room>, AdapterError>> {
        let (bus, path) = (self.bus.clone(), self.path.clone());
        Box::pin(async move {
            let uid = Some(bus.uid.clone());
            let request = |request_id| wire::Request::AllRooms { uid, request_id };
            let pick = |answer| match answer {
                wire::Response::AllRooms { rooms, .. } => {
                    Some(rooms.into_iter().map(Room::from).collect())
                }
                _ => None,
            };
            bus.ask_each_node(&path, timeout, request, pick).await
        })
    }

    fn server_side_emit(&self, data: &crate::socketio::Payload) -> Result<(), AdapterError> {
        let request = wire::Request::ServerSideEmit {
            uid: Some(self.bus.uid.clone()),
            request_id: None,
            data: data.clone(),
        };
        self.bus.send(
            self.bus.request_channel(&self.path),
            wire::encode_request(&request),
        )
    }

    fn server_side_emit_with_ack(
        &self,
        data: &crate::socketio::Payload,
        timeout: Duration,
    ) -> AdapterFuture<Result<Gathered<serde_json::Value>, AdapterError>> {
        let (bus, path, data) = (self.bus.clone(), self.path.clone(), data.clone());
        Box::pin(async move {
            let uid = Some(bus.uid.clone());
            let request = |request_id| wire::Request::ServerSideEmit {
                uid,
                request_id: Some(request_id),
                data,
            };
            let pick = |answer| match answer {
                wire::Response::ServerSideEmit { data, .. } => {
                    Some(vec![data.unwrap_or(serde_json::Value::Null)])
                }
                _ => None,
            };
            bus.ask_each_node(&path, timeout, request, pick).await
        })
    }

    fn broadcast_with_acks(
        &self,
        broadcast: &RemoteBroadcast,
        timeout: Duration,
    ) -> AdapterFuture<Result<RemoteAcks, AdapterError>> {
        let (bus, path) = (self.bus.clone(), self.path.clone());
        let mut message = from_remote_broadcast(&bus.uid, &path, broadcast);
        message.flags.timeout = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        Box::pin(async move {
            let others = bus.other_nodes(&path).await?;
            if others == 0 {
                return Ok(RemoteAcks::default());
            }
            let id = request_id();
            let request = wire::Request::Broadcast {
                request_id: id.clone(),
                broadcast: message,
            };
            // Done when every node said how many clients it asked and that
            // many answers are in.
            let complete = |answers: &[wire::Response]| {
                let (mut counts, mut clients, mut acks) = (0, 0, 0);
                for a in answers {
                    match a {
                        wire::Response::BroadcastClientCount { client_count, .. } => {
                            counts += 1;
                            clients += client_count;
                        }
                        wire::Response::BroadcastAck { .. } => acks += 1,
                        _ => {}
                    }
                }
                counts >= others && acks >= clients
            };
            let answers = bus.ask(&path, &id, &request, timeout, complete).await?;
            let (mut counts, mut clients, mut replies) = (0, 0, Vec::new());
            for a in answers {
                match a {
                    wire::Response::BroadcastClientCount { client_count, .. } => {
                        counts += 1;
                        clients += client_count;
                    }
                    wire::Response::BroadcastAck { ack, .. } => replies.push(ack),
                    _ => {}
                }
            }
            Ok(RemoteAcks::new(
                replies,
                clients,
                others.saturating_sub(counts),
            ))
        })
    }

    fn server_count(&self) -> AdapterFuture<Result<usize, AdapterError>> {
        let mut conn = self.bus.publisher.clone();
        let channel = self.bus.request_channel(&self.path);
        Box::pin(async move {
            let counts: Vec<(String, usize)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut conn)
                .await
                .map_err(|e| AdapterError::Unavailable(e.to_string()))?;
            Ok(counts.first().map_or(0, |(_, n)| *n).max(1))
        })
    }
}

impl Drop for RedisAdapter {
    fn drop(&mut self) {
        if !self.attached.load(Ordering::Relaxed) {
            return;
        }
        let removed = {
            let mut namespaces = self
                .bus
                .namespaces
                .write()
                .unwrap_or_else(|e| e.into_inner());
            // Only ours: a namespace of the same path made since keeps its.
            match namespaces.get(&self.path) {
                Some(ctx) if !ctx.is_alive() => namespaces.remove(&self.path).is_some(),
                _ => false,
            }
        };
        if removed && let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (bus, path) = (self.bus.clone(), self.path.clone());
            rt.spawn(async move { bus.unsubscribe(&path).await });
        }
    }
}

// ---- between the Node format and the adapter seam ----------------------

fn rooms_of(names: &[Room]) -> Vec<String> {
    names.iter().map(|r| r.to_string()).collect()
}

fn target_of(opts: &BroadcastOptions) -> wire::Target {
    let mut except = rooms_of(&opts.except);
    // Node excepts the sender by its own room.
    if let Some(sid) = &opts.except_sid {
        except.push(sid.to_string());
    }
    wire::Target {
        rooms: rooms_of(&opts.rooms),
        except,
    }
}

fn opts_of(target: wire::Target) -> BroadcastOptions {
    BroadcastOptions {
        rooms: target.rooms.into_iter().map(Room::from).collect(),
        except: target.except.into_iter().map(Room::from).collect(),
        // Delivered here only: it came from the bus.
        local: true,
        ..Default::default()
    }
}

pub(crate) fn from_remote_broadcast(uid: &str, nsp: &str, b: &RemoteBroadcast) -> wire::Broadcast {
    let target = target_of(&b.opts);
    wire::Broadcast {
        uid: uid.to_owned(),
        nsp: nsp.to_owned(),
        data: b.data.clone(),
        rooms: target.rooms,
        except: target.except,
        flags: wire::Flags {
            volatile: b.opts.volatile.then_some(true),
            ..Default::default()
        },
    }
}

pub(crate) fn into_remote_broadcast(
    b: wire::Broadcast,
) -> (BroadcastOptions, crate::socketio::Payload) {
    let mut opts = opts_of(wire::Target {
        rooms: b.rooms,
        except: b.except,
    });
    opts.volatile = b.flags.volatile == Some(true);
    (opts, b.data)
}

fn from_remote_op(uid: &str, op: &RemoteOp) -> wire::Request {
    let uid = Some(uid.to_owned());
    match op {
        RemoteOp::Join { opts, rooms } => wire::Request::Join {
            uid,
            target: target_of(opts),
            rooms: rooms_of(rooms),
        },
        RemoteOp::Leave { opts, rooms } => wire::Request::Leave {
            uid,
            target: target_of(opts),
            rooms: rooms_of(rooms),
        },
        RemoteOp::Disconnect { opts, close } => wire::Request::Disconnect {
            uid,
            target: target_of(opts),
            close: *close,
        },
    }
}

/// The room operation a request asks for, if it is one (the other kinds
/// need answers, not handled by this node yet).
fn into_remote_op(request: wire::Request) -> Option<RemoteOp> {
    // One socket, as older adapters address it: by its own room.
    let one = |sid: String| BroadcastOptions {
        rooms: vec![Room::from(sid)],
        local: true,
        ..Default::default()
    };
    Some(match request {
        wire::Request::Join { target, rooms, .. } => RemoteOp::Join {
            opts: opts_of(target),
            rooms: rooms.into_iter().map(Room::from).collect(),
        },
        wire::Request::Leave { target, rooms, .. } => RemoteOp::Leave {
            opts: opts_of(target),
            rooms: rooms.into_iter().map(Room::from).collect(),
        },
        wire::Request::Disconnect { target, close, .. } => RemoteOp::Disconnect {
            opts: opts_of(target),
            close,
        },
        wire::Request::JoinSocket { sid, room, .. } => RemoteOp::Join {
            opts: one(sid),
            rooms: vec![Room::from(room)],
        },
        wire::Request::LeaveSocket { sid, room, .. } => RemoteOp::Leave {
            opts: one(sid),
            rooms: vec![Room::from(room)],
        },
        wire::Request::DisconnectSocket { sid, close, .. } => RemoteOp::Disconnect {
            opts: one(sid),
            close,
        },
        _ => return None,
    })
}
