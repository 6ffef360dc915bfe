//! The socket.io v5 layer: namespaces, sockets, events, acks, rooms and
//! broadcasts, on top of the engine.

mod adapter;
mod client;
mod config;
mod handshake;
mod namespace;
pub mod packet;
mod payload;
mod reason;
mod recovery;
mod socket;

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;

pub use adapter::{Adapter, BroadcastOptions, LocalAdapter, Room};
pub use config::{FullQueue, SocketIoConfig};
pub use handshake::Handshake;
pub use namespace::{AckResults, BroadcastOperator, ConnectError, DynNamespace, Namespace};
pub use payload::Payload;
pub use reason::DisconnectReason;
pub use recovery::{MemoryStore, PersistedSession, RecoveryConfig, Restored, SessionStore};
pub use socket::{AckError, AckSender, EmitError, Event, Socket, SocketId};

use crate::engine::{CloseReason, Engine, EngineHandler, Message, Session, Sid};
use client::Client;
use namespace::{Handlers, NamespaceInner, Shared};

type AdapterFactory = Arc<dyn Fn(&str) -> Box<dyn Adapter> + Send + Sync>;
type Matcher = Box<dyn Fn(&str) -> bool + Send + Sync>;

pub(crate) struct IoInner {
    config: SocketIoConfig,
    limits: packet::Limits,
    node_id: u16,
    namespaces: RwLock<HashMap<String, Arc<NamespaceInner>>>,
    dynamic: RwLock<Vec<(Matcher, Arc<Handlers>)>>,
    clients: DashMap<Sid, Arc<Client>>,
    adapter: AdapterFactory,
    shared: Shared,
    engine: Engine,
}

impl IoInner {
    /// The namespace a client asks for: a registered one, or a new child of
    /// a matching dynamic namespace.
    fn namespace_for(&self, path: &str) -> Option<Arc<NamespaceInner>> {
        if let Some(ns) = self
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return Some(ns.clone());
        }
        let handlers = self
            .dynamic
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(matches, _)| matches(path))
            .map(|(_, h)| h.clone())?;
        let mut namespaces = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        let ns = namespaces.entry(path.to_owned()).or_insert_with(|| {
            NamespaceInner::new(
                path.to_owned(),
                handlers,
                (self.adapter)(path),
                self.shared.clone(),
            )
        });
        Some(ns.clone())
    }
}

/// A socket.io server. Cheap to clone; mount it with [`SocketIo::layer`].
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
#[derive(Clone)]
pub struct SocketIo(Arc<IoInner>);

impl SocketIo {
    /// A server with the in-memory adapter.
    pub fn new(config: SocketIoConfig) -> Self {
        Self::with_adapter(config, |_| Box::new(LocalAdapter::default()))
    }

    /// A server whose namespaces get their adapter from `adapter`.
    pub fn with_adapter<F>(config: SocketIoConfig, adapter: F) -> Self
    where
        F: Fn(&str) -> Box<dyn Adapter> + Send + Sync + 'static,
    {
        let store = config
            .recovery
            .clone()
            .map(|r| Arc::new(MemoryStore::new(r)) as Arc<dyn SessionStore>);
        Self::with_parts(config, adapter, store)
    }

    /// A server with the in-memory adapter whose recovery state lives in
    /// `store` (when [`SocketIoConfig::recovery`] is set). Share one store
    /// between a server and the one that replaces it, and clients that
    /// reconnect within the recovery window get their sessions back.
    pub fn with_store(config: SocketIoConfig, store: Arc<dyn SessionStore>) -> Self {
        let store = config.recovery.is_some().then_some(store);
        Self::with_parts(config, |_| Box::new(LocalAdapter::default()), store)
    }

    fn with_parts<F>(
        config: SocketIoConfig,
        adapter: F,
        store: Option<Arc<dyn SessionStore>>,
    ) -> Self
    where
        F: Fn(&str) -> Box<dyn Adapter> + Send + Sync + 'static,
    {
        let full_queue = config.full_queue;
        let limits = packet::Limits::default()
            .max_attachments(config.max_attachments)
            .max_attachment_bytes(config.max_attachment_bytes);
        let inner = Arc::new_cyclic(|weak: &Weak<IoInner>| IoInner {
            limits,
            node_id: config.engine.node_id,
            engine: Engine::new(config.engine.clone(), Handler(weak.clone())),
            config,
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            clients: DashMap::new(),
            adapter: Arc::new(adapter),
            shared: Shared { store, full_queue },
        });
        let io = SocketIo(inner);
        // Like the reference server, the main namespace always exists.
        io.ns("/", |_| {});
        io
    }

    /// Registers (or replaces the connect handler of) namespace `path`.
    pub fn ns<F>(&self, path: &str, on_connect: F) -> Namespace
    where
        F: Fn(Socket) + Send + Sync + 'static,
    {
        let path = normalize(path);
        let handlers = Handlers::new(Arc::new(on_connect));
        let ns = NamespaceInner::new(
            path.clone(),
            handlers,
            (self.0.adapter)(&path),
            self.0.shared.clone(),
        );
        let mut namespaces = self.0.namespaces.write().unwrap_or_else(|e| e.into_inner());
        // A replaced namespace keeps its sockets' rooms reachable only
        // through the sockets themselves; replacing is meant for setup.
        namespaces.insert(path, ns.clone());
        Namespace(ns)
    }

    /// Registers a dynamic namespace: every name matching `pattern`
    /// (`/tenant-{id}`: `{…}` matches one or more characters other than
    /// `/`) becomes a namespace on first connection.
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
        self.0
            .dynamic
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((Box::new(matches), handlers.clone()));
        DynNamespace(handlers)
    }

    /// A namespace that exists (registered, or created by a dynamic one).
    pub fn of(&self, path: &str) -> Option<Namespace> {
        let path = normalize(path);
        self.0
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&path)
            .cloned()
            .map(Namespace)
    }

    fn main(&self) -> Namespace {
        // "/" is created by the constructors and only ever replaced.
        self.of("/").unwrap_or_else(|| self.ns("/", |_| {}))
    }

    /// Broadcast to a room of the main namespace.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.main().to(room)
    }

    /// Emits to every socket of the main namespace.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.main().emit(event, data)
    }

    /// The engine underneath.
    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// The configuration.
    pub fn config(&self) -> &SocketIoConfig {
        &self.0.config
    }

    /// A tower layer serving this server under its path; other requests
    /// go to the service it wraps. On an axum `Router` either
    /// `router.layer(io.layer())` (behind routing) or
    /// `io.layer().layer(router)` (in front of it, cheaper per socket.io
    /// request).
    pub fn layer(&self) -> crate::EngineLayer {
        self.0.engine.layer()
    }

    /// Shuts the server down gracefully: no new connection is accepted,
    /// every client is told (its connection closes after what is queued
    /// for it is flushed; socket.io clients see "transport close" and
    /// reconnect later), and after `deadline` whatever is left is closed.
    /// With recovery on, the sockets' state is kept in the store, so a
    /// server built on the same store recovers them. Returns whether every
    /// connection closed within the deadline.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.0.engine.shutdown(deadline).await
    }
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo")
            .field("config", &self.0.config)
            .field("clients", &self.0.clients.len())
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

/// The socket.io layer as the engine's handler.
struct Handler(Weak<IoInner>);

impl EngineHandler for Handler {
    fn on_open(&self, session: &Session) {
        let Some(io) = self.0.upgrade() else { return };
        let client = Client::new(session.clone());
        io.clients.insert(session.sid(), client.clone());
        // Protocol 4 clients are connected to the main namespace at once.
        if session.protocol() == crate::engine::Protocol::V3 {
            client.connect(&io, "/".to_owned(), None);
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
        let Some(io) = self.0.upgrade() else { return };
        let client = io.clients.get(&session.sid()).map(|c| c.clone());
        if let Some(client) = client {
            client.on_message(&io, message);
        }
    }

    fn on_close(&self, session: &Session, reason: CloseReason) {
        let Some(io) = self.0.upgrade() else { return };
        if let Some((_, client)) = io.clients.remove(&session.sid()) {
            client.on_close(reason);
        }
    }
}
