//! One engine.io session seen by the socket.io layer: it decodes packets,
//! joins namespaces and routes packets to the sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use super::IoInner;
use super::config::{FullQueue, Parser};
use super::handshake::Handshake;
use super::msgpack;
use super::namespace::{ConnectError, Joining, NamespaceInner};
use super::packet::{self, Decoded, Packet, PacketType, PartialPacket};
use super::payload;
use super::reason::DisconnectReason;
use super::recovery::PersistedSession;
use super::socket::{Socket, SocketId};
use crate::engine::{CloseReason, Message, Protocol, SendError, Session, Sid};

pub(crate) struct Client {
    session: Session,
    /// engine.io v3 sessions speak socket.io protocol 4 (socket.io-client
    /// 2.x), v4 sessions protocol 5.
    protocol: Protocol,
    /// The server's parser: how packets are decoded and encoded.
    parser: Parser,
    sockets: Mutex<Sockets>,
    /// A binary packet waiting for its attachments.
    partial: Mutex<Option<PartialPacket>>,
    pub(crate) joined_once: AtomicBool,
}

/// The client's namespaces, and whether it has closed: both under one lock,
/// so that no socket can join a client after its close took the sockets.
#[derive(Default)]
struct Sockets {
    /// Connected (and connecting: `None`) namespaces.
    by_ns: HashMap<String, Option<Socket>>,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A recovery the client asked for, with the session it names.
struct Recovery {
    session: PersistedSession,
    offset: String,
}

impl Client {
    pub(crate) fn new(session: Session, parser: Parser) -> Arc<Self> {
        Arc::new(Client {
            protocol: session.protocol(),
            parser,
            session,
            sockets: Mutex::new(Sockets::default()),
            partial: Mutex::new(None),
            joined_once: AtomicBool::new(false),
        })
    }

    /// A protocol violation: the whole connection closes.
    fn violation(&self, what: &str) {
        tracing::debug!(sid = %self.session.sid(), what, "socket.io protocol violation");
        self.session.close_now(CloseReason::ParseError);
    }

    pub(crate) fn on_message(self: &Arc<Self>, io: &Arc<IoInner>, message: Message) {
        let packet = match self.parser {
            Parser::Json => match self.decode_json(&io.limits, message) {
                Some(packet) => packet,
                None => return,
            },
            Parser::Msgpack => {
                let Some(bin) = message.as_binary() else {
                    return self.parser_mismatch(&message);
                };
                match msgpack::decode(bin, &io.msgpack_limits) {
                    Ok(packet) => packet,
                    Err(e) => return self.violation(&e.to_string()),
                }
            }
        };
        self.dispatch(io, packet);
    }

    /// A text packet, or the binary attachments it announced: the packet
    /// once it is whole.
    fn decode_json(&self, limits: &packet::Limits, message: Message) -> Option<Packet> {
        if let Some(text) = message.as_text() {
            if lock(&self.partial).is_some() {
                self.violation("text packet while attachments were expected");
                return None;
            }
            return match packet::decode(text, limits) {
                Ok(Decoded::Complete(p)) => Some(p),
                Ok(Decoded::Partial(partial)) => {
                    *lock(&self.partial) = Some(partial);
                    None
                }
                Err(e) => {
                    self.violation(&e.to_string());
                    None
                }
            };
        }
        let bin = message
            .as_binary()
            .cloned()
            .expect("an engine message is text or binary");
        let mut partial = lock(&self.partial);
        let Some(waiting) = partial.as_mut() else {
            drop(partial);
            self.parser_mismatch(&message);
            return None;
        };
        match waiting.push(bin, limits) {
            Ok(Some(p)) => {
                *partial = None;
                Some(p)
            }
            Ok(None) => None,
            Err(e) => {
                drop(partial);
                self.violation(&e.to_string());
                None
            }
        }
    }

    /// A message in the other parser's encoding (a text packet on a
    /// msgpack server, a binary message no packet announced on a JSON
    /// one): most likely a client built with the wrong parser, which
    /// cannot be negotiated. The connection closes; when the message is a
    /// CONNECT, the client first gets a CONNECT_ERROR in its own encoding,
    /// so that it fails with a message it can read instead of reconnecting
    /// in a loop.
    fn parser_mismatch(&self, message: &Message) {
        let theirs = match self.parser {
            Parser::Json => Parser::Msgpack,
            Parser::Msgpack => Parser::Json,
        };
        let name = |p: Parser| match p {
            Parser::Json => "JSON",
            Parser::Msgpack => "msgpack",
        };
        tracing::warn!(
            sid = %self.session.sid(),
            "a client sent a {} packet to a server configured for the {} parser: closing its connection (the client must use the server's parser)",
            name(theirs),
            name(self.parser),
        );
        let connect = match (message.as_text(), message.as_binary()) {
            (Some(text), _) => match packet::decode(text, &packet::Limits::default()) {
                Ok(Decoded::Complete(p)) => Some(p),
                _ => None,
            },
            (None, Some(bin)) => msgpack::decode(bin, &msgpack::Limits::default()).ok(),
            (None, None) => None,
        }
        .filter(|p| p.ty == PacketType::Connect && self.protocol == Protocol::V4);
        let Some(connect) = connect else {
            return self.session.close_now(CloseReason::ParseError);
        };
        let message = format!(
            "this server uses the socket.io {} parser, not {}",
            name(self.parser),
            name(theirs)
        );
        let data = serde_json::json!({ "message": message });
        let answer = payload::control(theirs, PacketType::ConnectError, &connect.nsp, Some(&data));
        let _ = super::delivery::deliver(&self.session, &answer, false, FullQueue::Close);
        // After the answer is flushed.
        self.session.close();
    }

    fn dispatch(self: &Arc<Self>, io: &Arc<IoInner>, packet: Packet) {
        if packet.ty == PacketType::Connect {
            return self.connect(io, packet.nsp, packet.data);
        }
        let entry = lock(&self.sockets).by_ns.get(&packet.nsp).cloned();
        let socket = match entry {
            Some(Some(s)) if s.connected() => s,
            _ => return self.violation("packet for a namespace that is not connected"),
        };
        match packet.ty {
            PacketType::Disconnect => {
                lock(&self.sockets).by_ns.remove(&packet.nsp);
                socket.closed(DisconnectReason::ClientNamespaceDisconnect);
            }
            PacketType::ConnectError => self.violation("CONNECT_ERROR from a client"),
            _ => socket.on_packet(packet),
        }
    }

    pub(crate) fn connect(self: &Arc<Self>, io: &Arc<IoInner>, nsp: String, data: Option<Value>) {
        // Protocol 4 clients put their namespace options in a query string
        // (`/admin?token=x`); like the reference server, it becomes `auth`.
        let (nsp, auth) = match self.protocol {
            Protocol::V4 => (
                nsp,
                data.unwrap_or_else(|| Value::Object(Default::default())),
            ),
            Protocol::V3 => match nsp.split_once('?') {
                Some((path, query)) => {
                    let pairs = form_urlencoded::parse(query.as_bytes())
                        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                        .collect();
                    (path.to_owned(), Value::Object(pairs))
                }
                None => (nsp, Value::Object(Default::default())),
            },
        };
        {
            let mut sockets = lock(&self.sockets);
            if sockets.closed {
                return;
            }
            // A namespace the server disconnected may be joined again.
            if let Some(existing) = sockets.by_ns.get(&nsp)
                && existing.as_ref().is_none_or(Socket::connected)
            {
                drop(sockets);
                return self.violation("second CONNECT for a namespace");
            }
            let joined = sockets
                .by_ns
                .values()
                .filter(|s| s.as_ref().is_none_or(Socket::connected))
                .count();
            if joined >= io.config.max_namespaces {
                drop(sockets);
                return self.refuse(&nsp, &ConnectError::new("Too many namespaces"));
            }
            sockets.by_ns.insert(nsp.clone(), None);
        }
        // Outside the client's lock: a dynamic namespace's adapter is built
        // by application code.
        let Some(joining) = io.namespace_for(&nsp).filter(|j| !j.ns().is_closed()) else {
            lock(&self.sockets).by_ns.remove(&nsp);
            return self.refuse(&nsp, &ConnectError::new("Invalid namespace"));
        };
        if let Some(cluster) = joining.ns().shared.cluster.clone()
            && self.protocol == Protocol::V4
            && let Some((pid, offset)) = recovery_auth(&auth)
        {
            let handshake = Arc::new(Handshake::new(self.session.request(), auth));
            let client = self.clone();
            let io = io.clone();
            tokio::spawn(async move {
                client
                    .connect_recovering(&io, joining, handshake, cluster, pid, offset)
                    .await;
            });
            return;
        }
        let recovery = self.recovery_request(joining.ns(), &auth);
        let handshake = Arc::new(Handshake::new(self.session.request(), auth));
        let skip = recovery.is_some()
            && io
                .config
                .recovery
                .as_ref()
                .is_some_and(|r| r.skip_middlewares);
        let middlewares = if skip {
            Vec::new()
        } else {
            joining.ns().handlers.middlewares()
        };
        if middlewares.is_empty() {
            // The common case stays on this task, in packet order.
            return self.join(io, joining, handshake, recovery);
        }
        let client = self.clone();
        let io = io.clone();
        tokio::spawn(async move {
            for m in middlewares {
                if let Err(err) = m(handshake.clone()).await {
                    lock(&client.sockets).by_ns.remove(&nsp);
                    client.refuse(&nsp, &err);
                    return;
                }
            }
            client.join(&io, joining, handshake, recovery);
        });
    }

    /// A protocol 5 client that presents `pid` and `offset` asks to get
    /// its previous socket back: its session, when the store still has it.
    fn recovery_request(&self, ns: &NamespaceInner, auth: &Value) -> Option<Recovery> {
        let store = ns.shared.store.as_ref()?;
        if self.protocol != Protocol::V4 {
            return None;
        }
        let (pid, offset) = recovery_auth(auth)?;
        let session = store.take(&ns.path, &pid);
        // A socket with that id must not still be connected (a client
        // cannot be in two places at once).
        let session = session.filter(|s| ns.socket(&s.sid).is_none());
        tracing::debug!(ns = %ns.path, known = session.is_some(), "recovery requested");
        if session.is_none() {
            ns.shared.counters.recovery(false);
        }
        Some(Recovery {
            session: session?,
            offset,
        })
    }

    /// Refuses a namespace connection: CONNECT_ERROR with message and data
    /// (protocol 5), or ERROR with the data or, lacking it, the message
    /// (protocol 4). An error that [closes the
    /// connection](ConnectError::closes_connection) closes it instead.
    fn refuse(&self, nsp: &str, err: &ConnectError) {
        if err.closes_connection() {
            tracing::debug!(sid = %self.session.sid(), ns = nsp, reason = %err.message, "connection closed by a connect middleware");
            // After what is queued (other namespaces' packets) is flushed;
            // the client sees a closed transport and reconnects.
            self.session.close();
            return;
        }
        let data = match self.protocol {
            Protocol::V4 => err.to_json(),
            Protocol::V3 => err
                .data
                .clone()
                .unwrap_or_else(|| Value::String(err.message.clone())),
        };
        self.send_control(PacketType::ConnectError, nsp, Some(&data));
    }

    /// The namespace accepted the connection: recover the previous socket
    /// when asked and complete, or make a new one.
    fn join(
        &self,
        io: &Arc<IoInner>,
        joining: Joining,
        handshake: Arc<Handshake>,
        recovery: Option<Recovery>,
    ) {
        let ns = joining.ns().clone();
        let joined = recovery.map(|r| self.recover(&ns, &handshake, r));
        if let Some(outcome) = &joined {
            ns.shared
                .counters
                .recovery(matches!(outcome, Joined::Yes(_)));
        }
        let socket = match joined {
            Some(Joined::Yes(socket)) => socket,
            Some(Joined::Gone) => return,
            Some(Joined::No) | None => {
                let Some(socket) = self.fresh_socket(io, &ns, handshake) else {
                    return self.session.close_now(CloseReason::TransportError);
                };
                // Its rooms before it is registered: a close racing with
                // the registration removes them with the socket.
                socket.start();
                let answer = self.connect_answer(&socket);
                if !self.register(&ns, &socket) {
                    return;
                }
                self.send_control(PacketType::Connect, &ns.path, answer.as_ref());
                socket
            }
        };
        self.joined(joining, socket);
    }

    /// The socket is in: its connect handler runs, then what arrived
    /// meanwhile is dispatched.
    fn joined(&self, joining: Joining, socket: Socket) {
        let ns = joining.ns().clone();
        if let Some(cluster) = &ns.shared.cluster
            && let Some(session) = socket.snapshot()
        {
            cluster.save_live(&session);
        }
        // Counted as joined before the guard lets the namespace go.
        drop(joining);
        self.joined_once.store(true, Ordering::Release);
        if let Some(observer) = ns.shared.observer.get() {
            observer.connected(&socket);
        }
        // The handler may panic; the socket then still dispatches what
        // arrived meanwhile, and later packets, as if it had returned.
        let handler = ns.handlers.on_connect.clone();
        super::socket::guarded("a connect handler", || handler(socket.clone()));
        socket.ready();
    }

    /// Recovers the socket of `r`: its id, rooms and data, and every packet
    /// it missed, queued with the CONNECT answer in one piece, in order
    /// with every live packet. Anything less is not a recovery: the client
    /// then gets a new socket.
    fn recover(&self, ns: &Arc<NamespaceInner>, handshake: &Arc<Handshake>, r: Recovery) -> Joined {
        let Some(store) = ns.shared.store.clone() else {
            return Joined::No;
        };
        ns.in_delivery_order(|| {
            let room = ns
                .shared
                .max_queue_bytes
                .saturating_sub(self.session.held_bytes());
            match store.missed(&r.session, &r.offset, room) {
                Ok(missed) => self.recover_found(ns, handshake, &r.session, missed),
                Err(e) => {
                    tracing::debug!(ns = %ns.path, error = %e, "not recovered");
                    Joined::No
                }
            }
        })
    }

    /// Brings `session` back with the packets it `missed`: the CONNECT
    /// answer and the missed packets are queued in one piece, then the
    /// socket joins with its rooms and data. The caller makes sure no live
    /// packet is delivered meanwhile.
    fn recover_found(
        &self,
        ns: &Arc<NamespaceInner>,
        handshake: &Arc<Handshake>,
        session: &PersistedSession,
        missed: Vec<Vec<Message>>,
    ) -> Joined {
        // A socket with that id must not still be connected here (a
        // client cannot be in two places at once).
        if ns.socket(&session.sid).is_some() {
            return Joined::No;
        }
        let socket = Socket::new(
            session.sid.clone(),
            ns.clone(),
            self.session.clone(),
            handshake.clone(),
            Some(session.pid.clone()),
            true,
        );
        let answer = self.connect_answer(&socket);
        let mut messages = payload::control(
            ns.shared.parser,
            PacketType::Connect,
            &ns.path,
            answer.as_ref(),
        )
        .0;
        messages.extend(missed.into_iter().flatten());
        match self.session.send_all(&messages) {
            Ok(()) => {}
            Err(SendError::Closed) => return Joined::Gone,
            Err(e) => {
                tracing::debug!(ns = %ns.path, error = %e, "not recovered: the missed packets do not fit");
                return Joined::No;
            }
        }
        if !self.register(ns, &socket) {
            return Joined::Gone;
        }
        socket.restore(session);
        socket.start();
        Joined::Yes(socket)
    }

    /// A connection to a namespace whose sessions live in the cluster's
    /// store, from a client that asks for its previous socket: the session
    /// and the packets it missed come from Redis, whatever node had it.
    /// Middlewares run first unless recovery skips them; without a session
    /// to recover, the client gets a new socket as usual.
    async fn connect_recovering(
        self: Arc<Self>,
        io: &Arc<IoInner>,
        joining: Joining,
        handshake: Arc<Handshake>,
        cluster: crate::cluster::ClusterStore,
        pid: String,
        offset: String,
    ) {
        let ns = joining.ns().clone();
        let skip = io
            .config
            .recovery
            .as_ref()
            .is_some_and(|r| r.skip_middlewares);
        if !skip && !self.passes_middlewares(&ns, &handshake).await {
            return;
        }
        let joined = cluster
            .recover(&ns.path, &pid, &offset, |found| {
                let Some((session, missed)) = found else {
                    return Joined::No;
                };
                let room = ns.shared.max_queue_bytes.saturating_sub(self.session.held_bytes());
                let mut bytes = 0usize;
                let mut packets = Vec::with_capacity(missed.len());
                for m in missed {
                    let Some((event, args)) = m.data.args.split_first() else {
                        continue;
                    };
                    let args = super::Payload {
                        args: args.to_vec(),
                        bins: m.data.bins.clone(),
                    };
                    let Some(event) = event.as_str() else { continue };
                    let Ok(packet) =
                        payload::event_payload(ns.shared.parser, &ns.path, None, event, &args, Some(&m.offset))
                    else {
                        continue;
                    };
                    bytes += packet.frame_bytes();
                    if bytes > room {
                        tracing::debug!(ns = %ns.path, "not recovered: the missed packets do not fit");
                        return Joined::No;
                    }
                    packets.push(packet.0);
                }
                self.recover_found(&ns, &handshake, &session, packets)
            })
            .await;
        let recovered = matches!(joined, Joined::Yes(_));
        cluster.count_recovery(recovered);
        ns.shared.counters.recovery(recovered);
        tracing::debug!(ns = %ns.path, recovered, "a client asked to recover its socket");
        match joined {
            Joined::Yes(socket) => self.joined(joining, socket),
            Joined::Gone => {}
            Joined::No => {
                if skip && !self.passes_middlewares(&ns, &handshake).await {
                    return;
                }
                self.join(io, joining, handshake, None);
            }
        }
    }

    /// Runs the namespace's middlewares; a refusal is answered (and false).
    async fn passes_middlewares(&self, ns: &NamespaceInner, handshake: &Arc<Handshake>) -> bool {
        for m in ns.handlers.middlewares() {
            if let Err(err) = m(handshake.clone()).await {
                lock(&self.sockets).by_ns.remove(&ns.path);
                self.refuse(&ns.path, &err);
                return false;
            }
        }
        true
    }

    /// Makes `socket` the client's socket in `ns` and a member of the
    /// namespace, unless the client closed first (false then). A close
    /// that races with this takes the socket out again.
    fn register(&self, ns: &Arc<NamespaceInner>, socket: &Socket) -> bool {
        {
            let mut sockets = lock(&self.sockets);
            if sockets.closed {
                drop(sockets);
                socket.discard();
                return false;
            }
            sockets.by_ns.insert(ns.path.clone(), Some(socket.clone()));
        }
        ns.add(socket);
        // The close took the socket from the map after we put it there and
        // may have left the namespace before we joined it.
        if !socket.connected() {
            ns.remove(socket);
        }
        true
    }

    fn connect_answer(&self, socket: &Socket) -> Option<Value> {
        match self.protocol {
            Protocol::V4 => Some(match socket.pid() {
                Some(pid) => serde_json::json!({ "sid": socket.id().as_str(), "pid": pid }),
                None => serde_json::json!({ "sid": socket.id().as_str() }),
            }),
            Protocol::V3 => None,
        }
    }

    fn fresh_socket(
        &self,
        io: &IoInner,
        ns: &Arc<NamespaceInner>,
        handshake: Arc<Handshake>,
    ) -> Option<Socket> {
        let random = || match Sid::generate(io.node_id) {
            Ok(id) => Some(id.as_str().to_owned()),
            Err(e) => {
                tracing::error!(error = %e, "no randomness for a socket id");
                None
            }
        };
        // Protocol 4 clients compute an id of their own from the engine
        // session id, but the server never uses or shows that one: the
        // engine sid lets whoever knows it poll the session.
        let id = SocketId::from(random()?);
        let with_recovery = ns.shared.recovery_on() && self.protocol == Protocol::V4;
        let pid = if with_recovery { Some(random()?) } else { None };
        Some(Socket::new(
            id,
            ns.clone(),
            self.session.clone(),
            handshake,
            pid,
            false,
        ))
    }

    fn send_control(&self, ty: PacketType, nsp: &str, data: Option<&Value>) {
        let packet = payload::control(self.parser, ty, nsp, data);
        let _ = super::delivery::deliver(&self.session, &packet, false, FullQueue::Close);
    }

    /// The engine session closed: every socket leaves with the reason, and
    /// none can join afterwards.
    pub(crate) fn on_close(&self, reason: CloseReason) {
        let sockets: Vec<Socket> = {
            let mut sockets = lock(&self.sockets);
            sockets.closed = true;
            sockets.by_ns.drain().filter_map(|(_, s)| s).collect()
        };
        for socket in sockets {
            socket.closed(reason.into());
        }
        *lock(&self.partial) = None;
    }

    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    /// The client's sockets, one per namespace it joined.
    pub(crate) fn sockets(&self) -> Vec<Socket> {
        lock(&self.sockets)
            .by_ns
            .values()
            .flatten()
            .cloned()
            .collect()
    }
}

/// The private session id and last offset a protocol 5 client presents
/// to get its previous socket back.
fn recovery_auth(auth: &Value) -> Option<(String, String)> {
    let pid = auth.get("pid")?.as_str()?;
    let offset = auth.get("offset")?.as_str()?;
    Some((pid.to_owned(), offset.to_owned()))
}

/// How a recovery ended.
enum Joined {
    /// Recovered: the socket is in.
    Yes(Socket),
    /// Not recoverable: the client gets a new socket.
    No,
    /// The client closed meanwhile.
    Gone,
}
