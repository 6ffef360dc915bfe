//! A socket: one client's connection to one namespace.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::config::FullQueue;
use super::delivery;
use super::handshake::Handshake;
use super::namespace::{BroadcastOperator, NamespaceInner};
use super::packet::{Packet, PacketType, is_reserved_event};
use super::payload::{self, Encoded, Payload};
use super::reason::DisconnectReason;
use super::recovery::PersistedSession;
use super::types::{BroadcastOptions, Room};
pub use super::types::{EmitError, SocketId};
use crate::engine::Session;

/// Why a room a client asked for was refused (see
/// [`Socket::join_client_room`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// Not a name: empty, or longer than [`MAX_ROOM_NAME`] bytes.
    #[error("a room name is 1 to 256 bytes")]
    BadName,
    /// Shaped like a socket id: those rooms are each socket's own.
    #[error("this room name is reserved")]
    Reserved,
    /// The socket is in as many rooms as
    /// [`SocketIoConfig::max_client_rooms`](super::SocketIoConfig::max_client_rooms)
    /// allows.
    #[error("too many rooms (at most {0})")]
    TooManyRooms(usize),
    /// The namespace's room policy said no.
    #[error("{0}")]
    Refused(String),
}

/// The longest room name a client may ask for, in bytes.
pub const MAX_ROOM_NAME: usize = 256;

/// Typed per-socket data. Values are cloned in and out, so no lock of the
/// socket is ever held by application code.
#[derive(Default)]
pub struct Extensions(Mutex<http::Extensions>);

impl Extensions {
    /// Stores `value`, returning the one of the same type it replaces.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        lock(&self.0).insert(value)
    }

    /// A copy of the value of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        lock(&self.0).get::<T>().cloned()
    }

    /// Takes the value of type `T` out.
    pub fn remove<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        lock(&self.0).remove::<T>()
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        lock(&self.0).get::<T>().is_some()
    }

    pub(crate) fn snapshot(&self) -> http::Extensions {
        lock(&self.0).clone()
    }

    pub(crate) fn replace(&self, extensions: http::Extensions) {
        *lock(&self.0) = extensions;
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Extensions")
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
        let packet = payload::ack_one(
            self.socket.0.ns.shared.parser,
            &self.socket.0.ns.path,
            self.id,
            data,
        )?;
        self.socket.send(&packet)
    }

    /// Acknowledges with any arguments, binary included.
    pub fn send_payload(self, payload: &Payload) -> Result<(), EmitError> {
        let packet = payload::ack(
            self.socket.0.ns.shared.parser,
            &self.socket.0.ns.path,
            self.id,
            payload,
        )?;
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
    /// For events without a handler of their own.
    fallback: RwLock<Option<EventHandler>>,
    /// The disconnect handlers while the socket is connected; once it
    /// left, why (a handler added then runs at once).
    on_disconnect: Mutex<Result<Vec<DisconnectHandler>, DisconnectReason>>,
    acks: Mutex<HashMap<u64, oneshot::Sender<Payload>>>,
    extensions: Extensions,
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
            fallback: RwLock::new(None),
            on_disconnect: Mutex::new(Ok(Vec::new())),
            acks: Mutex::new(HashMap::new()),
            extensions: Extensions::default(),
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

    pub(crate) fn pid(&self) -> Option<&str> {
        self.0.pid.as_deref()
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
        if let Some(observer) = self.0.ns.shared.observer.get() {
            observer.data_changed(self);
        }
    }

    /// Typed per-socket data: whatever the application stores here (kept
    /// across a recovery by the in-memory store).
    ///
    /// ```
    /// # use socketgate::socketio::Socket;
    /// #[derive(Clone)]
    /// struct User(u64);
    ///
    /// fn on_login(socket: &Socket, id: u64) {
    ///     socket.extensions().insert(User(id));
    ///     assert_eq!(socket.extensions().get::<User>().map(|u| u.0), Some(id));
    /// }
    /// ```
    pub fn extensions(&self) -> &Extensions {
        &self.0.extensions
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

    /// Handles every event that has no handler of its own (see
    /// [`on`](Self::on)), in the order they arrive; the event's name is in
    /// [`Event::name`]. A later fallback replaces the earlier one.
    ///
    /// ```
    /// use socketgate::socketio::{SocketIo, SocketIoConfig};
    ///
    /// let io = SocketIo::new(SocketIoConfig::default());
    /// io.ns("/", |socket| {
    ///     socket.on_fallback(|_socket, mut event| {
    ///         let _ = event.ack(&serde_json::json!({ "error": format!("unknown event {}", event.name) }));
    ///     });
    /// });
    /// ```
    pub fn on_fallback<F>(&self, handler: F)
    where
        F: Fn(&Socket, Event) + Send + Sync + 'static,
    {
        *self.0.fallback.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(handler));
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

    /// Runs once when the socket disconnects, with the reason; right after
    /// this call when it has disconnected already (a client may leave while
    /// its connect handler still runs).
    pub fn on_disconnect<F>(&self, handler: F)
    where
        F: FnOnce(&Socket, DisconnectReason) + Send + 'static,
    {
        let reason = match &mut *lock(&self.0.on_disconnect) {
            Ok(handlers) => return handlers.push(Box::new(handler)),
            Err(reason) => *reason,
        };
        let socket = self.clone();
        run_soon(move || guarded("a disconnect handler", || handler(&socket, reason)));
    }

    // ---- emitting --------------------------------------------------------

    /// Emits `event` with one JSON argument to this client.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        check_event(event)?;
        let (path, parser) = (&self.0.ns.path, self.0.ns.shared.parser);
        self.emit_event(
            |offset| payload::event(parser, path, None, event, data, offset),
            || super::namespace::remote_data(event, data),
        )
    }

    /// Sends an event to this client. With recovery on it goes through the
    /// namespace, so that it is retained (and given an offset) for this
    /// socket even while it is away (with a cluster store, through the
    /// cluster's stream, described by `data`).
    fn emit_event(
        &self,
        encode: impl Fn(Option<&str>) -> Result<Encoded, serde_json::Error>,
        data: impl FnOnce() -> Result<Payload, serde_json::Error>,
    ) -> Result<(), EmitError> {
        if self.0.ns.shared.recovery_on() {
            return self.0.ns.emit_with(&self.own_room(), encode, data);
        }
        self.send(&encode(None)?)
    }

    /// This socket's own room, on this node only.
    fn own_room(&self) -> BroadcastOptions {
        BroadcastOptions {
            rooms: vec![Room::from(self.0.id.as_str())],
            local: true,
            ..Default::default()
        }
    }

    /// Emits `event` with one JSON argument, waiting for room in the
    /// client's outbound queue when it is full instead of applying the
    /// full-queue policy: backpressure for producers that can slow down.
    ///
    /// `Ok` means the packet is on its way: queued for the client or, with
    /// recovery on, retained for it (a retry would duplicate it). With
    /// recovery on it takes its offset in the same order as every other
    /// emit.
    pub async fn emit_wait<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        check_event(event)?;
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        let (path, parser) = (&self.0.ns.path, self.0.ns.shared.parser);
        if !self.0.ns.shared.recovery_on() {
            let packet = payload::event(parser, path, None, event, data, None)?;
            self.0.ns.shared.check_size(&packet)?;
            return self
                .0
                .session
                .send_all_wait(&packet.0)
                .await
                .map_err(EmitError::from);
        }
        // The offset is only known once the packet takes its turn; wait for
        // room for the packet without it (plus room for the offset), then
        // emit in order.
        let bytes =
            payload::event(parser, path, None, event, data, Some(OFFSET_ROOM))?.frame_bytes();
        self.0.session.wait_room(bytes).await?;
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        self.emit_event(
            |offset| payload::event(parser, path, None, event, data, offset),
            || super::namespace::remote_data(event, data),
        )
    }

    /// Emits `event` with any arguments, binary included.
    pub fn emit_payload(&self, event: &str, payload: &Payload) -> Result<(), EmitError> {
        check_event(event)?;
        let (path, parser) = (&self.0.ns.path, self.0.ns.shared.parser);
        self.emit_event(
            |offset| payload::event_payload(parser, path, None, event, payload, offset),
            || Ok(super::namespace::remote_payload(event, payload)),
        )
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
        let (path, parser) = (&self.0.ns.path, self.0.ns.shared.parser);
        let (id, answer) = self.ask(event, |id| {
            payload::event(parser, path, Some(id), event, data, None)
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
        let (path, parser) = (&self.0.ns.path, self.0.ns.shared.parser);
        let (id, answer) = self.ask(event, |id| {
            payload::event_payload(parser, path, Some(id), event, payload, None)
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
        if let Err(e) = self.send(&packet) {
            // Nobody will answer what was not sent.
            self.forget_ack(id);
            return Err(e.into());
        }
        Ok((id, answer))
    }

    pub(crate) fn expect_ack(&self, id: u64) -> oneshot::Receiver<Payload> {
        let (tx, rx) = oneshot::channel();
        lock(&self.0.acks).insert(id, tx);
        rx
    }

    /// Drops a pending ack whose event could not be sent.
    pub(crate) fn forget_ack(&self, id: u64) {
        lock(&self.0.acks).remove(&id);
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
    /// [`delivery::deliver`]).
    pub(crate) fn send(&self, packet: &Encoded) -> Result<(), EmitError> {
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        self.0.ns.shared.check_size(packet)?;
        delivery::deliver(&self.0.session, packet, false, self.0.ns.shared.full_queue)?;
        if let Some(observer) = self.0.ns.shared.observer.get() {
            observer.sent(self.ns(), std::slice::from_ref(&self.0.id), packet);
        }
        Ok(())
    }

    // ---- rooms -----------------------------------------------------------

    /// Joins a room.
    pub fn join(&self, room: impl Into<Room>) {
        self.join_all(&[room.into()]);
    }

    /// Leaves a room.
    pub fn leave(&self, room: impl Into<Room>) {
        self.leave_all_of(&[room.into()]);
    }

    /// Joins rooms (a server-side join of several sockets comes here).
    pub(crate) fn join_all(&self, rooms: &[Room]) {
        self.0.ns.join(&self.0.id, rooms);
        self.rooms_changed();
    }

    /// Leaves rooms.
    pub(crate) fn leave_all_of(&self, rooms: &[Room]) {
        self.0.ns.leave(&self.0.id, rooms);
        self.rooms_changed();
    }

    /// With recovery in a cluster, the session kept in Redis follows the
    /// socket's rooms: a node that dies leaves it as it was.
    fn rooms_changed(&self) {
        if let Some(cluster) = &self.0.ns.shared.cluster
            && self.connected()
            && let Some(session) = self.snapshot()
        {
            cluster.save_live(&session);
        }
    }

    /// What recovery keeps of this socket; `None` without recovery.
    pub(crate) fn snapshot(&self) -> Option<PersistedSession> {
        let pid = self.0.pid.as_ref()?;
        Some(PersistedSession {
            ns: self.0.ns.path.clone(),
            sid: self.0.id.clone(),
            pid: pid.clone(),
            rooms: self.rooms(),
            data: self.data(),
            extensions: self.0.extensions.snapshot(),
        })
    }

    /// The rooms this socket is in (its own id among them).
    pub fn rooms(&self) -> Vec<Room> {
        self.0.ns.adapter.rooms_of(&self.0.id)
    }

    /// The room a client means by `name`: refused when the name is empty,
    /// too long or shaped like a socket id (every socket's own room, which
    /// carries its private messages), then named by the namespace's
    /// [room policy](super::Namespace::room_policy) (the name itself by
    /// default). For handlers that act on room names from clients.
    pub fn client_room(&self, name: &str) -> Result<Room, JoinError> {
        if name.is_empty() || name.len() > MAX_ROOM_NAME {
            return Err(JoinError::BadName);
        }
        if looks_like_socket_id(name) || self.0.ns.socket(&SocketId::from(name)).is_some() {
            return Err(JoinError::Reserved);
        }
        match self.0.ns.handlers.room_policy() {
            Some(policy) => policy(self, name),
            None => Ok(Room::from(name)),
        }
    }

    /// Joins the room a client asked for ([`client_room`](Self::client_room)),
    /// within [`SocketIoConfig::max_client_rooms`](super::SocketIoConfig::max_client_rooms)
    /// rooms (its own room not counted). Server code that chooses rooms
    /// itself uses [`join`](Self::join), which has no bound.
    pub fn join_client_room(&self, name: &str) -> Result<Room, JoinError> {
        let room = self.client_room(name)?;
        let rooms = self.rooms();
        if !rooms.contains(&room) {
            let max = self.0.ns.shared.max_client_rooms;
            let own = rooms.iter().any(|r| **r == *self.0.id.as_str());
            if rooms.len() - usize::from(own) >= max {
                return Err(JoinError::TooManyRooms(max));
            }
            self.join(room.clone());
        }
        Ok(room)
    }

    /// Leaves the room a client asked to leave ([`client_room`](Self::client_room)).
    pub fn leave_client_room(&self, name: &str) -> Result<Room, JoinError> {
        let room = self.client_room(name)?;
        self.leave(room.clone());
        Ok(room)
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
                // The socket is here: nothing for other nodes.
                local: true,
                ..Default::default()
            },
        )
    }

    // ---- leaving ---------------------------------------------------------

    /// Disconnects this socket from its namespace; the client's other
    /// namespaces and its connection stay up.
    ///
    /// The socket leaves at once; its disconnect handlers run right after
    /// this call returns, not inside it.
    pub fn disconnect(&self) {
        if self.connected() {
            let packet = payload::control(
                self.0.ns.shared.parser,
                PacketType::Disconnect,
                &self.0.ns.path,
                None,
            );
            let _ = delivery::deliver(&self.0.session, &packet, false, FullQueue::Close);
            if let Some(handlers) =
                self.leave_namespace(DisconnectReason::ServerNamespaceDisconnect)
            {
                let socket = self.clone();
                run_soon(move || {
                    socket.run_disconnect_handlers(
                        handlers,
                        DisconnectReason::ServerNamespaceDisconnect,
                    )
                });
            }
        }
    }

    /// Closes the client's whole connection (all its namespaces) after
    /// flushing what is queued. socket.io clients see "transport close" and
    /// reconnect.
    pub fn close_connection(&self) {
        self.0.session.close();
    }

    /// The socket leaves its namespace (rooms, pending acks) and its
    /// disconnect handlers run, on the caller's path: the client's own
    /// (its transport, or the close notification of its session).
    pub(crate) fn closed(&self, reason: DisconnectReason) {
        if let Some(handlers) = self.leave_namespace(reason) {
            self.run_disconnect_handlers(handlers, reason);
        }
    }

    /// The state change of a disconnect, once: the handlers to run are
    /// handed back, `None` when the socket had already left.
    fn leave_namespace(&self, reason: DisconnectReason) -> Option<Vec<DisconnectHandler>> {
        if !self.0.connected.swap(false, Ordering::AcqRel) {
            return None;
        }
        tracing::debug!(id = %self.0.id, ns = %self.0.ns.path, %reason, "socket disconnected");
        self.persist(reason);
        self.0.ns.remove(self);
        // Dropping the senders tells pending ack waiters.
        lock(&self.0.acks).clear();
        // Packets that arrived before the connect handler finished are not
        // for anyone now.
        *lock(&self.0.held) = None;
        if let Some(observer) = self.0.ns.shared.observer.get() {
            observer.disconnected(self, reason);
        }
        let handlers = std::mem::replace(&mut *lock(&self.0.on_disconnect), Err(reason));
        Some(handlers.unwrap_or_default())
    }

    fn run_disconnect_handlers(&self, handlers: Vec<DisconnectHandler>, reason: DisconnectReason) {
        for h in handlers {
            guarded("a disconnect handler", || h(self, reason));
        }
        self.0
            .handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        // Handlers often hold what serves the socket (a queue's sender):
        // dropping them lets it end.
        *self.0.fallback.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// A socket that joined a client already closing: it leaves at once,
    /// without handlers (its connect handler never ran).
    pub(crate) fn discard(&self) {
        let _ = self.leave_namespace(DisconnectReason::TransportClose);
    }

    /// Keeps the socket's state for recovery when the connection was lost
    /// (not when either side left the namespace on purpose).
    fn persist(&self, reason: DisconnectReason) {
        let recoverable = !matches!(
            reason,
            DisconnectReason::ClientNamespaceDisconnect
                | DisconnectReason::ServerNamespaceDisconnect
                | DisconnectReason::ParseError
        );
        if !recoverable {
            if let (Some(cluster), Some(pid)) = (&self.0.ns.shared.cluster, &self.0.pid) {
                cluster.forget(pid);
            }
            return;
        }
        let Some(session) = self.snapshot() else {
            return;
        };
        if let Some(store) = &self.0.ns.shared.store {
            store.persist(session);
        } else if let Some(cluster) = &self.0.ns.shared.cluster {
            cluster.save_disconnected(&session);
        }
    }

    /// Gives a recovered socket its rooms and data back.
    pub(crate) fn restore(&self, session: &PersistedSession) {
        self.0.ns.join(&self.0.id, &session.rooms);
        *lock(&self.0.data) = session.data.clone();
        self.0.extensions.replace(session.extensions.clone());
    }

    /// Gives the socket the data and rooms its connect middlewares chose
    /// ([`Handshake::set_socket_data`], [`Handshake::join_socket`]).
    pub(crate) fn start(&self) {
        let start = self.0.handshake.start();
        if let Some(data) = start.data {
            // Before the socket is announced: no change to tell of.
            *lock(&self.0.data) = data;
        }
        if !start.rooms.is_empty() {
            self.0.ns.join(&self.0.id, &start.rooms);
        }
    }

    // ---- incoming ------------------------------------------------------

    /// Dispatches an EVENT or ACK for this socket, in order.
    pub(crate) fn on_packet(&self, packet: Packet) {
        let overflow = {
            let mut held = lock(&self.0.held);
            match held.as_mut() {
                Some(held) if held.len() >= MAX_HELD => true,
                Some(held) => {
                    held.push(packet);
                    return;
                }
                None => false,
            }
        };
        if overflow {
            tracing::warn!(id = %self.0.id, "more than {MAX_HELD} packets before the connect handler finished: closing the connection");
            self.0
                .session
                .close_now(crate::engine::CloseReason::ParseError);
            return;
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
        if let Some(observer) = self.0.ns.shared.observer.get() {
            let mut data = Vec::with_capacity(args.len() + 1);
            data.push(serde_json::Value::String(name.clone()));
            data.extend(args.iter().cloned());
            let data = Payload {
                args: data,
                bins: packet.attachments.clone(),
            };
            observer.received(self, &data);
        }
        let handler = self
            .0
            .handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .cloned()
            .or_else(|| {
                self.0
                    .fallback
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            });
        let Some(handler) = handler else {
            tracing::trace!(event = %name, "no handler");
            return;
        };
        let what = format!("the handler of event {name:?}");
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
        guarded(&what, || handler(self, event));
    }
}

/// Packets a socket holds while its connect handler runs (a handler that
/// never returns, or a client that floods its first moments, is closed).
const MAX_HELD: usize = 1024;

/// Room left in an encoded packet for a recovery offset (its longest form).
const OFFSET_ROOM: &str = "ffffffffffff-18446744073709551615";

/// Runs `f` right after the caller's call rather than inside it: on the
/// tokio runtime when there is one, else at once.
fn run_soon(f: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async move { f() });
        }
        Err(_) => f(),
    }
}

/// Runs application code so that a panic in it is logged and contained:
/// it does not take the connection's task (and every other socket of the
/// client) down with it.
pub(crate) fn guarded(what: &str, f: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        tracing::error!(%message, "{what} panicked; fix the handler (the socket stays connected)");
    }
}

/// Whether `name` has the shape of a socket id (ours, or a protocol 4
/// `<namespace>#<id>`).
fn looks_like_socket_id(name: &str) -> bool {
    let id = name.rsplit_once('#').map_or(name, |(_, id)| id);
    crate::engine::Sid::parse(id).is_some()
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
