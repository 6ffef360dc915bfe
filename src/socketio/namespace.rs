//! Namespaces, their connect middleware, and broadcast operators.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::IoInner;
use super::adapter::{
    self, Adapter, AdapterContext, AdapterError, BroadcastOptions, Gathered, RemoteBroadcast,
    RemoteOp, Room,
};
use super::config::{FullQueue, Parser};
use super::delivery;
use super::handshake::Handshake;
use super::payload::{self, Encoded, Payload};
use super::recovery::SessionStore;
use super::socket::{AckError, EmitError, JoinError, Socket, SocketId};

/// A refusal of a namespace connection: the client's `connect_error` sees
/// `message` and `data`.
///
/// Or, made with [`ConnectError::close_connection`], not a refusal: the
/// middleware could not decide (a backend it asks is down), so the client's
/// whole connection is closed instead and the client reconnects with its
/// backoff. socket.io-client does not retry a refusal by itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    /// The error message.
    pub message: String,
    /// Extra data for the client.
    pub data: Option<Value>,
    /// Close the connection rather than refuse.
    close: bool,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
            close: false,
        }
    }

    /// No answer now: the client's connection (its engine.io session, with
    /// every namespace on it) is closed, so it reconnects later, as after a
    /// dropped connection (socket.io-client sees `transport close`). The
    /// client gets no `connect_error`; `message` is only for the log.
    ///
    /// For a middleware that depends on something unavailable (a backend
    /// that times out): a refusal would be final for the client, and a
    /// client that is not refused must not be let in either.
    pub fn close_connection(message: impl Into<String>) -> Self {
        ConnectError {
            close: true,
            ..ConnectError::new(message)
        }
    }

    /// Whether the connection is closed instead of refused (see
    /// [`close_connection`](Self::close_connection)).
    pub fn closes_connection(&self) -> bool {
        self.close
    }

    /// Adds data for the client.
    pub fn with_data(mut self, data: impl Into<Value>) -> Self {
        self.data = Some(data.into());
        self
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut v = serde_json::json!({ "message": self.message });
        if let Some(data) = &self.data {
            v["data"] = data.clone();
        }
        v
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub(crate) type Middleware =
    Arc<dyn Fn(Arc<Handshake>) -> BoxFuture<Result<(), ConnectError>> + Send + Sync>;
type ConnectHandler = Arc<dyn Fn(Socket) + Send + Sync>;

/// Names (and may refuse) the rooms clients ask for; see
/// [`Namespace::room_policy`].
pub type RoomPolicy = Arc<dyn Fn(&Socket, &str) -> Result<Room, JoinError> + Send + Sync>;

/// What a namespace does on connect; shared by the children of a dynamic
/// namespace.
pub(crate) struct Handlers {
    pub(crate) on_connect: ConnectHandler,
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
    room_policy: RwLock<Option<RoomPolicy>>,
    server_side: RwLock<HashMap<String, ServerSideHandler>>,
}

type ServerSideHandler = Arc<dyn Fn(Payload, Option<ServerSideAck>) + Send + Sync>;

/// Answers a server-side event that another node sent with
/// [`Namespace::server_side_emit_with_ack`]: each node answers once.
pub struct ServerSideAck(adapter::ServerSideReply);

impl ServerSideAck {
    /// Sends the answer.
    pub fn send(self, answer: impl Into<Value>) {
        (self.0)(answer.into());
    }
}

impl fmt::Debug for ServerSideAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSideAck")
    }
}

impl Handlers {
    pub(crate) fn new(on_connect: ConnectHandler) -> Arc<Self> {
        Arc::new(Handlers {
            on_connect,
            middlewares: RwLock::new(Vec::new()),
            room_policy: RwLock::new(None),
            server_side: RwLock::new(HashMap::new()),
        })
    }

    pub(crate) fn room_policy(&self) -> Option<RoomPolicy> {
        self.room_policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_room_policy(&self, policy: RoomPolicy) {
        *self.room_policy.write().unwrap_or_else(|e| e.into_inner()) = Some(policy);
    }

    pub(crate) fn middlewares(&self) -> Vec<Middleware> {
        self.middlewares
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn add<F, Fut>(&self, f: F)
    where
        F: Fn(Arc<Handshake>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        let m: Middleware = Arc::new(move |hs| Box::pin(f(hs)));
        self.middlewares
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(m);
    }
}

/// What every namespace of a server shares.
#[derive(Clone)]
pub(crate) struct Shared {
    /// Recovery state, when connection state recovery is on.
    pub(crate) store: Option<Arc<dyn SessionStore>>,
    /// Recovery state in the cluster's Redis (then `store` is `None`).
    pub(crate) cluster: Option<crate::cluster::ClusterStore>,
    pub(crate) full_queue: FullQueue,
    /// The engine's per-session queue bound: a packet larger than this can
    /// never be queued ([`EmitError::MessageTooLarge`]).
    pub(crate) max_queue_bytes: usize,
    /// [`SocketIoConfig::max_client_rooms`](super::SocketIoConfig::max_client_rooms).
    pub(crate) max_client_rooms: usize,
    /// [`SocketIoConfig::parser`](super::SocketIoConfig::parser): how every
    /// packet is encoded.
    pub(crate) parser: Parser,
    /// What the namespaces counted.
    pub(crate) counters: Arc<IoCounters>,
    /// The monitor that hears what happens to sockets, once one is set.
    pub(crate) observer: super::observer::Observers,
}

/// What the socket.io layer counts (see [`IoStats`](super::IoStats)).
#[derive(Default)]
pub(crate) struct IoCounters {
    pub(crate) broadcasts: AtomicU64,
    pub(crate) deliveries: AtomicU64,
    pub(crate) recovered: AtomicU64,
    pub(crate) not_recovered: AtomicU64,
}

impl IoCounters {
    /// Counts a client that asked to recover its socket.
    pub(crate) fn recovery(&self, recovered: bool) {
        let counter = if recovered {
            &self.recovered
        } else {
            &self.not_recovered
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Shared {
    /// Whether connection state recovery is on (in this process or in the
    /// cluster).
    pub(crate) fn recovery_on(&self) -> bool {
        self.store.is_some() || self.cluster.is_some()
    }

    /// Refuses a packet that no client's queue could ever hold, before it
    /// is retained or sent to anyone.
    pub(crate) fn check_size(&self, packet: &Encoded) -> Result<(), EmitError> {
        if packet.frame_bytes() > self.max_queue_bytes {
            Err(EmitError::MessageTooLarge)
        } else {
            Ok(())
        }
    }
}

/// How a namespace came to be.
pub(crate) enum NsKind {
    /// The main namespace the server starts with, until one is registered.
    Implicit,
    /// Registered with [`SocketIo::ns`](super::SocketIo::ns).
    Static,
    /// A child of a dynamic namespace, removed again when it is empty.
    Dynamic(Weak<IoInner>),
}

/// A packet with a recovery offset, waiting for its turn to be delivered
/// (and handed to the other nodes, without the offset).
struct Outgoing {
    target: BroadcastOptions,
    packet: Encoded,
    remote: Option<RemoteBroadcast>,
}

pub(crate) struct NamespaceInner {
    pub(crate) path: String,
    pub(crate) handlers: Arc<Handlers>,
    pub(crate) sockets: RwLock<HashMap<SocketId, Socket>>,
    pub(crate) adapter: Box<dyn Adapter>,
    pub(crate) shared: Shared,
    kind: NsKind,
    /// Clients between finding this namespace and joining (or being
    /// refused): a dynamic namespace is not removed under them.
    connecting: AtomicUsize,
    ack_ids: AtomicU64,
    /// With recovery, offsets must reach each client in increasing order.
    /// Taking an offset, retaining the packet and queueing it here happen
    /// together under this lock; delivery happens outside it, in queue
    /// order, by whoever holds `delivering`.
    outbox: Mutex<VecDeque<Outgoing>>,
    /// Held by the one thread that delivers the outbox. Others leave their
    /// packet to it instead of waiting: no emitter blocks on another, and
    /// nothing that runs under it calls application code (closes it
    /// causes are reported later, see `Session::close_now`).
    delivering: Mutex<()>,
    /// Set by [`Namespace::close`]: new connections are refused.
    closed: AtomicBool,
}

/// The event name and the arguments of an event's data.
fn split_event(data: &Payload) -> Option<(&str, Payload)> {
    let (event, args) = data.args.split_first()?;
    Some((
        event.as_str()?,
        Payload {
            args: args.to_vec(),
            bins: data.bins.clone(),
        },
    ))
}

/// An offset as long as the cluster stream's longest (`<ms>-<seq>` with
/// 13 and up to 6 digits), for checking a packet's size before its offset
/// is known.
const OFFSET_SIZE_PROBE: &str = "0000000000000-000000";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl NamespaceInner {
    pub(crate) fn new(
        path: String,
        handlers: Arc<Handlers>,
        adapter: Box<dyn Adapter>,
        shared: Shared,
        kind: NsKind,
    ) -> Arc<Self> {
        let ns = Arc::new(NamespaceInner {
            path,
            handlers,
            sockets: RwLock::new(HashMap::new()),
            adapter,
            shared,
            kind,
            connecting: AtomicUsize::new(0),
            ack_ids: AtomicU64::new(0),
            outbox: Mutex::new(VecDeque::new()),
            delivering: Mutex::new(()),
            closed: AtomicBool::new(false),
        });
        ns.adapter.attach(AdapterContext::new(
            &ns.path,
            Arc::new(WeakNamespace(Arc::downgrade(&ns))),
        ));
        ns
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn is_implicit(&self) -> bool {
        matches!(self.kind, NsKind::Implicit)
    }

    /// No socket and nobody joining.
    pub(crate) fn is_unused(&self) -> bool {
        self.connecting.load(Ordering::Acquire) == 0
            && self
                .sockets
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
    }

    /// Counts a client that is about to join (see [`Joining`]). Called
    /// under the server's namespaces lock.
    pub(crate) fn joining(self: &Arc<Self>) -> Joining {
        self.connecting.fetch_add(1, Ordering::AcqRel);
        Joining(self.clone())
    }

    /// A dynamic child with nobody left goes.
    fn cleanup_if_empty(self: &Arc<Self>) {
        if let NsKind::Dynamic(io) = &self.kind
            && self.is_unused()
            && let Some(io) = io.upgrade()
        {
            io.remove_if_empty(self);
        }
    }

    /// Sends an event to the sockets `opts` selects. With recovery on (and
    /// the packet not volatile), the packet gets an offset and is retained
    /// for sockets that come back. Unless `local`, a cluster adapter gets
    /// it too, as `remote()` describes it (built only for such an adapter).
    pub(crate) fn emit_with(
        &self,
        opts: &BroadcastOptions,
        encode: impl Fn(Option<&str>) -> Result<Encoded, serde_json::Error>,
        remote: impl FnOnce() -> Result<Payload, serde_json::Error>,
    ) -> Result<(), EmitError> {
        if let Some(cluster) = &self.shared.cluster
            && !opts.volatile
        {
            // The cluster's stream orders it; every node (this one too)
            // delivers it as it reads it back, with its offset.
            let packet = encode(Some(OFFSET_SIZE_PROBE))?;
            self.shared.check_size(&packet)?;
            let data = remote()?;
            return cluster.append(&self.path, opts, data);
        }
        let remote = if !opts.local && self.adapter.is_remote() {
            Some(RemoteBroadcast::new(opts.clone(), remote()?))
        } else {
            None
        };
        match &self.shared.store {
            Some(store) if !opts.volatile => {
                {
                    let mut outbox = lock(&self.outbox);
                    let offset = store.next_offset();
                    let packet = encode(Some(&offset))?;
                    self.shared.check_size(&packet)?;
                    store.retain(&offset, &self.path, opts, &packet.0);
                    outbox.push_back(Outgoing {
                        target: opts.clone(),
                        packet,
                        remote,
                    });
                }
                self.deliver_outbox();
            }
            _ => {
                let packet = encode(None)?;
                self.shared.check_size(&packet)?;
                self.deliver(opts, &packet, remote.as_ref());
            }
        }
        Ok(())
    }

    /// Delivers a broadcast that came from another node (`opts` is local).
    pub(crate) fn emit_remote(
        &self,
        opts: &BroadcastOptions,
        data: &Payload,
    ) -> Result<(), EmitError> {
        let Some((event, args)) = split_event(data) else {
            return Ok(());
        };
        let path = &self.path;
        if self.shared.cluster.is_some() {
            // From the pub/sub bus (a Node server, the emitter): every node
            // got it, so it cannot go to the shared stream (each would add
            // it once). Delivered here as it is, without an offset.
            let packet =
                payload::event_payload(self.shared.parser, path, None, event, &args, None)?;
            self.deliver(opts, &packet, None);
            return Ok(());
        }
        self.emit_with(
            opts,
            |offset| payload::event_payload(self.shared.parser, path, None, event, &args, offset),
            || Ok(data.clone()),
        )
    }

    /// Delivers a broadcast from another node that expects acks: each
    /// answer goes to `acks`, which closes once all answered or `timeout`
    /// passed. Returns how many sockets it went to.
    pub(crate) fn emit_remote_with_acks(
        &self,
        broadcast: &RemoteBroadcast,
        timeout: Duration,
        acks: tokio::sync::mpsc::UnboundedSender<Payload>,
    ) -> usize {
        let Some((Some(event), args)) = broadcast
            .data
            .args
            .split_first()
            .map(|(e, rest)| (e.as_str(), rest))
        else {
            return 0;
        };
        let args = Payload {
            args: args.to_vec(),
            bins: broadcast.data.bins.clone(),
        };
        let id = self.next_ack_id();
        let Ok(packet) =
            payload::event_payload(self.shared.parser, &self.path, Some(id), event, &args, None)
        else {
            return 0;
        };
        let policy = self.shared.full_queue;
        let sockets: Vec<Socket> = self
            .adapter
            .select(&broadcast.opts)
            .iter()
            .filter_map(|sid| self.socket(sid))
            .collect();
        let mut sent = 0;
        for socket in sockets {
            let answer = socket.expect_ack(id);
            if delivery::deliver(socket.session(), &packet, broadcast.opts.volatile, policy)
                .is_err()
            {
                socket.forget_ack(id);
                continue;
            }
            sent += 1;
            if let Some(observer) = self.shared.observer.get() {
                observer.sent(&self.path, std::slice::from_ref(socket.id()), &packet);
            }
            let acks = acks.clone();
            tokio::spawn(async move {
                if let Ok(payload) = socket.wait_ack(id, answer, timeout).await {
                    let _ = acks.send(payload);
                }
            });
        }
        sent
    }

    /// Delivers an entry of the cluster's recovery stream to the sockets
    /// of this node that `opts` selects, with its offset.
    pub(crate) fn deliver_logged(&self, opts: &BroadcastOptions, data: &Payload, offset: &str) {
        let Some((event, args)) = split_event(data) else {
            return;
        };
        match payload::event_payload(
            self.shared.parser,
            &self.path,
            None,
            event,
            &args,
            Some(offset),
        ) {
            Ok(packet) => self.deliver(opts, &packet, None),
            Err(e) => {
                tracing::warn!(ns = %self.path, error = %e, "a stream entry could not be encoded")
            }
        }
    }

    /// The sessions of this namespace's sockets that can recover.
    pub(crate) fn live_sessions(&self) -> Vec<super::PersistedSession> {
        let sockets: Vec<Socket> = self
            .sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        sockets.iter().filter_map(Socket::snapshot).collect()
    }

    /// Delivers the outbox in order, unless another thread is at it (it
    /// then delivers what was just queued too).
    fn deliver_outbox(&self) {
        loop {
            let Ok(_delivering) = self.delivering.try_lock() else {
                return;
            };
            self.deliver_queued();
            drop(_delivering);
            // A packet queued after our last look but before the unlock
            // found the lock taken: it is ours to deliver.
            if lock(&self.outbox).is_empty() {
                return;
            }
        }
    }

    /// Delivers everything in the outbox; the caller holds `delivering`.
    fn deliver_queued(&self) {
        loop {
            let next = lock(&self.outbox).pop_front();
            let Some(out) = next else { return };
            self.deliver(&out.target, &out.packet, out.remote.as_ref());
        }
    }

    /// Runs `f` with every earlier packet delivered and none delivered
    /// during it, with a view of the store that includes every offset taken
    /// so far: a recovering socket gets its missed packets in `f` and every
    /// later one live, each once and in order. `f` must not block or run
    /// application code.
    pub(crate) fn in_delivery_order<T>(&self, f: impl FnOnce() -> T) -> T {
        let _delivering = lock(&self.delivering);
        self.deliver_queued();
        // Holding the outbox lock, no offset is taken while `f` runs.
        let outbox = lock(&self.outbox);
        let out = f();
        drop(outbox);
        drop(_delivering);
        self.deliver_outbox();
        out
    }

    fn deliver(&self, opts: &BroadcastOptions, packet: &Encoded, remote: Option<&RemoteBroadcast>) {
        let recipients = self.adapter.select(opts);
        let counters = &self.shared.counters;
        counters.broadcasts.fetch_add(1, Ordering::Relaxed);
        counters
            .deliveries
            .fetch_add(recipients.len() as u64, Ordering::Relaxed);
        for sid in &recipients {
            if let Some(socket) = self.socket(sid).filter(Socket::connected) {
                // A failure closed that client (slow consumer) or it is
                // gone; the others still get the packet.
                let _ = delivery::deliver(
                    socket.session(),
                    packet,
                    opts.volatile,
                    self.shared.full_queue,
                );
            }
        }
        if let Some(observer) = self.shared.observer.get() {
            observer.sent(&self.path, &recipients, packet);
        }
        if let Some(remote) = remote
            && let Err(e) = self.adapter.publish(remote)
        {
            // The adapter counted it and logs its state changes.
            tracing::trace!(ns = %self.path, error = %e, "broadcast not handed to the cluster");
        }
    }

    /// Ack ids come from one counter per namespace, so a broadcast with
    /// acks can use the same id (and the same encoded bytes) for every
    /// recipient.
    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn add(&self, socket: &Socket) {
        self.sockets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(socket.id().clone(), socket.clone());
        self.join(socket.id(), &[Room::from(socket.id().as_str())]);
    }

    /// A socket of this node joins rooms (told to the monitor, if any).
    pub(crate) fn join(&self, sid: &SocketId, rooms: &[Room]) {
        let Some(observer) = self.shared.observer.get() else {
            return self.adapter.join(sid, rooms);
        };
        let before = self.adapter.rooms_of(sid);
        self.adapter.join(sid, rooms);
        let mut told = Vec::new();
        for room in rooms {
            if !before.contains(room) && !told.contains(&room) {
                told.push(room);
                observer.joined(&self.path, room, sid);
            }
        }
    }

    /// A socket of this node leaves rooms (told to the monitor, if any).
    pub(crate) fn leave(&self, sid: &SocketId, rooms: &[Room]) {
        let Some(observer) = self.shared.observer.get() else {
            return self.adapter.leave(sid, rooms);
        };
        let before = self.adapter.rooms_of(sid);
        self.adapter.leave(sid, rooms);
        for room in before.iter().filter(|r| rooms.contains(r)) {
            observer.left(&self.path, room, sid);
        }
    }

    pub(crate) fn remove(self: &Arc<Self>, socket: &Socket) {
        match self.shared.observer.get() {
            None => self.adapter.leave_all(socket.id()),
            Some(observer) => {
                let before = self.adapter.rooms_of(socket.id());
                self.adapter.leave_all(socket.id());
                for room in &before {
                    observer.left(&self.path, room, socket.id());
                }
            }
        }
        let removed = {
            let mut sockets = self.sockets.write().unwrap_or_else(|e| e.into_inner());
            // Only this very socket: a recovered one may carry its id now.
            match sockets.get(socket.id()) {
                Some(current) if current == socket => sockets.remove(socket.id()).is_some(),
                _ => false,
            }
        };
        if removed {
            self.cleanup_if_empty();
        }
    }

    pub(crate) fn socket(&self, sid: &SocketId) -> Option<Socket> {
        self.sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(sid)
            .cloned()
    }
}

/// The namespace as its adapter (or a monitor it feeds) reaches it:
/// weakly, since the namespace owns them.
#[derive(Clone)]
pub(crate) struct WeakNamespace(Weak<NamespaceInner>);

impl WeakNamespace {
    /// The namespace, while it lives.
    pub(crate) fn upgrade(&self) -> Option<Namespace> {
        self.0.upgrade().map(Namespace)
    }
}

impl adapter::LocalNamespace for WeakNamespace {
    fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }

    fn broadcast(&self, broadcast: &RemoteBroadcast) -> Result<(), EmitError> {
        let Some(ns) = self.0.upgrade() else {
            return Ok(());
        };
        let mut opts = broadcast.opts.clone();
        opts.local = true;
        ns.emit_remote(&opts, &broadcast.data)
    }

    fn apply(&self, op: &RemoteOp) {
        if let Some(ns) = self.0.upgrade() {
            apply_local(&ns, op);
        }
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<adapter::SocketInfo> {
        self.0
            .upgrade()
            .map(|ns| local_sockets(&ns, opts))
            .unwrap_or_default()
    }

    fn rooms(&self) -> Vec<Room> {
        self.0
            .upgrade()
            .map(|ns| ns.adapter.all_rooms())
            .unwrap_or_default()
    }

    fn broadcast_with_acks(
        &self,
        broadcast: &RemoteBroadcast,
        timeout: Duration,
        acks: tokio::sync::mpsc::UnboundedSender<Payload>,
    ) -> usize {
        match self.0.upgrade() {
            Some(ns) => ns.emit_remote_with_acks(broadcast, timeout, acks),
            None => 0,
        }
    }

    fn server_side(&self, data: Payload, reply: Option<adapter::ServerSideReply>) -> bool {
        match self.0.upgrade() {
            Some(ns) => run_server_side(&ns, data, reply),
            None => false,
        }
    }
}

/// This node's sockets that `opts` selects, as other nodes see them.
fn local_sockets(ns: &NamespaceInner, opts: &BroadcastOptions) -> Vec<adapter::SocketInfo> {
    ns.adapter
        .select(opts)
        .iter()
        .filter_map(|sid| ns.socket(sid))
        .map(|socket| {
            adapter::SocketInfo::new(
                socket.id().clone(),
                socket.handshake().to_node_json(),
                socket.rooms(),
                socket.data(),
            )
        })
        .collect()
}

/// A client on its way into a namespace (middlewares, recovery). Dropped
/// once it joined or was refused; the namespace stays while any exists.
pub(crate) struct Joining(Arc<NamespaceInner>);

impl Joining {
    pub(crate) fn ns(&self) -> &Arc<NamespaceInner> {
        &self.0
    }
}

impl Drop for Joining {
    fn drop(&mut self) {
        self.0.connecting.fetch_sub(1, Ordering::AcqRel);
        self.0.cleanup_if_empty();
    }
}

/// A namespace: its connect handler, middleware, sockets and rooms. Cheap to
/// clone.
#[derive(Clone)]
pub struct Namespace(pub(crate) Arc<NamespaceInner>);

impl Namespace {
    /// The namespace path.
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// Adds a connect middleware. Middlewares run in order before the
    /// connect handler; the first refusal answers the client with a
    /// `connect_error`.
    ///
    /// ```
    /// use socketgate::socketio::{ConnectError, SocketIo, SocketIoConfig};
    ///
    /// let io = SocketIo::new(SocketIoConfig::default());
    /// io.ns("/admin", |socket| { /* … */ }).middleware(|handshake| async move {
    ///     match handshake.auth["token"].as_str() {
    ///         Some("let-me-in") => Ok(()),
    ///         _ => Err(ConnectError::new("unauthorized").with_data(serde_json::json!({ "code": 401 }))),
    ///     }
    /// });
    /// ```
    pub fn middleware<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Arc<Handshake>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.0.handlers.add(f);
        self
    }

    /// Sets how client-requested rooms are named and checked
    /// ([`Socket::client_room`], [`Socket::join_client_room`]). The policy
    /// runs after the built-in checks (no empty or overlong names, nothing
    /// shaped like a socket id) and returns the room to use or a refusal.
    /// Mapping names into a space of their own (`"chat:" + name`) keeps
    /// clients out of every room the server uses for itself.
    ///
    /// ```
    /// use socketgate::socketio::{JoinError, Room, SocketIo, SocketIoConfig};
    ///
    /// let io = SocketIo::new(SocketIoConfig::default());
    /// io.ns("/chat", |socket| {
    ///     socket.on("join", |socket, mut event| {
    ///         let name: String = event.data().unwrap_or_default();
    ///         let _ = match socket.join_client_room(&name) {
    ///             Ok(_) => event.ack(&name),
    ///             Err(e) => event.ack(&serde_json::json!({ "error": e.to_string() })),
    ///         };
    ///     });
    /// })
    /// .room_policy(|_socket, name| {
    ///     if name.starts_with("admin") {
    ///         return Err(JoinError::Refused("not for clients".into()));
    ///     }
    ///     Ok(Room::from(format!("chat:{name}")))
    /// });
    /// ```
    pub fn room_policy<F>(&self, policy: F) -> &Self
    where
        F: Fn(&Socket, &str) -> Result<Room, JoinError> + Send + Sync + 'static,
    {
        self.0.handlers.set_room_policy(Arc::new(policy));
        self
    }

    /// Broadcast operator over the whole namespace.
    pub fn all(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.0.clone(), BroadcastOptions::default())
    }

    /// Broadcast to a room.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.all().to(room)
    }

    /// Broadcast to all but a room.
    pub fn except(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.all().except(room)
    }

    /// Emits to every socket of the namespace.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.all().emit(event, data)
    }

    /// Emits to every socket of the namespace with any arguments, binary
    /// included.
    pub fn emit_payload(&self, event: &str, payload: &Payload) -> Result<(), EmitError> {
        self.all().emit_payload(event, payload)
    }

    /// A handle that does not keep the namespace alive.
    pub(crate) fn downgrade(&self) -> WeakNamespace {
        WeakNamespace(Arc::downgrade(&self.0))
    }

    /// Emits `event` to every socket of the namespace, here and (through
    /// the adapter) on the other nodes, without recovery: never retained,
    /// never given an offset. For monitoring traffic, which is of no use
    /// once missed and would crowd out what is kept for recovery.
    pub(crate) fn emit_unretained(&self, event: &str, payload: &Payload) -> Result<(), EmitError> {
        super::socket::check_event(event)?;
        let ns = &self.0;
        let packet =
            payload::event_payload(ns.shared.parser, &ns.path, None, event, payload, None)?;
        ns.shared.check_size(&packet)?;
        let opts = BroadcastOptions::default();
        let remote = ns
            .adapter
            .is_remote()
            .then(|| RemoteBroadcast::new(opts.clone(), remote_payload(event, payload)));
        ns.deliver(&opts, &packet, remote.as_ref());
        Ok(())
    }

    /// Whether this namespace's adapter reaches other nodes (a cluster
    /// adapter), so that broadcasts and fetches span the cluster.
    pub fn is_clustered(&self) -> bool {
        self.0.adapter.is_remote()
    }

    /// How many nodes serve this namespace, this one included (1 without
    /// a cluster adapter).
    pub async fn server_count(&self) -> Result<usize, super::AdapterError> {
        self.0.adapter.server_count().await
    }

    /// Every room of the namespace with a socket in it, on every node that
    /// answers within 5 s.
    pub async fn all_rooms(&self) -> Result<Gathered<Room>, AdapterError> {
        let mut rooms: std::collections::BTreeSet<Room> =
            self.0.adapter.all_rooms().into_iter().collect();
        let remote = self.0.adapter.remote_rooms(Duration::from_secs(5)).await?;
        rooms.extend(remote.items);
        Ok(Gathered::new(
            rooms.into_iter().collect(),
            remote.silent_nodes,
        ))
    }

    /// Handles `event` sent by other nodes with
    /// [`server_side_emit`](Self::server_side_emit) (or the Node
    /// `serverSideEmit`); the handler gets the arguments and, when the
    /// sender waits for answers, the ack to answer with.
    pub fn on_server_side<F>(&self, event: impl Into<String>, handler: F) -> &Self
    where
        F: Fn(Payload, Option<ServerSideAck>) + Send + Sync + 'static,
    {
        self.0
            .handlers
            .server_side
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(event.into(), Arc::new(handler));
        self
    }

    /// Sends `event` to the other nodes' server-side handlers (not this
    /// node's: as in the reference server).
    pub fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        super::socket::check_event(event)?;
        let payload = remote_data(event, data)?;
        self.0
            .adapter
            .server_side_emit(&payload)
            .map_err(|e| EmitError::Cluster(e.to_string()))
    }

    /// [`server_side_emit`](Self::server_side_emit) with any arguments,
    /// binary included (they reach the other nodes' handlers as bytes).
    pub fn server_side_emit_payload(
        &self,
        event: &str,
        payload: &Payload,
    ) -> Result<(), EmitError> {
        super::socket::check_event(event)?;
        self.0
            .adapter
            .server_side_emit(&remote_payload(event, payload))
            .map_err(|e| EmitError::Cluster(e.to_string()))
    }

    /// [`server_side_emit`](Self::server_side_emit), gathering each other
    /// node's answer until all answered or `timeout`.
    pub async fn server_side_emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Gathered<Value>, EmitError> {
        super::socket::check_event(event)?;
        let payload = remote_data(event, data)?;
        self.0
            .adapter
            .server_side_emit_with_ack(&payload, timeout)
            .await
            .map_err(|e| EmitError::Cluster(e.to_string()))
    }

    /// The sockets connected to this namespace on this node.
    pub fn sockets(&self) -> Vec<Socket> {
        self.all().sockets()
    }

    /// Closes the namespace: new connections to it are refused, and every
    /// socket gets what is already queued for it, then a disconnect
    /// (clients see "io server disconnect" and do not reconnect to it).
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::Release);
        self.all().disconnect_sockets();
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("path", &self.0.path)
            .finish_non_exhaustive()
    }
}

/// A dynamic namespace: a pattern whose matching names become namespaces on
/// first connection, all sharing its middleware and connect handler.
#[derive(Clone)]
pub struct DynNamespace(pub(crate) Arc<Handlers>);

impl DynNamespace {
    /// Sets the room policy of every namespace of the pattern (see
    /// [`Namespace::room_policy`]).
    pub fn room_policy<F>(&self, policy: F) -> &Self
    where
        F: Fn(&Socket, &str) -> Result<Room, JoinError> + Send + Sync + 'static,
    {
        self.0.set_room_policy(Arc::new(policy));
        self
    }

    /// Adds a connect middleware for every namespace of the pattern.
    pub fn middleware<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(Arc<Handshake>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.0.add(f);
        self
    }
}

impl fmt::Debug for DynNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DynNamespace")
    }
}

/// Matches `/tenant-{id}`-style patterns: `{name}` stands for one or more
/// characters other than `/`; everything else matches itself.
pub(crate) fn pattern_matches(pattern: &str, path: &str) -> bool {
    match pattern.find('{') {
        None => pattern == path,
        Some(open) => {
            let Some(close) = pattern[open..].find('}').map(|i| open + i) else {
                return pattern == path;
            };
            let (prefix, rest) = (&pattern[..open], &pattern[close + 1..]);
            let Some(tail) = path.strip_prefix(prefix) else {
                return false;
            };
            // The parameter takes 1.. chars up to the next '/'; try each
            // split so that a literal after it can match.
            let limit = tail.find('/').unwrap_or(tail.len());
            tail.char_indices()
                .map(|(i, c)| i + c.len_utf8())
                .take_while(|&end| end <= limit)
                .any(|end| pattern_matches(rest, &tail[end..]))
        }
    }
}

/// Selects sockets of a namespace and sends to them: `to`, `except`,
/// `volatile`, `local`, `timeout`, then `emit`, `emit_with_ack`, `sockets`,
/// `disconnect_sockets`, `join`, `leave`.
///
/// A broadcast encodes its packet once; every recipient gets the same bytes.
///
/// ```
/// use std::time::Duration;
/// use socketgate::socketio::{SocketIo, SocketIoConfig};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let io = SocketIo::new(SocketIoConfig::default());
/// // everyone in "room-1" but those also in "muted"
/// io.to("room-1").except("muted").emit("news", &"hello")?;
/// // ask every socket of the main namespace, give them a second to answer
/// let acks = io.to("room-1").timeout(Duration::from_secs(1)).emit_with_ack("poll", &"ready?").await?;
/// println!("{} answered, {} did not", acks.replies.len(), acks.missing.len());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct BroadcastOperator {
    ns: Arc<NamespaceInner>,
    opts: BroadcastOptions,
    timeout: Duration,
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<NamespaceInner>, opts: BroadcastOptions) -> Self {
        BroadcastOperator {
            ns,
            opts,
            timeout: Duration::from_secs(5),
        }
    }

    /// Adds a room to the targets (sockets in any listed room).
    pub fn to(mut self, room: impl Into<Room>) -> Self {
        self.opts.rooms.push(room.into());
        self
    }

    /// Excludes the sockets of a room.
    pub fn except(mut self, room: impl Into<Room>) -> Self {
        self.opts.except.push(room.into());
        self
    }

    /// The packet may be dropped for clients that are behind.
    pub fn volatile(mut self) -> Self {
        self.opts.volatile = true;
        self
    }

    /// This node only (matters with a cluster adapter).
    pub fn local(mut self) -> Self {
        self.opts.local = true;
        self
    }

    /// How long [`emit_with_ack`](Self::emit_with_ack) waits; default 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The selected sockets on this node.
    pub fn sockets(&self) -> Vec<Socket> {
        self.ns
            .adapter
            .select(&self.opts)
            .iter()
            .filter_map(|sid| self.ns.socket(sid))
            .collect()
    }

    /// Emits `event` with one JSON argument.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        super::socket::check_event(event)?;
        let (path, parser) = (&self.ns.path, self.ns.shared.parser);
        self.ns.emit_with(
            &self.opts,
            |offset| payload::event(parser, path, None, event, data, offset),
            || remote_data(event, data),
        )
    }

    /// Emits `event` with any arguments, binary included.
    pub fn emit_payload(&self, event: &str, payload: &Payload) -> Result<(), EmitError> {
        super::socket::check_event(event)?;
        let (path, parser) = (&self.ns.path, self.ns.shared.parser);
        self.ns.emit_with(
            &self.opts,
            |offset| payload::event_payload(parser, path, None, event, payload, offset),
            || Ok(remote_payload(event, payload)),
        )
    }

    /// Emits `event` and collects every selected socket's acknowledgement
    /// for up to [`timeout`](Self::timeout), on every node (unless
    /// `local`).
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<AckResults, EmitError> {
        super::socket::check_event(event)?;
        let id = self.ns.next_ack_id();
        let packet = payload::event(
            self.ns.shared.parser,
            &self.ns.path,
            Some(id),
            event,
            data,
            None,
        )?;
        self.ack_broadcast(id, packet, || Ok(remote_data(event, data)?))
            .await
    }

    /// [`emit_with_ack`](Self::emit_with_ack) with any arguments, binary
    /// included.
    pub async fn emit_payload_with_ack(
        &self,
        event: &str,
        payload: &Payload,
    ) -> Result<AckResults, EmitError> {
        super::socket::check_event(event)?;
        let id = self.ns.next_ack_id();
        let packet = payload::event_payload(
            self.ns.shared.parser,
            &self.ns.path,
            Some(id),
            event,
            payload,
            None,
        )?;
        self.ack_broadcast(id, packet, || Ok(remote_payload(event, payload)))
            .await
    }

    /// Sends `packet` (asking for ack `id`) to the selected sockets here
    /// and, as `remote()` describes it, on the other nodes; gathers the
    /// answers.
    async fn ack_broadcast(
        &self,
        id: u64,
        packet: Encoded,
        remote: impl FnOnce() -> Result<Payload, EmitError>,
    ) -> Result<AckResults, EmitError> {
        self.ns.shared.check_size(&packet)?;
        let remote = async {
            if self.opts.local || !self.ns.adapter.is_remote() {
                return Ok(None);
            }
            let broadcast = RemoteBroadcast::new(self.opts.clone(), remote()?);
            Ok::<_, EmitError>(Some(
                self.ns
                    .adapter
                    .broadcast_with_acks(&broadcast, self.timeout)
                    .await,
            ))
        };
        let waits: Vec<_> = self
            .sockets()
            .into_iter()
            .filter_map(|socket| {
                let answer = socket.expect_ack(id);
                let policy = self.ns.shared.full_queue;
                if delivery::deliver(socket.session(), &packet, self.opts.volatile, policy).is_err()
                {
                    // Not sent: nobody will answer it.
                    socket.forget_ack(id);
                    return None;
                }
                Some(async move {
                    let result = socket.wait_ack(id, answer, self.timeout).await;
                    (socket.id().clone(), result)
                })
            })
            .collect();
        let (local, remote) = tokio::join!(futures_util::future::join_all(waits), remote);
        let mut results = AckResults::default();
        for (sid, result) in local {
            match result {
                Ok(payload) => results.replies.push((sid, payload)),
                Err(e) => results.missing.push((sid, e)),
            }
        }
        match remote? {
            None => {}
            Some(Ok(remote)) => {
                results.remote_missing = remote.clients.saturating_sub(remote.replies.len() as u64);
                results.remote_replies = remote.replies;
                results.silent_nodes = remote.silent_nodes;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "acks from other nodes unavailable");
                results.remote_error = Some(e);
            }
        }
        Ok(results)
    }

    /// The selected sockets on every node (unless `local`), as the other
    /// nodes answer within [`timeout`](Self::timeout): each can be emitted
    /// to, joined to and removed from rooms, and disconnected, wherever it
    /// is.
    pub async fn fetch_sockets(&self) -> Result<Gathered<RemoteSocket>, AdapterError> {
        let mut items: Vec<RemoteSocket> = local_sockets(&self.ns, &self.opts)
            .into_iter()
            .map(|info| RemoteSocket::new(info, &self.ns))
            .collect();
        let mut silent_nodes = 0;
        if !self.opts.local && self.ns.adapter.is_remote() {
            let remote = self
                .ns
                .adapter
                .fetch_remote(&self.opts, self.timeout)
                .await?;
            silent_nodes = remote.silent_nodes;
            items.extend(
                remote
                    .items
                    .into_iter()
                    .map(|info| RemoteSocket::new(info, &self.ns)),
            );
        }
        Ok(Gathered::new(items, silent_nodes))
    }

    /// Disconnects the selected sockets from the namespace, on every node
    /// (unless `local`).
    pub fn disconnect_sockets(&self) {
        self.apply(RemoteOp::Disconnect {
            opts: self.opts.clone(),
            close: false,
        });
    }

    /// Disconnects the selected sockets and closes their clients' whole
    /// connections (every namespace they joined), on every node (unless
    /// `local`): the Node server's `disconnectSockets(true)`. socket.io
    /// clients see "transport close" and reconnect.
    pub fn close_connections(&self) {
        self.apply(RemoteOp::Disconnect {
            opts: self.opts.clone(),
            close: true,
        });
    }

    /// Makes the selected sockets join a room, on every node (unless
    /// `local`).
    pub fn join(&self, room: impl Into<Room>) {
        self.apply(RemoteOp::Join {
            opts: self.opts.clone(),
            rooms: vec![room.into()],
        });
    }

    /// Makes the selected sockets leave a room, on every node (unless
    /// `local`).
    pub fn leave(&self, room: impl Into<Room>) {
        self.apply(RemoteOp::Leave {
            opts: self.opts.clone(),
            rooms: vec![room.into()],
        });
    }

    fn apply(&self, op: RemoteOp) {
        apply_local(&self.ns, &op);
        if !self.opts.local
            && self.ns.adapter.is_remote()
            && let Err(e) = self.ns.adapter.apply_remote(&op)
        {
            tracing::trace!(ns = %self.ns.path, error = %e, "room operation not handed to the cluster");
        }
    }
}

impl fmt::Debug for BroadcastOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastOperator")
            .field("ns", &self.ns.path)
            .field("opts", &self.opts)
            .finish()
    }
}

/// Runs the server-side handler of `data`'s event; whether there was one.
pub(crate) fn run_server_side(
    ns: &NamespaceInner,
    data: Payload,
    reply: Option<adapter::ServerSideReply>,
) -> bool {
    let Some((event, args)) = data.args.split_first() else {
        return false;
    };
    let Some(event) = event.as_str() else {
        return false;
    };
    let handler = ns
        .handlers
        .server_side
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(event)
        .cloned();
    let Some(handler) = handler else {
        return false;
    };
    let args = Payload {
        args: args.to_vec(),
        bins: data.bins.clone(),
    };
    let what = format!("the server-side handler of {event:?}");
    super::socket::guarded(&what, || handler(args, reply.map(ServerSideAck)));
    true
}

/// Applies a room operation to this node's sockets.
pub(crate) fn apply_local(ns: &Arc<NamespaceInner>, op: &RemoteOp) {
    let opts = match op {
        RemoteOp::Join { opts, .. } | RemoteOp::Leave { opts, .. } => opts,
        RemoteOp::Disconnect { opts, .. } => opts,
    };
    let sockets: Vec<Socket> = ns
        .adapter
        .select(opts)
        .iter()
        .filter_map(|sid| ns.socket(sid))
        .collect();
    for socket in sockets {
        match op {
            RemoteOp::Join { rooms, .. } => socket.join_all(rooms),
            RemoteOp::Leave { rooms, .. } => socket.leave_all_of(rooms),
            RemoteOp::Disconnect { close: false, .. } => socket.disconnect(),
            RemoteOp::Disconnect { close: true, .. } => socket.close_connection(),
        }
    }
}

/// An event's data for other nodes: the name, then the argument.
pub(crate) fn remote_data<T: Serialize + ?Sized>(
    event: &str,
    data: &T,
) -> Result<Payload, serde_json::Error> {
    Ok(Payload {
        args: vec![Value::from(event), serde_json::to_value(data)?],
        bins: Vec::new(),
    })
}

/// [`remote_data`] for arguments that are already a payload.
pub(crate) fn remote_payload(event: &str, payload: &Payload) -> Payload {
    let mut args = Vec::with_capacity(payload.args.len() + 1);
    args.push(Value::from(event));
    args.extend(payload.args.iter().cloned());
    Payload {
        args,
        bins: payload.bins.clone(),
    }
}

/// The acknowledgements of a broadcast.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct AckResults {
    /// Sockets of this node that answered, with their answers.
    pub replies: Vec<(SocketId, Payload)>,
    /// Sockets of this node that did not answer in time or went away.
    pub missing: Vec<(SocketId, AckError)>,
    /// Answers from sockets on other nodes (the first argument of each, as
    /// the Node adapter carries them; without the socket id).
    pub remote_replies: Vec<Payload>,
    /// Sockets on other nodes that were asked and did not answer in time.
    pub remote_missing: u64,
    /// Other nodes that did not say how many sockets they asked.
    pub silent_nodes: usize,
    /// Why the other nodes could not be asked at all (the cluster bus is
    /// down): then only this node's sockets got the event.
    pub remote_error: Option<AdapterError>,
}

/// A socket found by [`BroadcastOperator::fetch_sockets`], on this node or
/// another: what it is, and what can be done to it wherever it is (through
/// its own room).
#[derive(Clone)]
pub struct RemoteSocket {
    info: adapter::SocketInfo,
    ns: Arc<NamespaceInner>,
}

impl RemoteSocket {
    fn new(info: adapter::SocketInfo, ns: &Arc<NamespaceInner>) -> Self {
        RemoteSocket {
            info,
            ns: ns.clone(),
        }
    }

    /// Its id.
    pub fn id(&self) -> &SocketId {
        &self.info.id
    }

    /// Its handshake, in the reference server's shape.
    pub fn handshake(&self) -> &Value {
        &self.info.handshake
    }

    /// Its rooms when it was fetched.
    pub fn rooms(&self) -> &[Room] {
        &self.info.rooms
    }

    /// Its data when it was fetched.
    pub fn data(&self) -> &Value {
        &self.info.data
    }

    fn own(&self) -> BroadcastOperator {
        Namespace(self.ns.clone()).to(self.info.id.as_str())
    }

    /// Emits `event` to it.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.own().emit(event, data)
    }

    /// Emits `event` with any arguments, binary included, to it.
    pub fn emit_payload(&self, event: &str, payload: &Payload) -> Result<(), EmitError> {
        self.own().emit_payload(event, payload)
    }

    /// Makes it join `room`.
    pub fn join(&self, room: impl Into<Room>) {
        self.own().join(room);
    }

    /// Makes it leave `room`.
    pub fn leave(&self, room: impl Into<Room>) {
        self.own().leave(room);
    }

    /// Disconnects it from the namespace.
    pub fn disconnect(&self) {
        self.own().disconnect_sockets();
    }
}

impl fmt::Debug for RemoteSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSocket")
            .field("id", &self.info.id)
            .field("rooms", &self.info.rooms)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::pattern_matches;

    #[test]
    fn patterns() {
        assert!(pattern_matches("/tenant-{id}", "/tenant-42"));
        assert!(pattern_matches("/tenant-{id}", "/tenant-é"));
        assert!(!pattern_matches("/tenant-{id}", "/tenant-"));
        assert!(!pattern_matches("/tenant-{id}", "/tenant-4/2"));
        assert!(!pattern_matches("/tenant-{id}", "/other-42"));
        assert!(pattern_matches("/org/{o}/room-{r}", "/org/acme/room-7"));
        assert!(!pattern_matches("/org/{o}/room-{r}", "/org/acme/hall-7"));
        assert!(pattern_matches("/{a}-{b}", "/x-y-z"));
        assert!(pattern_matches("/plain", "/plain"));
        assert!(!pattern_matches("/plain", "/plain2"));
    }
}
