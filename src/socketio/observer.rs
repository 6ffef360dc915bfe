//! A monitor's view of the socket layer (the Admin UI's development mode):
//! connections, disconnections with their reason, rooms joined and left,
//! events received and sent, transport and data changes, told as they
//! happen.
//!
//! Nothing is observed until a monitor is set: the socket paths then pay
//! one atomic load each. A monitor is called on those paths (a client's
//! transport, an emitter's thread), never under a lock of the namespace it
//! hears about, and must neither block nor call back into that namespace.

use std::sync::{Arc, OnceLock};

use super::payload::Encoded;
use super::{DisconnectReason, Payload, Room, Socket, SocketId};

/// What a monitor hears.
pub(crate) trait Observer: Send + Sync + 'static {
    /// A socket joined its namespace (a new one or a recovered one), before
    /// its connect handler runs.
    fn connected(&self, socket: &Socket);
    /// A socket left its namespace.
    fn disconnected(&self, socket: &Socket, reason: DisconnectReason);
    /// A socket of this node joined a room it was not in.
    fn joined(&self, ns: &str, room: &Room, sid: &SocketId);
    /// A socket of this node left a room it was in.
    fn left(&self, ns: &str, room: &Room, sid: &SocketId);
    /// An event arrived from a socket's client: its name, then its
    /// arguments (an expected ack is not among them).
    fn received(&self, socket: &Socket, data: &Payload);
    /// An encoded packet went to these sockets of namespace `ns`; only
    /// events are of interest (see [`Encoded::event_data`]).
    fn sent(&self, ns: &str, sids: &[SocketId], packet: &Encoded);
    /// The client's transport changed (its upgrade to WebSocket).
    fn upgraded(&self, socket: &Socket);
    /// The socket's data was replaced.
    fn data_changed(&self, socket: &Socket);
}

/// The monitor of a server, shared by all its namespaces; set at most once.
#[derive(Clone, Default)]
pub(crate) struct Observers(Arc<OnceLock<Arc<dyn Observer>>>);

impl Observers {
    /// The monitor, when one is set.
    #[inline]
    pub(crate) fn get(&self) -> Option<&dyn Observer> {
        self.0.get().map(|o| &**o)
    }

    /// Sets the monitor; `false` when one was set already.
    pub(crate) fn set(&self, observer: Arc<dyn Observer>) -> bool {
        self.0.set(observer).is_ok()
    }
}
