//! The socket.io v5 layer: namespaces, sockets, events, acks, rooms and
//! broadcasts, on top of the engine.

mod adapter;
mod client;
mod config;
mod delivery;
mod handshake;
pub(crate) mod msgpack;
mod namespace;
mod observer;
pub mod packet;
mod payload;
mod reason;
mod recovery;
mod socket;
mod types;

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;

pub use adapter::{
    Adapter, AdapterContext, AdapterError, AdapterFuture, BroadcastOptions, Gathered, LocalAdapter,
    RemoteAcks, RemoteBroadcast, RemoteOp, Room, ServerSideReply, SocketInfo,
};
pub use config::{FullQueue, Parser, SocketIoConfig};
pub use handshake::Handshake;
pub(crate) use handshake::civil_from_days;
pub(crate) use namespace::WeakNamespace;
pub use namespace::{
    AckResults, BroadcastOperator, ConnectError, DynNamespace, Namespace, RemoteSocket, RoomPolicy,
    ServerSideAck,
};
pub(crate) use observer::Observer;
pub(crate) use payload::Encoded;
pub use payload::Payload;
pub use reason::DisconnectReason;
pub(crate) use recovery::addressed_to;
pub use recovery::{MemoryStore, PersistedSession, RecoveryConfig, ReplayError, SessionStore};
pub use socket::{
    AckError, AckSender, EmitError, Event, Extensions, JoinError, MAX_ROOM_NAME, Socket, SocketId,
};

use crate::engine::{CloseReason, Engine, EngineHandler, Message, Session, Sid};
use client::Client;
use namespace::{Handlers, Joining, NamespaceInner, NsKind, Shared};

type AdapterFactory = Arc<dyn Fn(&str) -> Box<dyn Adapter> + Send + Sync>;
type Matcher = Box<dyn Fn(&str) -> bool + Send + Sync>;

pub(crate) struct IoInner {
    config: SocketIoConfig,
    limits: packet::Limits,
    /// Bounds on a msgpack packet, with [`Parser::Msgpack`].
    msgpack_limits: msgpack::Limits,
    node_id: u16,
    namespaces: RwLock<HashMap<String, Arc<NamespaceInner>>>,
    dynamic: RwLock<Vec<(Matcher, Arc<Handlers>)>>,
    clients: DashMap<Sid, Arc<Client>>,
    adapter: AdapterFactory,
    shared: Shared,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl IoInner {
    /// The namespace a client asks for: a registered one, or a new child of
    /// a matching dynamic namespace. The answer counts as a connection in
    /// progress until the returned guard is dropped, so an empty dynamic
    /// namespace is not removed under a client that is joining it.
    fn namespace_for(self: &Arc<Self>, path: &str) -> Option<Joining> {
        if let Some(ns) = read(&self.namespaces).get(path) {
            return Some(ns.joining());
        }
        let handlers = read(&self.dynamic)
            .iter()
            .find(|(matches, _)| matches(path))
            .map(|(_, h)| h.clone())?;
        // The adapter factory is the application's code: it runs outside
        // our locks. A concurrent first client may build one too; only one
        // is kept.
        let child = NamespaceInner::new(
            path.to_owned(),
            handlers,
            (self.adapter)(path),
            self.shared.clone(),
            NsKind::Dynamic(Arc::downgrade(self)),
        );
        let mut namespaces = write(&self.namespaces);
        let ns = namespaces.entry(path.to_owned()).or_insert(child);
        Some(ns.joining())
    }

    /// Forgets dynamic namespace `ns` if it is still registered, has no
    /// socket and nobody is joining it (as the reference server's
    /// `cleanupEmptyChildNamespaces`): names a client makes up must not
    /// pile up.
    pub(crate) fn remove_if_empty(&self, ns: &Arc<NamespaceInner>) {
        let mut namespaces = write(&self.namespaces);
        if namespaces
            .get(&ns.path)
            .is_some_and(|current| Arc::ptr_eq(current, ns) && ns.is_unused())
        {
            namespaces.remove(&ns.path);
            tracing::debug!(ns = %ns.path, "empty dynamic namespace removed");
        }
    }
}

/// A socket.io server. Cheap to clone: every clone, the layer from
/// [`SocketIo::layer`] and every service built from it keep the server
/// alive, so it serves as long as any of them is around.
///
/// ```
/// use socketgate::socketio::{SocketIo, SocketIoConfig};
///
/// let io = SocketIo::new(SocketIoConfig::default());
/// io.ns("/", |socket| {
///     socket.on("ping", |socket, mut event| {
///         let _ = event.ack(&"pong");
///         let _ = socket.emit("pinged", &event.payload.args);
///     });
/// });
/// let app = axum::Router::<()>::new().layer(io.layer());
/// ```
///
/// # Lifetime
///
/// The server lives while a `SocketIo`, its layer or a service made from
/// that layer is alive; when the last of them goes, every session is closed
/// and the memory is freed. Handlers registered on the server are owned by
/// it: a handler that captures a `SocketIo` clone would keep the server
/// alive forever (a reference cycle). Inside handlers use the socket
/// (`socket.namespace()`, `socket.to(…)`), or capture a
/// [`WeakSocketIo`] from [`SocketIo::downgrade`].
#[derive(Clone)]
pub struct SocketIo {
    io: Arc<IoInner>,
    engine: Engine,
}

/// A handle that does not keep the server alive; see
/// [`SocketIo::downgrade`].
#[derive(Clone)]
pub struct WeakSocketIo {
    io: Weak<IoInner>,
    engine: Weak<crate::engine::EngineInner>,
}

impl WeakSocketIo {
    /// The server, while something else keeps it alive.
    pub fn upgrade(&self) -> Option<SocketIo> {
        Some(SocketIo {
            io: self.io.upgrade()?,
            engine: Engine(self.engine.upgrade()?),
        })
    }
}

impl std::fmt::Debug for WeakSocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakSocketIo")
            .field("alive", &(self.io.strong_count() > 0))
            .finish()
    }
}

/// Why [`SocketIoBuilder::build`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A session store was given while connection state recovery is off:
    /// it would never be used.
    #[error(
        "a session store was given but connection state recovery is off: set SocketIoConfig::recovery"
    )]
    StoreWithoutRecovery,
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

/// Builds a [`SocketIo`]: configuration, adapter and session store.
///
/// ```
/// use std::sync::Arc;
/// use socketgate::socketio::{LocalAdapter, MemoryStore, RecoveryConfig, SocketIo, SocketIoConfig};
///
/// let recovery = RecoveryConfig::default();
/// let io = SocketIo::builder()
///     .config(SocketIoConfig::default().recovery(recovery.clone()))
///     .adapter(|_namespace| Box::new(LocalAdapter::default()))
///     .store(Arc::new(MemoryStore::new(recovery)))
///     .build()
///     .expect("a valid configuration");
/// # drop(io);
/// ```
#[must_use]
pub struct SocketIoBuilder {
    config: SocketIoConfig,
    adapter: AdapterFactory,
    store: Option<Arc<dyn SessionStore>>,
    cluster: Option<crate::cluster::ClusterStore>,
}

impl std::fmt::Debug for SocketIoBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoBuilder")
            .field("config", &self.config)
            .field("store", &self.store.is_some())
            .field("cluster", &self.cluster.is_some())
            .finish_non_exhaustive()
    }
}

impl SocketIoBuilder {
    /// The settings; default [`SocketIoConfig::default`].
    pub fn config(mut self, config: SocketIoConfig) -> Self {
        self.config = config;
        self
    }

    /// Where each namespace keeps its rooms: `adapter(path)` is called once
    /// per namespace (outside every lock of ours); default
    /// [`LocalAdapter`].
    pub fn adapter<F>(mut self, adapter: F) -> Self
    where
        F: Fn(&str) -> Box<dyn Adapter> + Send + Sync + 'static,
    {
        self.adapter = Arc::new(adapter);
        self
    }

    /// Where connection state recovery keeps sessions and packets; default
    /// a [`MemoryStore`] of its own. Share one store between a server and
    /// the one that replaces it, and clients that reconnect within the
    /// recovery window get their sessions back. Needs
    /// [`SocketIoConfig::recovery`].
    pub fn store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Connection state recovery for a cluster: sessions and packets in
    /// Redis, so a client recovers on whichever node it reconnects to (see
    /// [`ClusterStore`](crate::cluster::ClusterStore)). Replaces
    /// [`store`](Self::store); needs [`SocketIoConfig::recovery`]. Every
    /// recoverable packet then takes its order from the cluster's stream,
    /// delivered on each node as it reads it back.
    pub fn cluster_store(mut self, store: crate::cluster::ClusterStore) -> Self {
        self.cluster = Some(store);
        self
    }

    /// The server, or why the settings do not make one.
    pub fn build(self) -> Result<SocketIo, BuildError> {
        self.config.validate().map_err(BuildError::InvalidConfig)?;
        if self.config.recovery.is_none() && self.cluster.is_some() {
            return Err(BuildError::StoreWithoutRecovery);
        }
        let store = match (&self.config.recovery, self.store) {
            (None, Some(_)) => return Err(BuildError::StoreWithoutRecovery),
            (None, None) => None,
            _ if self.cluster.is_some() => None,
            (Some(_), Some(store)) => Some(store),
            (Some(r), None) => Some(Arc::new(MemoryStore::new(r.clone())) as Arc<dyn SessionStore>),
        };
        let cluster = self.cluster;
        let config = self.config;
        let limits = packet::Limits::default()
            .max_attachments(config.max_attachments)
            .max_attachment_bytes(config.max_attachment_bytes);
        // The cluster decoder's depth and value bounds; no input is larger
        // than the engine lets a message be.
        let msgpack_limits = msgpack::Limits {
            msgpack: crate::cluster::msgpack::Limits {
                max_input: config.engine.max_payload,
                ..Default::default()
            },
            packet: limits,
        };
        let io = Arc::new(IoInner {
            limits,
            msgpack_limits,
            node_id: config.engine.node_id,
            shared: Shared {
                store,
                cluster: cluster.clone(),
                full_queue: config.full_queue,
                max_queue_bytes: config.engine.max_queue_bytes,
                max_client_rooms: config.max_client_rooms,
                parser: config.parser,
                counters: Arc::default(),
                observer: Default::default(),
            },
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            clients: DashMap::new(),
            adapter: self.adapter,
            config,
        });
        // The engine owns the socket.io layer, strongly: whoever holds the
        // engine (a layer, a service) keeps the whole server alive. The
        // layer holds nothing back, so there is no cycle.
        let engine = Engine::new(io.config.engine.clone(), Handler(io.clone()));
        if let Some(cluster) = &cluster {
            cluster.attach(Arc::new(LogSinkOf(Arc::downgrade(&io))));
        }
        let sio = SocketIo { io, engine };
        // Like the reference server, the main namespace always exists.
        sio.register("/", Handlers::new(Arc::new(|_| {})), NsKind::Implicit);
        Ok(sio)
    }
}

impl SocketIo {
    /// A server with the in-memory adapter (and, with recovery on, an
    /// in-memory session store).
    ///
    /// # Panics
    ///
    /// When the configuration is invalid (a zero interval or limit); use
    /// [`SocketIo::builder`] to get the error instead.
    pub fn new(config: SocketIoConfig) -> Self {
        match Self::builder().config(config).build() {
            Ok(io) => io,
            Err(e) => panic!("SocketIo::new: {e}"),
        }
    }

    /// A builder: configuration, adapter, session store.
    pub fn builder() -> SocketIoBuilder {
        SocketIoBuilder {
            config: SocketIoConfig::default(),
            adapter: Arc::new(|_| Box::new(LocalAdapter::default())),
            store: None,
            cluster: None,
        }
    }

    /// A handle that does not keep the server alive, for handlers that
    /// need the server (see the lifetime rule on [`SocketIo`]).
    pub fn downgrade(&self) -> WeakSocketIo {
        WeakSocketIo {
            io: Arc::downgrade(&self.io),
            engine: Arc::downgrade(&self.engine.0),
        }
    }

    fn register(&self, path: &str, handlers: Arc<Handlers>, kind: NsKind) -> Namespace {
        let ns = NamespaceInner::new(
            path.to_owned(),
            handlers,
            (self.io.adapter)(path),
            self.io.shared.clone(),
            kind,
        );
        let mut namespaces = write(&self.io.namespaces);
        if let Some(existing) = namespaces.get(path)
            && !existing.is_implicit()
        {
            drop(namespaces);
            panic!(
                "namespace {path:?} is registered twice: register each namespace once (use SocketIo::of to reach it again)"
            );
        }
        namespaces.insert(path.to_owned(), ns.clone());
        Namespace(ns)
    }

    /// Registers namespace `path` with its connect handler. The main
    /// namespace `/` exists from the start (accepting connections and doing
    /// nothing); registering it replaces that default.
    ///
    /// # Panics
    ///
    /// When `path` was registered before (or is a live child of a dynamic
    /// namespace): two connect handlers for one namespace are a setup
    /// mistake. Use [`SocketIo::of`] to reach a registered namespace.
    pub fn ns<F>(&self, path: &str, on_connect: F) -> Namespace
    where
        F: Fn(Socket) + Send + Sync + 'static,
    {
        let path = normalize(path);
        self.register(&path, Handlers::new(Arc::new(on_connect)), NsKind::Static)
    }

    /// Registers a dynamic namespace: every name matching `pattern`
    /// (`/tenant-{id}`: `{…}` matches one or more characters other than
    /// `/`) becomes a namespace on first connection, and is removed again
    /// when its last socket leaves.
    pub fn dyn_ns<F>(&self, pattern: &str, on_connect: F) -> DynNamespace
    where
        F: Fn(Socket) + Send + Sync + 'static,
    {
        let pattern = normalize(pattern);
        self.dyn_ns_with(
            move |path| namespace::pattern_matches(&pattern, path),
            on_connect,
        )
    }

    /// Registers a dynamic namespace chosen by a predicate on the name.
    pub fn dyn_ns_with<P, F>(&self, matches: P, on_connect: F) -> DynNamespace
    where
        P: Fn(&str) -> bool + Send + Sync + 'static,
        F: Fn(Socket) + Send + Sync + 'static,
    {
        let handlers = Handlers::new(Arc::new(on_connect));
        write(&self.io.dynamic).push((Box::new(matches), handlers.clone()));
        DynNamespace(handlers)
    }

    /// A namespace that exists (registered, or created by a dynamic one).
    pub fn of(&self, path: &str) -> Option<Namespace> {
        let path = normalize(path);
        read(&self.io.namespaces).get(&path).cloned().map(Namespace)
    }

    /// Every namespace that exists now (registered, or a live child of a
    /// dynamic one), sorted by path.
    pub fn namespaces(&self) -> Vec<Namespace> {
        let mut all: Vec<Namespace> = read(&self.io.namespaces)
            .values()
            .cloned()
            .map(Namespace)
            .collect();
        all.sort_by(|a, b| a.path().cmp(b.path()));
        all
    }

    fn main(&self) -> Namespace {
        // "/" is registered by the builder and never removed.
        self.of("/")
            .unwrap_or_else(|| unreachable!("the main namespace is registered by the builder"))
    }

    /// Broadcast to a room of the main namespace.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.main().to(room)
    }

    /// Emits to every socket of the main namespace.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.main().emit(event, data)
    }

    /// What the namespaces counted since the server started.
    pub fn stats(&self) -> IoStats {
        let c = &self.io.shared.counters;
        IoStats {
            broadcasts: c.broadcasts.load(std::sync::atomic::Ordering::Relaxed),
            deliveries: c.deliveries.load(std::sync::atomic::Ordering::Relaxed),
            recovered: c.recovered.load(std::sync::atomic::Ordering::Relaxed),
            not_recovered: c.not_recovered.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Whether a monitor is set.
    pub(crate) fn observed(&self) -> bool {
        self.io.shared.observer.get().is_some()
    }

    /// Sets the monitor that hears what happens to every socket (the
    /// Admin UI's development mode); `false` when one was set already.
    pub(crate) fn observe(&self, observer: Arc<dyn observer::Observer>) -> bool {
        self.io.shared.observer.set(observer)
    }

    /// The engine underneath.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The configuration.
    pub fn config(&self) -> &SocketIoConfig {
        &self.io.config
    }

    /// A tower layer serving this server under its path; other requests
    /// go to the service it wraps. On an axum `Router` either
    /// `router.layer(io.layer())` (behind routing) or
    /// `io.layer().layer(router)` (in front of it, cheaper per socket.io
    /// request). The layer keeps the server alive: the `SocketIo` itself
    /// may be dropped.
    pub fn layer(&self) -> crate::EngineLayer {
        self.engine.layer()
    }

    /// Shuts the server down gracefully: no new connection is accepted,
    /// every client is told (its connection closes after what is queued
    /// for it is flushed; socket.io clients see "transport close" and
    /// reconnect later), and after `deadline` whatever is left is closed.
    /// With recovery on, the sockets' state is kept in the store, so a
    /// server built on the same store recovers them. Returns whether every
    /// connection closed within the deadline.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        if let Some(cluster) = &self.io.shared.cluster {
            // What was emitted before goes out before the closes.
            cluster.settle(deadline.min(Duration::from_secs(2))).await;
        }
        self.engine.shutdown(deadline).await
    }
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo")
            .field("config", &self.io.config)
            .field("clients", &self.io.clients.len())
            .finish_non_exhaustive()
    }
}

fn normalize(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// The socket.io layer as the cluster recovery stream sees it: where its
/// entries are delivered, and which sessions live here.
struct LogSinkOf(std::sync::Weak<IoInner>);

impl crate::cluster::streams::LogSink for LogSinkOf {
    fn deliver(&self, nsp: &str, opts: &BroadcastOptions, data: &Payload, offset: &str) {
        let Some(io) = self.0.upgrade() else { return };
        let Some(ns) = read(&io.namespaces).get(nsp).cloned() else {
            return;
        };
        ns.deliver_logged(opts, data, offset);
    }

    fn live_sessions(&self) -> Vec<PersistedSession> {
        let Some(io) = self.0.upgrade() else {
            return Vec::new();
        };
        let namespaces: Vec<_> = read(&io.namespaces).values().cloned().collect();
        namespaces
            .iter()
            .flat_map(|ns| ns.live_sessions())
            .collect()
    }
}

/// What the socket.io layer counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoStats {
    /// Packets sent to a set of sockets on this node (an emit to one
    /// socket, a room, everyone: each is one).
    pub broadcasts: u64,
    /// Sockets those packets were addressed to: the fan-out.
    pub deliveries: u64,
    /// Clients that asked to recover their socket and did.
    pub recovered: u64,
    /// Clients that asked to recover their socket and got a new one
    /// (session unknown or expired, packets evicted or too many).
    pub not_recovered: u64,
}

/// The socket.io layer as the engine's handler. It owns the layer: see
/// the lifetime rule on [`SocketIo`].
struct Handler(Arc<IoInner>);

impl EngineHandler for Handler {
    fn on_open(&self, session: &Session) {
        let io = &self.0;
        let client = Client::new(session.clone(), self.0.config.parser);
        io.clients.insert(session.sid(), client.clone());
        // Protocol 4 clients are connected to the main namespace at once.
        if session.protocol() == crate::engine::Protocol::V3 {
            client.connect(io, "/".to_owned(), None);
        }
        // A client that joins no namespace in time is let go.
        let timeout = io.config.connect_timeout;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(timeout) => {
                    if !client.joined_once.load(std::sync::atomic::Ordering::Acquire) {
                        tracing::debug!(sid = %client.session().sid(), "no namespace joined within connect_timeout");
                        client.session().close();
                    }
                }
                _ = client.session().closed() => {}
            }
        });
    }

    fn on_message(&self, session: &Session, message: Message) {
        let io = &self.0;
        let client = io.clients.get(&session.sid()).map(|c| c.clone());
        if let Some(client) = client {
            client.on_message(io, message);
        }
    }

    fn on_close(&self, session: &Session, reason: CloseReason) {
        if let Some((_, client)) = self.0.clients.remove(&session.sid()) {
            client.on_close(reason);
        }
    }

    fn on_upgrade(&self, session: &Session) {
        let Some(observer) = self.0.shared.observer.get() else {
            return;
        };
        let client = self.0.clients.get(&session.sid()).map(|c| c.clone());
        for socket in client.map(|c| c.sockets()).unwrap_or_default() {
            observer.upgraded(&socket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_refuses_what_would_be_silently_ignored_or_broken() {
        let store = Arc::new(MemoryStore::new(RecoveryConfig::default()));
        let err = SocketIo::builder()
            .store(store.clone())
            .build()
            .expect_err("a store without recovery is refused");
        assert_eq!(err, BuildError::StoreWithoutRecovery);
        assert!(
            SocketIo::builder()
                .config(SocketIoConfig::default().recovery(RecoveryConfig::default()))
                .store(store)
                .build()
                .is_ok()
        );
        let zero = SocketIoConfig::default()
            .engine(crate::EngineConfig::default().ping_interval(Duration::ZERO));
        let err = SocketIo::builder().config(zero).build().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: ping_interval must be above zero"
        );
        let err = SocketIo::builder()
            .config(SocketIoConfig::default().max_namespaces(0))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("max_namespaces"), "{err}");
    }

    #[test]
    fn the_main_namespace_may_be_registered_once_over_the_default() {
        let io = SocketIo::new(SocketIoConfig::default());
        assert!(io.of("/").is_some(), "the main namespace exists at once");
        io.ns("/", |_| {});
        io.ns("/chat", |_| {});
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            io.ns("chat", |_| {});
        }));
        let message = again.expect_err("a second registration panics");
        let message = message.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("\"/chat\" is registered twice"),
            "{message}"
        );
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            io.ns("/", |_| {});
        }));
        assert!(again.is_err(), "so does a second `/`");
    }

    #[test]
    #[should_panic(expected = "SocketIo::new: invalid configuration")]
    fn new_panics_on_an_invalid_configuration() {
        let _ = SocketIo::new(SocketIoConfig::default().connect_timeout(Duration::ZERO));
    }
}
