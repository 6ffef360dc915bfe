//! socket.io layer configuration.

use std::time::Duration;

use super::recovery::RecoveryConfig;
use crate::engine::EngineConfig;

/// Settings of the socket.io layer, including its engine's. Build with
/// [`SocketIoConfig::default`] and the setters; each field documents its
/// default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SocketIoConfig {
    /// The engine.io settings (path, heartbeat, payload limit, origins…);
    /// default [`EngineConfig::default`].
    pub engine: EngineConfig,
    /// How long a client may stay connected without joining any namespace;
    /// default 45 s.
    pub connect_timeout: Duration,
    /// Most binary attachments one packet may announce; default 10.
    pub max_attachments: usize,
    /// Most bytes the attachments of one packet may hold together; default
    /// 1 000 000.
    pub max_attachment_bytes: usize,
    /// Most namespaces one connection may join; past it a CONNECT is
    /// refused with "Too many namespaces"; default 32.
    pub max_namespaces: usize,
    /// Connection state recovery; default off (`None`).
    pub recovery: Option<RecoveryConfig>,
    /// What happens when a packet that may not be dropped does not fit in a
    /// client's outbound queue; default [`FullQueue::Close`].
    pub full_queue: FullQueue,
    /// Most rooms a socket may be in through
    /// [`Socket::join_client_room`](super::Socket::join_client_room) (rooms
    /// a client asks for; its own room not counted); default 50. Rooms the
    /// server joins with [`Socket::join`](super::Socket::join) are not
    /// limited.
    pub max_client_rooms: usize,
    /// How socket.io packets are written on the wire; default
    /// [`Parser::Json`]. Clients cannot negotiate it: they must be built
    /// with the matching parser.
    pub parser: Parser,
}

/// The socket.io packet encoding, one per server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Parser {
    /// socket.io's default parser: text packets, binary arguments as
    /// attachments that follow in binary messages.
    #[default]
    Json,
    /// `socket.io-msgpack-parser` 3.x: every packet is one binary message
    /// holding a msgpack map `{type, data, nsp, id}`, binary arguments
    /// inline as msgpack bin.
    Msgpack,
}

/// The policy for a full outbound queue (volatile packets are always
/// dropped instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FullQueue {
    /// Close the client's connection with reason "slow consumer": nothing
    /// is lost silently, and with recovery the client gets the missed
    /// packets when it reconnects.
    #[default]
    Close,
    /// Drop the packet for that client and count it
    /// ([`EngineStats::dropped_full`](crate::engine::EngineStats)).
    Drop,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        SocketIoConfig {
            engine: EngineConfig::default(),
            connect_timeout: Duration::from_secs(45),
            max_attachments: 10,
            max_attachment_bytes: 1_000_000,
            max_namespaces: 32,
            recovery: None,
            full_queue: FullQueue::Close,
            max_client_rooms: 50,
            parser: Parser::Json,
        }
    }
}

impl SocketIoConfig {
    /// Sets [`engine`](Self::engine).
    pub fn engine(mut self, engine: EngineConfig) -> Self {
        self.engine = engine;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Sets [`max_attachments`](Self::max_attachments).
    pub fn max_attachments(mut self, n: usize) -> Self {
        self.max_attachments = n;
        self
    }

    /// Sets [`max_namespaces`](Self::max_namespaces).
    pub fn max_namespaces(mut self, n: usize) -> Self {
        self.max_namespaces = n;
        self
    }

    /// Turns connection state recovery on with `recovery`.
    pub fn recovery(mut self, recovery: RecoveryConfig) -> Self {
        self.recovery = Some(recovery);
        self
    }

    /// Sets [`full_queue`](Self::full_queue).
    pub fn full_queue(mut self, policy: FullQueue) -> Self {
        self.full_queue = policy;
        self
    }

    /// Sets [`max_client_rooms`](Self::max_client_rooms).
    pub fn max_client_rooms(mut self, n: usize) -> Self {
        self.max_client_rooms = n;
        self
    }

    /// Sets [`parser`](Self::parser).
    pub fn parser(mut self, parser: Parser) -> Self {
        self.parser = parser;
        self
    }

    /// Checks that every setting is in range: the message names the first
    /// that is not.
    pub fn validate(&self) -> Result<(), String> {
        self.engine.validate()?;
        let checks = [
            (
                self.connect_timeout.is_zero(),
                "connect_timeout must be above zero",
            ),
            (
                self.max_namespaces == 0,
                "max_namespaces must be at least 1",
            ),
        ];
        if let Some((_, why)) = checks.iter().find(|(bad, _)| *bad) {
            return Err((*why).to_owned());
        }
        if let Some(r) = &self.recovery {
            if r.max_disconnection_duration.is_zero() {
                return Err("recovery.max_disconnection_duration must be above zero".into());
            }
            if r.max_packets == 0 || r.max_bytes == 0 || r.max_sessions == 0 {
                return Err(
                    "recovery.max_packets, max_bytes and max_sessions must be at least 1".into(),
                );
            }
        }
        Ok(())
    }

    /// Sets [`max_attachment_bytes`](Self::max_attachment_bytes).
    pub fn max_attachment_bytes(mut self, n: usize) -> Self {
        self.max_attachment_bytes = n;
        self
    }
}
