//! The plain types everything in the socket.io layer shares (ids, rooms,
//! whom a broadcast is for, why an emit failed): a leaf module, so that an
//! adapter or a store needs nothing else.

use std::fmt;
use std::sync::Arc;

use crate::engine::SendError;

/// A socket's id: random, for every client. (socket.io-client 2.x computes
/// an id of its own from the engine session id; the server does not use
/// it, because the engine session id is a credential: whoever knows it can
/// poll the session.) Cheap to clone.
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

/// A room name.
pub type Room = Arc<str>;

/// Whom a broadcast is for.
#[derive(Debug, Clone, Default)]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; every socket when empty.
    pub rooms: Vec<Room>,
    /// Minus sockets in any of these rooms.
    pub except: Vec<Room>,
    /// Minus this socket (the sender of a `broadcast`).
    pub except_sid: Option<SocketId>,
    /// The packet may be dropped for clients that are behind.
    pub volatile: bool,
    /// This node only.
    pub local: bool,
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
    /// The packet alone is larger than a client's whole outbound queue
    /// (`max_queue_bytes`): it was sent to nobody, and no client was
    /// closed for it.
    #[error("message larger than the outbound queue bound (max_queue_bytes)")]
    MessageTooLarge,
    /// The cluster bus could not take it (see the adapter's counters).
    #[error("the cluster bus could not take it: {0}")]
    Cluster(String),
}

impl From<SendError> for EmitError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::QueueFull => EmitError::QueueFull,
            SendError::MessageTooLarge => EmitError::MessageTooLarge,
            _ => EmitError::Disconnected,
        }
    }
}
