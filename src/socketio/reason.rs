//! Why a socket left its namespace.

use std::fmt;

use crate::engine::CloseReason;

/// Why a socket disconnected, as socket.io names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client left the namespace (`socket.disconnect()` on the client).
    ClientNamespaceDisconnect,
    /// The server disconnected the socket ([`Socket::disconnect`](super::Socket::disconnect)).
    ServerNamespaceDisconnect,
    /// The connection closed (client closed it, or the network went away).
    TransportClose,
    /// The connection failed or broke the protocol.
    TransportError,
    /// No pong in time.
    PingTimeout,
    /// The client sent a packet that does not decode.
    ParseError,
    /// The server closed the connection.
    ForcedServerClose,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The client did not keep up with what was sent to it.
    SlowConsumer,
}

impl DisconnectReason {
    /// The reason's socket.io name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientNamespaceDisconnect => "client namespace disconnect",
            Self::ServerNamespaceDisconnect => "server namespace disconnect",
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ForcedServerClose => "forced server close",
            Self::ServerShuttingDown => "server shutting down",
            Self::SlowConsumer => "slow consumer",
        }
    }
}

impl From<CloseReason> for DisconnectReason {
    fn from(r: CloseReason) -> Self {
        match r {
            CloseReason::TransportClose => Self::TransportClose,
            CloseReason::PingTimeout => Self::PingTimeout,
            CloseReason::ParseError => Self::ParseError,
            CloseReason::ServerClose => Self::ForcedServerClose,
            CloseReason::ServerShutdown => Self::ServerShuttingDown,
            CloseReason::SlowConsumer => Self::SlowConsumer,
            _ => Self::TransportError,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
