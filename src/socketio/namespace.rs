//! Namespaces, their connect middleware, and broadcast operators.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::adapter::{self, Adapter, BroadcastOptions, Room};
use super::config::FullQueue;
use super::handshake::Handshake;
use super::payload::{self, Encoded, Payload};
use super::recovery::SessionStore;
use super::socket::{AckError, EmitError, Socket, SocketId};

/// A refusal of a namespace connection: the client's `connect_error` sees
/// `message` and `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    /// The error message.
    pub message: String,
    /// Extra data for the client.
    pub data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
        }
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

/// What a namespace does on connect; shared by the children of a dynamic
/// namespace.
pub(crate) struct Handlers {
    pub(crate) on_connect: ConnectHandler,
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
}

impl Handlers {
    pub(crate) fn new(on_connect: ConnectHandler) -> Arc<Self> {
        Arc::new(Handlers {
            on_connect,
            middlewares: RwLock::new(Vec::new()),
        })
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
    pub(crate) full_queue: FullQueue,
}

pub(crate) struct NamespaceInner {
    pub(crate) path: String,
    pub(crate) handlers: Arc<Handlers>,
    pub(crate) sockets: RwLock<HashMap<SocketId, Socket>>,
    pub(crate) adapter: Box<dyn Adapter>,
    pub(crate) shared: Shared,
    ack_ids: AtomicU64,
    /// With recovery, offsets must reach each client in increasing order:
    /// taking the offset and queueing the packet happen under this lock.
    emit_order: Mutex<()>,
    /// Set by [`Namespace::close`]: new connections are refused.
    closed: AtomicBool,
}

impl NamespaceInner {
    pub(crate) fn new(
        path: String,
        handlers: Arc<Handlers>,
        adapter: Box<dyn Adapter>,
        shared: Shared,
    ) -> Arc<Self> {
        Arc::new(NamespaceInner {
            path,
            handlers,
            sockets: RwLock::new(HashMap::new()),
            adapter,
            shared,
            ack_ids: AtomicU64::new(0),
            emit_order: Mutex::new(()),
            closed: AtomicBool::new(false),
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Sends an event to the sockets `opts` selects. With recovery on (and
    /// the packet not volatile), the packet gets an offset and is retained
    /// for sockets that come back.
    pub(crate) fn emit_with(
        &self,
        opts: &BroadcastOptions,
        encode: impl Fn(Option<&str>) -> Result<Encoded, serde_json::Error>,
    ) -> Result<(), EmitError> {
        match &self.shared.store {
            Some(store) if !opts.volatile => {
                let _order = self.emit_order.lock().unwrap_or_else(|e| e.into_inner());
                let offset = store.next_offset();
                let packet = encode(Some(&offset))?;
                store.retain(&offset, &self.path, opts, &packet.0);
                self.deliver(opts, &packet);
            }
            _ => self.deliver(opts, &encode(None)?),
        }
        Ok(())
    }

    fn deliver(&self, opts: &BroadcastOptions, packet: &Encoded) {
        for sid in self.adapter.select(opts) {
            if let Some(socket) = self.socket(&sid).filter(Socket::connected) {
                // A failure closed that client (slow consumer) or it is
                // gone; the others still get the packet.
                let _ = adapter::deliver(
                    socket.session(),
                    packet,
                    opts.volatile,
                    self.shared.full_queue,
                );
            }
        }
        if !opts.local {
            self.adapter.publish(opts, &packet.0);
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
        self.adapter
            .join(socket.id(), &[Room::from(socket.id().as_str())]);
    }

    pub(crate) fn remove(&self, socket: &Socket) {
        self.adapter.leave_all(socket.id());
        self.sockets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(socket.id());
    }

    pub(crate) fn socket(&self, sid: &SocketId) -> Option<Socket> {
        self.sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(sid)
            .cloned()
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
        let path = &self.ns.path;
        self.ns.emit_with(&self.opts, |offset| {
            payload::event(path, None, event, data, offset)
        })
    }

    /// Emits `event` with any arguments, binary included.
    pub fn emit_payload(&self, event: &str, payload: &Payload) -> Result<(), EmitError> {
        super::socket::check_event(event)?;
        let path = &self.ns.path;
        self.ns.emit_with(&self.opts, |offset| {
            payload::event_payload(path, None, event, payload, offset)
        })
    }

    /// Emits `event` and collects every selected socket's acknowledgement
    /// for up to [`timeout`](Self::timeout).
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<AckResults, EmitError> {
        super::socket::check_event(event)?;
        let id = self.ns.next_ack_id();
        let packet = payload::event(&self.ns.path, Some(id), event, data, None)?;
        let waits: Vec<_> = self
            .sockets()
            .into_iter()
            .filter_map(|socket| {
                let answer = socket.expect_ack(id);
                let policy = self.ns.shared.full_queue;
                adapter::deliver(socket.session(), &packet, self.opts.volatile, policy).ok()?;
                Some(async move {
                    let result = socket.wait_ack(id, answer, self.timeout).await;
                    (socket.id().clone(), result)
                })
            })
            .collect();
        let mut results = AckResults::default();
        for (sid, result) in futures_util::future::join_all(waits).await {
            match result {
                Ok(payload) => results.replies.push((sid, payload)),
                Err(e) => results.missing.push((sid, e)),
            }
        }
        Ok(results)
    }

    /// Disconnects the selected sockets from the namespace.
    pub fn disconnect_sockets(&self) {
        for socket in self.sockets() {
            socket.disconnect();
        }
    }

    /// Makes the selected sockets join a room.
    pub fn join(&self, room: impl Into<Room>) {
        let room = room.into();
        for socket in self.sockets() {
            socket.join(room.clone());
        }
    }

    /// Makes the selected sockets leave a room.
    pub fn leave(&self, room: impl Into<Room>) {
        let room = room.into();
        for socket in self.sockets() {
            socket.leave(room.clone());
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

/// The acknowledgements of a broadcast.
#[derive(Debug, Default)]
pub struct AckResults {
    /// Sockets that answered, with their answers.
    pub replies: Vec<(SocketId, Payload)>,
    /// Sockets that did not answer in time or went away.
    pub missing: Vec<(SocketId, AckError)>,
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
