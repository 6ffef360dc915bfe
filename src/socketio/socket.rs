//! A socket: one client's connection to one namespace.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::adapter::{self, BroadcastOptions, Room};
use super::config::FullQueue;
use super::handshake::Handshake;
use super::namespace::{BroadcastOperator, NamespaceInner};
use super::packet::{Packet, PacketType, is_reserved_event};
use super::payload::{self, Encoded, Payload};
use super::reason::DisconnectReason;
use super::recovery::PersistedSession;
use crate::engine::{SendError, Session};

/// A socket's id: random for current clients; for engine.io v3 clients
/// the engine session id (main namespace) or `<namespace>#<engine sid>`,
/// as those clients compute it themselves. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(Arc<str>);

impl SocketId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SocketId {
    fn from(s: &str) -> Self {
        SocketId(s.into())
    }
}

impl From<String> for SocketId {
    fn from(s: String) -> Self {
        SocketId(s.into())
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SocketId({})", self.0)
    }
}

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The data could not be serialised to JSON.
    #[error("cannot serialise the event data: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The event name is reserved by socket.io (`connect`, `disconnect`…).
    #[error("reserved event name")]
    ReservedEvent,
    /// The socket is disconnected.
    #[error("socket disconnected")]
    Disconnected,
    /// The client does not keep up: its outbound queue is full and its
    /// connection was closed (reason "slow consumer").
    #[error("outbound queue full")]
    QueueFull,
}

impl From<SendError> for EmitError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::QueueFull => EmitError::QueueFull,
            _ => EmitError::Disconnected,
        }
    }
}

/// Why an acknowledgement did not come.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The client did not answer in time.
    #[error("ack timed out")]
    Timeout,
    /// The socket disconnected before answering.
    #[error("socket disconnected")]
    Disconnected,
    /// The event could not be sent.
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// An event received from the client.
#[derive(Debug)]
pub struct Event {
    /// The event name.
    pub name: String,
    /// Its arguments.
    pub payload: Payload,
    ack: Option<AckSender>,
}

impl Event {
    /// The first argument, deserialised.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.payload.first()
    }

    /// Whether the client waits for an acknowledgement.
    pub fn wants_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// Takes the acknowledgement sender, when the client asked for one.
    pub fn take_ack(&mut self) -> Option<AckSender> {
        self.ack.take()
    }

    /// Acknowledges with one JSON argument, when the client asked for an
    /// acknowledgement (otherwise does nothing).
    pub fn ack<T: Serialize + ?Sized>(&mut self, data: &T) -> Result<(), EmitError> {
        match self.ack.take() {
            Some(ack) => ack.send(data),
            None => Ok(()),
        }
    }
}

/// Answers one client event that asked for an acknowledgement.
pub struct AckSender {
    socket: Socket,
    id: u64,
}

impl fmt::Debug for AckSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckSender").field("id", &self.id).finish()
    }
}

impl AckSender {
    /// Acknowledges with one JSON argument.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        let packet = payload::ack_one(&self.socket.0.ns.path, self.id, data)?;
        self.socket.send(&packet)
    }

    /// Acknowledges with any arguments, binary included.
    pub fn send_payload(self, payload: &Payload) -> Result<(), EmitError> {
        let packet = payload::ack(&self.socket.0.ns.path, self.id, payload)?;
        self.socket.send(&packet)
    }
}

type EventHandler = Arc<dyn Fn(&Socket, Event) + Send + Sync>;
type DisconnectHandler = Box<dyn FnOnce(&Socket, DisconnectReason) + Send>;

/// One client's connection to a namespace. Cheap to clone.
#[derive(Clone)]
pub struct Socket(pub(crate) Arc<SocketInner>);

pub(crate) struct SocketInner {
    id: SocketId,
    pub(crate) ns: Arc<NamespaceInner>,
    session: Session,
    handshake: Arc<Handshake>,
    handlers: RwLock<HashMap<String, EventHandler>>,
    on_disconnect: Mutex<Vec<DisconnectHandler>>,
    acks: Mutex<HashMap<u64, oneshot::Sender<Payload>>>,
    extensions: Mutex<http::Extensions>,
    connected: AtomicBool,
    /// The private session id a recovering client presents (protocol 5
    /// with recovery on).
    pid: Option<String>,
    recovered: bool,
    data: Mutex<serde_json::Value>,
    /// Packets that arrive while the connect handler still runs (it may
    /// not have registered its event handlers yet); `None` afterwards.
    held: Mutex<Option<Vec<Packet>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Socket {
    pub(crate) fn new(
        id: SocketId,
        ns: Arc<NamespaceInner>,
        session: Session,
        handshake: Arc<Handshake>,
        pid: Option<String>,
        recovered: bool,
    ) -> Self {
        Socket(Arc::new(SocketInner {
            id,
            ns,
            session,
            handshake,
            handlers: RwLock::new(HashMap::new()),
            on_disconnect: Mutex::new(Vec::new()),
            acks: Mutex::new(HashMap::new()),
            extensions: Mutex::new(http::Extensions::new()),
            connected: AtomicBool::new(true),
            pid,
            recovered,
            data: Mutex::new(serde_json::Value::Null),
            held: Mutex::new(Some(Vec::new())),
        }))
    }

    /// The socket id (distinct from the engine session id).
    pub fn id(&self) -> &SocketId {
        &self.0.id
    }

    /// The namespace path.
    pub fn ns(&self) -> &str {
        &self.0.ns.path
    }

    /// The namespace this socket belongs to.
    pub fn namespace(&self) -> super::Namespace {
        super::Namespace(self.0.ns.clone())
    }

    /// The handshake: auth, headers, query, address.
    pub fn handshake(&self) -> &Handshake {
        &self.0.handshake
    }

    /// The underlying engine.io session, shared by all namespaces of the
    /// same client.
    pub fn session(&self) -> &Session {
        &self.0.session
    }

    /// Whether the socket is still connected.
    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }

    /// Whether this socket was recovered: same id, rooms and data as before
    /// a disconnection, and the packets it missed were sent again.
    pub fn recovered(&self) -> bool {
        self.0.recovered
    }

    /// The socket's JSON data (`null` until set); kept across a recovery,
    /// by any session store.
    pub fn data(&self) -> serde_json::Value {
        lock(&self.0.data).clone()
    }

    /// Replaces the socket's JSON data.
    pub fn set_data(&self, data: serde_json::Value) {
        *lock(&self.0.data) = data;
    }

    /// Typed per-socket data: whatever the application stores here (kept
    /// across a recovery by the in-memory store).
    pub fn extensions(&self) -> MutexGuard<'_, http::Extensions> {
        lock(&self.0.extensions)
    }

    // ---- handlers ------------------------------------------------------

    /// Handles event `name`. A later handler for the same name replaces
    /// the earlier one.
    ///
    /// ```
    /// use socketgate::socketio::{Payload, SocketIo, SocketIoConfig};
    ///
    /// let io = SocketIo::new(SocketIoConfig::default());
    /// io.ns("/", |socket| {
    ///     // Send back whatever arrived, binary arguments included, and
    ///     // acknowledge when the client asked for it.
    ///     socket.on("echo", |socket, mut event| {
    ///         let _ = socket.emit_payload("echo", &event.payload);
    ///         if let Some(ack) = event.take_ack() {
    ///             let _ = ack.send_payload(&Payload::new().arg("received"));
    ///         }
    ///     });
    /// });
    /// ```
    pub fn on<F>(&self, name: impl Into<String>, handler: F)
    where
        F: Fn(&Socket, Event) + Send + Sync + 'static,
    {
        let mut handlers = self.0.handlers.write().unwrap_or_else(|e| e.into_inner());
        handlers.insert(name.into(), Arc::new(handler));
    }

    /// Handles event `name` whose first argument deserialises to `T`. An
    /// event whose data does not fit `T` is dropped (logged at debug level),
    /// and its acknowledgement, if requested, is answered with
    /// `{"error": "<why>"}`.
    ///
    /// ```
    /// use serde::Deserialize;
    /// use socketgate::socketio::{SocketIo, SocketIoConfig};
    ///
    /// #[derive(Deserialize)]
    /// struct Move { x: i32, y: i32 }
    ///
    /// let io = SocketIo::new(SocketIoConfig::default());
    /// io.ns("/game", |socket| {
    ///     socket.on_typed("move", |socket, m: Move, mut event| {
    ///         let _ = socket.to("table-1").emit("moved", &(m.x, m.y));
    ///         let _ = event.ack(&"ok");
    ///     });
    /// });
    /// ```
    pub fn on_typed<T, F>(&self, name: impl Into<String>, handler: F)
    where
        T: DeserializeOwned,
        F: Fn(&Socket, T, Event) + Send + Sync + 'static,
    {
        let name = name.into();
        let event_name = name.clone();
        self.on(name, move |socket, mut event| match event.data::<T>() {
            Ok(data) => handler(socket, data, event),
            Err(e) => {
                tracing::debug!(event = %event_name, error = %e, "event data does not fit its type");
                let _ = event.ack(&serde_json::json!({ "error": e.to_string() }));
            }
        });
    }

    /// Runs once when the socket disconnects, with the reason.
    pub fn on_disconnect<F>(&self, handler: F)
    where
        F: FnOnce(&Socket, DisconnectReason) + Send + 'static,
    {
        lock(&self.0.on_disconnect).push(Box::new(handler));
    }

    // ---- emitting --------------------------------------------------------

    /// Emits `event` with one JSON argument to this client.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        check_event(event)?;
        let path = &self.0.ns.path;
        self.emit_event(|offset| payload::event(path, None, event, data, offset))
    }

    /// Sends an event to this client. With recovery on it goes through the
    /// namespace, so that it is retained (and given an offset) for this
    /// socket even while it is away.
    fn emit_event(
        &self,
        encode: impl Fn(Option<&str>) -> Result<Encoded, serde_json::Error>,
    ) -> Result<(), EmitError> {
        if self.0.ns.shared.store.is_some() {
            return self.0.ns.emit_with(&self.own_room(), encode);
        }
        self.send(&encode(None)?)
    }

    fn own_room(&self) -> BroadcastOptions {
        BroadcastOptions {
            rooms: vec![Room::from(self.0.id.as_str())],
            ..Default::default()
        }
    }

    /// Emits `event` with one JSON argument, waiting for room in the
    /// client's outbound queue when it is full instead of applying the
    /// full-queue policy: backpressure for producers that can slow down.
    pub async fn emit_wait<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        check_event(event)?;
        let path = &self.0.ns.path;
        let packet = match &self.0.ns.shared.store {
            Some(store) => {
                let offset = store.next_offset();
                let packet = payload::event(path, None, event, data, Some(&offset))?;
                store.retain(&offset, path, &self.own_room(), &packet.0);
                packet
            }
            None => payload::event(path, None, event, data, None)?,
        };
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        self.0
            .session
            .send_all_wait(&packet.0)
            .await
            .map_err(EmitError::from)
    }

    /// Emits `event` with any arguments, binary included.
    pub fn emit_payload(&self, event: &str, payload: &Payload) -> Result<(), EmitError> {
        check_event(event)?;
        let path = &self.0.ns.path;
        self.emit_event(|offset| payload::event_payload(path, None, event, payload, offset))
    }

    /// Emits `event` and waits up to `timeout` for the client's
    /// acknowledgement.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use socketgate::socketio::{AckError, Socket};
    /// async fn confirm(socket: Socket) {
    ///     match socket.emit_with_ack("confirm", &"delete 3 files?", Duration::from_secs(10)).await {
    ///         Ok(answer) => println!("client said {:?}", answer.first::<bool>()),
    ///         Err(AckError::Timeout) => println!("no answer"),
    ///         Err(e) => println!("{e}"),
    ///     }
    /// }
    /// ```
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Payload, AckError> {
        let path = &self.0.ns.path;
        let (id, answer) = self.ask(event, |id| {
            payload::event(path, Some(id), event, data, None)
        })?;
        self.wait_ack(id, answer, timeout).await
    }

    /// [`emit_with_ack`](Self::emit_with_ack) with any arguments.
    pub async fn emit_payload_with_ack(
        &self,
        event: &str,
        payload: &Payload,
        timeout: Duration,
    ) -> Result<Payload, AckError> {
        let path = &self.0.ns.path;
        let (id, answer) = self.ask(event, |id| {
            payload::event_payload(path, Some(id), event, payload, None)
        })?;
        self.wait_ack(id, answer, timeout).await
    }

    /// Encodes an event that expects an ack (with a fresh ack id) and
    /// sends it, the answer expected first.
    fn ask(
        &self,
        event: &str,
        encode: impl FnOnce(u64) -> Result<Encoded, serde_json::Error>,
    ) -> Result<(u64, oneshot::Receiver<Payload>), AckError> {
        check_event(event)?;
        let id = self.0.ns.next_ack_id();
        let packet = encode(id).map_err(EmitError::from)?;
        let answer = self.expect_ack(id);
        self.send(&packet)?;
        Ok((id, answer))
    }

    pub(crate) fn expect_ack(&self, id: u64) -> oneshot::Receiver<Payload> {
        let (tx, rx) = oneshot::channel();
        lock(&self.0.acks).insert(id, tx);
        rx
    }

    pub(crate) async fn wait_ack(
        &self,
        id: u64,
        answer: oneshot::Receiver<Payload>,
        timeout: Duration,
    ) -> Result<Payload, AckError> {
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(payload)) => Ok(payload),
            Ok(Err(_)) => Err(AckError::Disconnected),
            Err(_) => {
                lock(&self.0.acks).remove(&id);
                Err(AckError::Timeout)
            }
        }
    }

    /// Sends an encoded packet to this client (slow-consumer policy of
    /// [`adapter::deliver`]).
    pub(crate) fn send(&self, packet: &Encoded) -> Result<(), EmitError> {
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        adapter::deliver(&self.0.session, packet, false, self.0.ns.shared.full_queue)
            .map_err(EmitError::from)
    }

    // ---- rooms -----------------------------------------------------------

    /// Joins a room.
    pub fn join(&self, room: impl Into<Room>) {
        self.0.ns.adapter.join(&self.0.id, &[room.into()]);
    }

    /// Leaves a room.
    pub fn leave(&self, room: impl Into<Room>) {
        self.0.ns.adapter.leave(&self.0.id, &[room.into()]);
    }

    /// The rooms this socket is in (its own id among them).
    pub fn rooms(&self) -> Vec<Room> {
        self.0.ns.adapter.rooms_of(&self.0.id)
    }

    /// Broadcast to a room's sockets, this one excluded.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.broadcast().to(room)
    }

    /// Broadcast to every socket of the namespace but this one.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(
            self.0.ns.clone(),
            BroadcastOptions {
                except_sid: Some(self.0.id.clone()),
                ..Default::default()
            },
        )
    }

    /// Emit to this socket only if its client keeps up (dropped otherwise).
    pub fn volatile(&self) -> BroadcastOperator {
        BroadcastOperator::new(
            self.0.ns.clone(),
            BroadcastOptions {
                rooms: vec![Room::from(self.0.id.as_str())],
                volatile: true,
                ..Default::default()
            },
        )
    }

    // ---- leaving ---------------------------------------------------------

    /// Disconnects this socket from its namespace; the client's other
    /// namespaces and its connection stay up.
    pub fn disconnect(&self) {
        if self.connected() {
            let packet = payload::control(PacketType::Disconnect, &self.0.ns.path, None);
            let _ = adapter::deliver(&self.0.session, &packet, false, FullQueue::Close);
            self.closed(DisconnectReason::ServerNamespaceDisconnect);
        }
    }

    /// Closes the client's whole connection (all its namespaces) after
    /// flushing what is queued. socket.io clients see "transport close" and
    /// reconnect.
    pub fn close_connection(&self) {
        self.0.session.close();
    }

    /// The socket leaves its namespace: rooms, pending acks, handlers.
    pub(crate) fn closed(&self, reason: DisconnectReason) {
        if !self.0.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        tracing::debug!(id = %self.0.id, ns = %self.0.ns.path, %reason, "socket disconnected");
        self.persist(reason);
        self.0.ns.remove(self);
        // Dropping the senders tells pending ack waiters.
        lock(&self.0.acks).clear();
        let handlers = std::mem::take(&mut *lock(&self.0.on_disconnect));
        for h in handlers {
            h(self, reason);
        }
        self.0
            .handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Keeps the socket's state for recovery when the connection was lost
    /// (not when either side left the namespace on purpose).
    fn persist(&self, reason: DisconnectReason) {
        let (Some(store), Some(pid)) = (&self.0.ns.shared.store, &self.0.pid) else {
            return;
        };
        let recoverable = !matches!(
            reason,
            DisconnectReason::ClientNamespaceDisconnect
                | DisconnectReason::ServerNamespaceDisconnect
                | DisconnectReason::ParseError
        );
        if recoverable {
            store.persist(PersistedSession {
                ns: self.0.ns.path.clone(),
                sid: self.0.id.clone(),
                pid: pid.clone(),
                rooms: self.rooms(),
                data: self.data(),
                extensions: self.extensions().clone(),
            });
        }
    }

    /// Gives a recovered socket its rooms and data back.
    pub(crate) fn restore(&self, session: &PersistedSession) {
        self.0.ns.adapter.join(&self.0.id, &session.rooms);
        self.set_data(session.data.clone());
        *self.extensions() = session.extensions.clone();
    }

    // ---- incoming ------------------------------------------------------

    /// Dispatches an EVENT or ACK for this socket, in order.
    pub(crate) fn on_packet(&self, packet: Packet) {
        {
            let mut held = lock(&self.0.held);
            if let Some(held) = held.as_mut() {
                held.push(packet);
                return;
            }
        }
        self.dispatch(packet);
    }

    /// The connect handler has run: dispatch what arrived meanwhile.
    pub(crate) fn ready(&self) {
        loop {
            let batch = {
                let mut held = lock(&self.0.held);
                match held.as_mut() {
                    Some(b) if !b.is_empty() => std::mem::take(b),
                    _ => {
                        *held = None;
                        return;
                    }
                }
            };
            for p in batch {
                self.dispatch(p);
            }
        }
    }

    fn dispatch(&self, packet: Packet) {
        match packet.ty {
            PacketType::Event | PacketType::BinaryEvent => self.on_event(packet),
            PacketType::Ack | PacketType::BinaryAck => {
                let Some(id) = packet.id else { return };
                let args = match packet.data {
                    Some(serde_json::Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                let payload = Payload {
                    args,
                    bins: packet.attachments,
                };
                if let Some(tx) = lock(&self.0.acks).remove(&id) {
                    let _ = tx.send(payload);
                }
            }
            _ => {}
        }
    }

    fn on_event(&self, packet: Packet) {
        let mut args = match packet.data {
            Some(serde_json::Value::Array(a)) => a,
            _ => return,
        };
        // The decoder guarantees a non-empty array led by a string.
        let name = match args.first() {
            Some(serde_json::Value::String(_)) => match args.remove(0) {
                serde_json::Value::String(s) => s,
                _ => return,
            },
            _ => return,
        };
        let handler = self
            .0
            .handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .cloned();
        let Some(handler) = handler else {
            tracing::trace!(event = %name, "no handler");
            return;
        };
        let event = Event {
            name,
            payload: Payload {
                args,
                bins: packet.attachments,
            },
            ack: packet.id.map(|id| AckSender {
                socket: self.clone(),
                id,
            }),
        };
        handler(self, event);
    }
}

pub(crate) fn check_event(event: &str) -> Result<(), EmitError> {
    if is_reserved_event(event) {
        Err(EmitError::ReservedEvent)
    } else {
        Ok(())
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.0.id)
            .field("ns", &self.0.ns.path)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Socket {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Socket {}
