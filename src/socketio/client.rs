//! One engine.io session seen by the socket.io layer: it decodes packets,
//! joins namespaces and routes packets to the sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use super::IoInner;
use super::handshake::Handshake;
use super::namespace::{ConnectError, NamespaceInner};
use super::packet::{self, Decoded, Packet, PacketType, PartialPacket};
use super::payload;
use super::reason::DisconnectReason;
use super::socket::Socket;
use crate::engine::{CloseReason, Message, Session, Sid};

pub(crate) struct Client {
    session: Session,
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

    fn connect(self: &Arc<Self>, io: &Arc<IoInner>, nsp: String, auth: Option<Value>) {
        {
            let mut sockets = lock(&self.sockets);
            // A namespace the server disconnected may be joined again.
            if let Some(existing) = sockets.get(&nsp) {
                if existing.as_ref().is_none_or(Socket::connected) {
                    drop(sockets);
                    return self.violation("second CONNECT for a namespace");
                }
            }
            let Some(ns) = io.namespace_for(&nsp) else {
                drop(sockets);
                let err = ConnectError::new("Invalid namespace").to_json();
                self.send_control(PacketType::ConnectError, &nsp, Some(&err));
                return;
            };
            sockets.insert(nsp.clone(), None);
            let handshake = Arc::new(Handshake::new(
                self.session.request(),
                auth.unwrap_or_else(|| Value::Object(Default::default())),
            ));
            let middlewares = ns.handlers.middlewares();
            drop(sockets);
            if middlewares.is_empty() {
                // The common case stays on this task, in packet order.
                return self.join(io, ns, handshake);
            }
            let client = self.clone();
            let io = io.clone();
            tokio::spawn(async move {
                for m in middlewares {
                    if let Err(err) = m(handshake.clone()).await {
                        lock(&client.sockets).remove(&nsp);
                        client.send_control(PacketType::ConnectError, &nsp, Some(&err.to_json()));
                        return;
                    }
                }
                client.join(&io, ns, handshake);
            });
        }
    }

    /// The namespace accepted the connection.
    fn join(&self, io: &Arc<IoInner>, ns: Arc<NamespaceInner>, handshake: Arc<Handshake>) {
        if self.session.is_closed() {
            return;
        }
        let id = match Sid::generate(io.node_id) {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "no randomness for a socket id");
                return self.session.close_now(CloseReason::TransportError);
            }
        };
        let socket = Socket::new(id, ns.clone(), self.session.clone(), handshake);
        ns.add(&socket);
        lock(&self.sockets).insert(ns.path.clone(), Some(socket.clone()));
        self.joined_once.store(true, Ordering::Release);
        let answer = serde_json::json!({ "sid": id.as_str() });
        self.send_control(PacketType::Connect, &ns.path, Some(&answer));
        (ns.handlers.on_connect)(socket.clone());
        socket.ready();
    }

    fn send_control(&self, ty: PacketType, nsp: &str, data: Option<&Value>) {
        let packet = payload::control(ty, nsp, data);
        let _ = super::adapter::deliver(&self.session, &packet, false);
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
