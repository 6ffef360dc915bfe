//! One engine.io session seen by the socket.io layer: it decodes packets,
//! joins namespaces and routes packets to the sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use super::IoInner;
use super::config::FullQueue;
use super::handshake::Handshake;
use super::namespace::{ConnectError, NamespaceInner};
use super::packet::{self, Decoded, Packet, PacketType, PartialPacket};
use super::payload::{self, Encoded};
use super::reason::DisconnectReason;
use super::recovery::Restored;
use super::socket::{Socket, SocketId};
use crate::engine::{CloseReason, Message, Protocol, Session, Sid};

pub(crate) struct Client {
    session: Session,
    /// engine.io v3 sessions speak socket.io protocol 4 (socket.io-client
    /// 2.x), v4 sessions protocol 5.
    protocol: Protocol,
    /// Connected (and connecting: `None`) namespaces.
    sockets: Mutex<HashMap<String, Option<Socket>>>,
    /// A binary packet waiting for its attachments.
    partial: Mutex<Option<PartialPacket>>,
    pub(crate) joined_once: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    pub(crate) fn new(session: Session) -> Arc<Self> {
        Arc::new(Client {
            protocol: session.protocol(),
            session,
            sockets: Mutex::new(HashMap::new()),
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
        let limits = io.limits;
        let packet = if let Some(text) = message.as_text() {
            if lock(&self.partial).is_some() {
                return self.violation("text packet while attachments were expected");
            }
            match packet::decode(text, &limits) {
                Ok(Decoded::Complete(p)) => p,
                Ok(Decoded::Partial(partial)) => {
                    *lock(&self.partial) = Some(partial);
                    return;
                }
                Err(e) => return self.violation(&e.to_string()),
            }
        } else {
            let bin = message.as_binary().cloned().unwrap_or_default();
            let mut partial = lock(&self.partial);
            let Some(waiting) = partial.as_mut() else {
                drop(partial);
                return self.violation("unexpected binary message");
            };
            match waiting.push(bin, &limits) {
                Ok(Some(p)) => {
                    *partial = None;
                    p
                }
                Ok(None) => return,
                Err(e) => {
                    drop(partial);
                    return self.violation(&e.to_string());
                }
            }
        };
        self.dispatch(io, packet);
    }

    fn dispatch(self: &Arc<Self>, io: &Arc<IoInner>, packet: Packet) {
        if packet.ty == PacketType::Connect {
            return self.connect(io, packet.nsp, packet.data);
        }
        let entry = lock(&self.sockets).get(&packet.nsp).cloned();
        let socket = match entry {
            Some(Some(s)) if s.connected() => s,
            _ => return self.violation("packet for a namespace that is not connected"),
        };
        match packet.ty {
            PacketType::Disconnect => {
                lock(&self.sockets).remove(&packet.nsp);
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
        let mut sockets = lock(&self.sockets);
        // A namespace the server disconnected may be joined again.
        if let Some(existing) = sockets.get(&nsp)
            && existing.as_ref().is_none_or(Socket::connected)
        {
            drop(sockets);
            return self.violation("second CONNECT for a namespace");
        }
        let joined = sockets
            .values()
            .filter(|s| s.as_ref().is_none_or(Socket::connected))
            .count();
        if joined >= io.config.max_namespaces {
            drop(sockets);
            return self.refuse(&nsp, &ConnectError::new("Too many namespaces"));
        }
        let Some(ns) = io.namespace_for(&nsp).filter(|ns| !ns.is_closed()) else {
            drop(sockets);
            return self.refuse(&nsp, &ConnectError::new("Invalid namespace"));
        };
        sockets.insert(nsp.clone(), None);
        drop(sockets);
        let restored = self.try_restore(&ns, &auth);
        let handshake = Arc::new(Handshake::new(self.session.request(), auth));
        let skip = restored.is_some()
            && io
                .config
                .recovery
                .as_ref()
                .is_some_and(|r| r.skip_middlewares);
        let middlewares = if skip {
            Vec::new()
        } else {
            ns.handlers.middlewares()
        };
        if middlewares.is_empty() {
            // The common case stays on this task, in packet order.
            return self.join(io, ns, handshake, restored);
        }
        let client = self.clone();
        let io = io.clone();
        tokio::spawn(async move {
            for m in middlewares {
                if let Err(err) = m(handshake.clone()).await {
                    lock(&client.sockets).remove(&nsp);
                    client.refuse(&nsp, &err);
                    return;
                }
            }
            client.join(&io, ns, handshake, restored);
        });
    }

    /// A protocol 5 client that presents `pid` and `offset` asks to get
    /// its previous socket back.
    fn try_restore(&self, ns: &NamespaceInner, auth: &Value) -> Option<Restored> {
        let store = ns.shared.store.as_ref()?;
        if self.protocol != Protocol::V4 {
            return None;
        }
        let pid = auth.get("pid")?.as_str()?;
        let offset = auth.get("offset")?.as_str()?;
        let restored = store.restore(&ns.path, pid, offset);
        // A socket with that id must not still be connected (a client
        // cannot be in two places at once).
        let restored = restored.filter(|r| ns.socket(&r.session.sid).is_none());
        tracing::debug!(ns = %ns.path, recovered = restored.is_some(), "recovery requested");
        restored
    }

    /// Refuses a namespace connection: CONNECT_ERROR with message and data
    /// (protocol 5), or ERROR with the data or, lacking it, the message
    /// (protocol 4).
    fn refuse(&self, nsp: &str, err: &ConnectError) {
        let data = match self.protocol {
            Protocol::V4 => err.to_json(),
            Protocol::V3 => err
                .data
                .clone()
                .unwrap_or_else(|| Value::String(err.message.clone())),
        };
        self.send_control(PacketType::ConnectError, nsp, Some(&data));
    }

    /// The namespace accepted the connection (recovering a previous socket
    /// when `restored`).
    fn join(
        &self,
        io: &Arc<IoInner>,
        ns: Arc<NamespaceInner>,
        handshake: Arc<Handshake>,
        restored: Option<Restored>,
    ) {
        if self.session.is_closed() {
            return;
        }
        let fresh_pid = || {
            Sid::generate(io.node_id)
                .ok()
                .map(|p| p.as_str().to_owned())
        };
        let (id, pid) = match &restored {
            Some(r) => (r.session.sid.clone(), Some(r.session.pid.clone())),
            None => match self.fresh_id(io, &ns) {
                Some(id) => {
                    let with_recovery = ns.shared.store.is_some() && self.protocol == Protocol::V4;
                    (id, if with_recovery { fresh_pid() } else { None })
                }
                None => return self.session.close_now(CloseReason::TransportError),
            },
        };
        let socket = Socket::new(
            id.clone(),
            ns.clone(),
            self.session.clone(),
            handshake,
            pid.clone(),
            restored.is_some(),
        );
        ns.add(&socket);
        if let Some(r) = &restored {
            socket.restore(&r.session);
        }
        lock(&self.sockets).insert(ns.path.clone(), Some(socket.clone()));
        self.joined_once.store(true, Ordering::Release);
        let answer = match self.protocol {
            Protocol::V4 => Some(match &pid {
                Some(pid) => serde_json::json!({ "sid": id.as_str(), "pid": pid }),
                None => serde_json::json!({ "sid": id.as_str() }),
            }),
            Protocol::V3 => None,
        };
        self.send_control(PacketType::Connect, &ns.path, answer.as_ref());
        // What the socket missed, in order, with the offsets it had.
        for packet in restored.into_iter().flat_map(|r| r.missed) {
            let _ = super::adapter::deliver(
                &self.session,
                &Encoded(packet),
                false,
                ns.shared.full_queue,
            );
        }
        (ns.handlers.on_connect)(socket.clone());
        socket.ready();
    }

    fn fresh_id(&self, io: &IoInner, ns: &NamespaceInner) -> Option<SocketId> {
        Some(match self.protocol {
            Protocol::V4 => match Sid::generate(io.node_id) {
                Ok(id) => SocketId::from(id.as_str()),
                Err(e) => {
                    tracing::error!(error = %e, "no randomness for a socket id");
                    return None;
                }
            },
            // What protocol 4 clients compute on their side.
            Protocol::V3 if ns.path == "/" => SocketId::from(self.session.sid().as_str()),
            Protocol::V3 => SocketId::from(format!("{}#{}", ns.path, self.session.sid())),
        })
    }

    fn send_control(&self, ty: PacketType, nsp: &str, data: Option<&Value>) {
        let packet = payload::control(ty, nsp, data);
        let _ = super::adapter::deliver(&self.session, &packet, false, FullQueue::Close);
    }

    /// The engine session closed: every socket leaves with the reason.
    pub(crate) fn on_close(&self, reason: CloseReason) {
        let sockets: Vec<Socket> = lock(&self.sockets).drain().filter_map(|(_, s)| s).collect();
        for socket in sockets {
            socket.closed(reason.into());
        }
        *lock(&self.partial) = None;
    }

    pub(crate) fn session(&self) -> &Session {
        &self.session
    }
}
