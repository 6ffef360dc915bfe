//! The engine.io layer: codecs, sessions, and the handler API that the
//! socket.io layer (or an application) sits on.

mod config;
mod error;
pub mod jsonp;
mod machine;
mod open;
pub mod packet;
pub mod payload;
pub mod payload_v3;
mod session;
mod sid;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use tokio::time::Instant;

pub use config::{EngineConfig, Transports};
pub use error::{DecodeError, EngineError};
pub use machine::{CloseReason, Protocol, SendError, TransportKind};
pub use packet::{Binary, Message, Packet, Str};
pub use session::{RequestInfo, Session};
pub use sid::Sid;

pub use crate::transport::forward::{FORWARDED_FOR_HEADER, SECRET_HEADER, SessionRouter};

pub(crate) use machine::{PollRefusal, PollStep, Timing, WsStep};
pub(crate) use open::OpenData;

pub(crate) use machine::Machine;

/// What the engine tells the layer above. Called in packet order for each
/// session, on the task that read the packets: keep handlers short, and
/// spawn for slow work.
pub trait EngineHandler: Send + Sync + 'static {
    /// A session opened (before any of its messages is delivered).
    fn on_open(&self, session: &Session);
    /// A message arrived.
    fn on_message(&self, session: &Session, message: Message);
    /// The session closed (called once).
    fn on_close(&self, session: &Session, reason: CloseReason);
    /// The session moved to WebSocket (an upgrade from polling). Default:
    /// nothing.
    fn on_upgrade(&self, session: &Session) {
        let _ = session;
    }
}

pub(crate) struct EngineInner {
    pub(crate) config: EngineConfig,
    pub(crate) handler: Arc<dyn EngineHandler>,
    pub(crate) sessions: DashMap<Sid, Session>,
    /// Shared with every session, which counts its traffic without
    /// reaching for the engine.
    pub(crate) counters: Arc<Counters>,
    /// Set by [`Engine::shutdown`]: no new session is opened.
    pub(crate) shutting_down: AtomicBool,
    pub(crate) handshake_rate: HandshakeRate,
    /// Close notifications queued to run after their caller returned
    /// (see [`Session::close_now`]) and not yet done.
    pending_closes: AtomicUsize,
    /// Polling sessions their client closed (a POST of `1`) while no GET
    /// was pending: see [`EngineInner::remember_client_close`].
    client_closes: std::sync::Mutex<std::collections::HashMap<Sid, (Instant, Protocol)>>,
    /// Where the other nodes of a cluster are, once
    /// [`Engine::route_sessions`] set it.
    pub(crate) routing: std::sync::OnceLock<crate::transport::Routing>,
    /// Whether a refused origin was logged as a warning yet.
    pub(crate) origin_warned: AtomicBool,
}

/// How long a client-closed polling session answers its one GET in flight.
const CLIENT_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Most client-closed sessions remembered at once.
const CLIENT_CLOSES_KEPT: usize = 4096;

impl EngineInner {
    /// A polling client closed its session with a POST while no GET was
    /// pending. A client may have one GET in flight at any time (sent with
    /// the POST, as engine.io clients do when they close while polling):
    /// that GET, arriving after the close, is answered with the noop it
    /// would have got had it come first, once, within a second. Any later
    /// request gets "Session ID unknown".
    pub(crate) fn remember_client_close(&self, sid: Sid, protocol: Protocol) {
        let now = Instant::now();
        let mut closes = self.client_closes.lock().unwrap_or_else(|e| e.into_inner());
        if closes.len() >= CLIENT_CLOSES_KEPT {
            closes.retain(|_, (at, _)| now.duration_since(*at) < CLIENT_CLOSE_GRACE);
        }
        if closes.len() < CLIENT_CLOSES_KEPT {
            closes.insert(sid, (now, protocol));
        }
    }

    /// Takes (once) what [`remember_client_close`](Self::remember_client_close)
    /// kept for `sid`: the protocol to answer the noop in.
    pub(crate) fn take_client_close(&self, sid: &Sid) -> Option<Protocol> {
        let mut closes = self.client_closes.lock().unwrap_or_else(|e| e.into_inner());
        let (at, protocol) = closes.remove(sid)?;
        (Instant::now().duration_since(at) < CLIENT_CLOSE_GRACE).then_some(protocol)
    }
}

impl EngineInner {
    /// Counts frames a transport sent.
    pub(crate) fn count_sent(&self, frames: usize, bytes: usize) {
        Counters::add(&self.counters.frames_out, frames as u64);
        Counters::add(&self.counters.bytes_out, bytes as u64);
    }

    /// Runs the handler's `on_close` for `session` on a task of its own, so
    /// that whoever caused the close (an emit, the application) is not
    /// re-entered. [`Engine::shutdown`] waits for these.
    pub(crate) fn notify_close_later(self: &Arc<Self>, session: Session, reason: CloseReason) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Outside a runtime there is no task to defer to; no caller of
            // ours can be inside an emit there either.
            self.handler.on_close(&session, reason);
            return;
        };
        self.pending_closes.fetch_add(1, Ordering::AcqRel);
        let engine = self.clone();
        runtime.spawn(async move {
            // Counted down even if the handler panics.
            let _done = PendingClose(&engine.pending_closes);
            engine.handler.on_close(&session, reason);
        });
    }
}

struct PendingClose<'a>(&'a AtomicUsize);

impl Drop for PendingClose<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for EngineInner {
    /// The last handle and service are gone: nobody can reach the sessions
    /// any more, so they end rather than heartbeat forever. The handler
    /// (the socket.io layer) is told, so that its sockets leave their
    /// namespaces.
    fn drop(&mut self) {
        let sessions: Vec<Session> = self.sessions.iter().map(|s| s.clone()).collect();
        self.sessions.clear();
        for session in sessions {
            if session.orphan() {
                self.handler.on_close(&session, CloseReason::ServerShutdown);
            }
        }
    }
}

/// Handshakes per client IP in the current one-second window.
#[derive(Default)]
pub(crate) struct HandshakeRate {
    windows: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (Instant, u32)>>,
}

impl HandshakeRate {
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

    /// Counts a handshake from `ip`; false past `limit` in this window.
    fn allow(&self, ip: std::net::IpAddr, limit: u32, now: Instant) -> bool {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        // Only the current window matters: forget the others before the map
        // can grow with the number of addresses ever seen.
        if windows.len() >= 4096 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < Self::WINDOW);
        }
        let (start, count) = windows.entry(ip).or_insert((now, 0));
        if now.duration_since(*start) >= Self::WINDOW {
            (*start, *count) = (now, 0);
        }
        *count += 1;
        *count <= limit
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) volatile_dropped: AtomicU64,
    pub(crate) slow_consumer_closes: AtomicU64,
    pub(crate) dropped_full: AtomicU64,
    pub(crate) forwarded: AtomicU64,
    pub(crate) forward_failures: AtomicU64,
    pub(crate) relayed: AtomicU64,
    pub(crate) served_forwarded: AtomicU64,
    pub(crate) refused_forwards: AtomicU64,
    pub(crate) owner_unknown: AtomicU64,
    /// Sessions opened, by transport ([`TransportKind::index`]).
    pub(crate) handshakes: [AtomicU64; 2],
    pub(crate) upgrades: AtomicU64,
    /// Polling answers sent compressed.
    pub(crate) compressed: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    /// Sessions closed, by reason ([`CloseReason::index`]).
    pub(crate) closes: [AtomicU64; CloseReason::ALL.len()],
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What the engine counted since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EngineStats {
    /// Live sessions.
    pub sessions: usize,
    /// Volatile messages dropped for clients that were behind (counted per
    /// recipient).
    pub volatile_dropped: u64,
    /// Sessions closed because their outbound queue was full.
    pub slow_consumer_closes: u64,
    /// Messages dropped for a full queue under the drop policy.
    pub dropped_full: u64,
    /// Requests for sessions of other nodes that were sent on to their
    /// owner and answered (WebSocket relays included).
    pub forwarded: u64,
    /// Requests whose owner could not be reached (the client got
    /// "Session ID unknown").
    pub forward_failures: u64,
    /// WebSocket upgrades relayed to the owner of their session.
    pub relayed: u64,
    /// Requests other nodes forwarded here, served as local ones.
    pub served_forwarded: u64,
    /// Requests that claimed to be forwarded without the cluster secret
    /// (refused with 403).
    pub refused_forwards: u64,
    /// Requests naming a node that no live node is (answered "Session ID
    /// unknown").
    pub owner_unknown: u64,
    /// Sessions opened over polling.
    pub handshakes_polling: u64,
    /// Sessions opened over WebSocket.
    pub handshakes_websocket: u64,
    /// Polling sessions upgraded to WebSocket.
    pub upgrades: u64,
    /// Polling answers sent compressed (gzip or deflate).
    pub compressed_answers: u64,
    /// Messages received from clients, and their bytes.
    pub messages_in: u64,
    /// Bytes of the messages received.
    pub bytes_in: u64,
    /// Frames sent to clients (packets of every type), and their bytes.
    pub frames_out: u64,
    /// Bytes of the frames sent.
    pub bytes_out: u64,
    /// Sessions closed, by reason, in the order of [`CloseReason::ALL`].
    pub closes: [u64; CloseReason::ALL.len()],
}

/// An engine.io server: configuration, handler and the live sessions.
/// Cheap to clone; mount it with [`Engine::layer`].
#[derive(Clone)]
pub struct Engine(pub(crate) Arc<EngineInner>);

impl Engine {
    /// A new engine that reports to `handler`.
    pub fn new(config: EngineConfig, handler: impl EngineHandler) -> Self {
        Engine(Arc::new(EngineInner {
            config,
            handler: Arc::new(handler),
            sessions: DashMap::new(),
            counters: Arc::default(),
            shutting_down: AtomicBool::new(false),
            handshake_rate: HandshakeRate::default(),
            pending_closes: AtomicUsize::new(0),
            client_closes: Default::default(),
            routing: std::sync::OnceLock::new(),
            origin_warned: AtomicBool::new(false),
        }))
    }

    /// Counters and the number of live sessions.
    pub fn stats(&self) -> EngineStats {
        let c = &self.0.counters;
        EngineStats {
            sessions: self.0.sessions.len(),
            volatile_dropped: c.volatile_dropped.load(Ordering::Relaxed),
            slow_consumer_closes: c.slow_consumer_closes.load(Ordering::Relaxed),
            dropped_full: c.dropped_full.load(Ordering::Relaxed),
            forwarded: c.forwarded.load(Ordering::Relaxed),
            forward_failures: c.forward_failures.load(Ordering::Relaxed),
            relayed: c.relayed.load(Ordering::Relaxed),
            served_forwarded: c.served_forwarded.load(Ordering::Relaxed),
            refused_forwards: c.refused_forwards.load(Ordering::Relaxed),
            owner_unknown: c.owner_unknown.load(Ordering::Relaxed),
            handshakes_polling: c.handshakes[0].load(Ordering::Relaxed),
            handshakes_websocket: c.handshakes[1].load(Ordering::Relaxed),
            upgrades: c.upgrades.load(Ordering::Relaxed),
            compressed_answers: c.compressed.load(Ordering::Relaxed),
            messages_in: c.messages_in.load(Ordering::Relaxed),
            bytes_in: c.bytes_in.load(Ordering::Relaxed),
            frames_out: c.frames_out.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            closes: std::array::from_fn(|i| c.closes[i].load(Ordering::Relaxed)),
        }
    }

    /// Makes this engine one node of a cluster: a request for a session it
    /// does not have, whose id names another node, is forwarded to that
    /// node as `router` locates it (see [`SessionRouter`]), and requests
    /// other nodes forward here are served when they carry the router's
    /// secret. Sessions opened here carry [`EngineConfig::node_id`], which
    /// must be this node's id in the router. Set once; false when a router
    /// was already set.
    pub fn route_sessions(&self, router: std::sync::Arc<dyn SessionRouter>) -> bool {
        self.0
            .routing
            .set(crate::transport::Routing::new(router))
            .is_ok()
    }

    /// Stops opening sessions (handshakes get 503), closes every session
    /// with [`CloseReason::ServerShutdown`] after flushing what is queued,
    /// and waits up to `deadline` for them to go; what is left then is
    /// closed at once. A polling session with no poll pending gets only a
    /// short grace (1 s, or `deadline` if shorter): a live client polls again
    /// at once and gets its close packet, a vanished one would hold the
    /// shutdown for nothing. Returns whether every session was closed before
    /// the deadline.
    pub async fn shutdown(&self, deadline: std::time::Duration) -> bool {
        self.0.shutting_down.store(true, Ordering::Release);
        self.close_all();
        let start = tokio::time::Instant::now();
        let idle_grace = start + deadline.min(std::time::Duration::from_secs(1));
        let until = start + deadline;
        let mut idle_checked = false;
        while self.session_count() > 0 || self.0.pending_closes.load(Ordering::Acquire) > 0 {
            let now = tokio::time::Instant::now();
            if !idle_checked && now >= idle_grace {
                idle_checked = true;
                for s in self.live_sessions() {
                    if s.transport() == TransportKind::Polling && !s.pending_requests().0 {
                        s.close_deferred(CloseReason::ServerShutdown, false);
                    }
                }
                continue;
            }
            if now >= until {
                for s in self.live_sessions() {
                    s.close_deferred(CloseReason::ServerShutdown, false);
                }
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        true
    }

    /// Every live session (open or closing).
    pub fn live_sessions(&self) -> Vec<Session> {
        self.0.sessions.iter().map(|s| s.clone()).collect()
    }

    /// Whether [`shutdown`](Self::shutdown) began.
    pub fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::Acquire)
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.0.config
    }

    /// A tower layer that serves this engine under its path and passes
    /// every other request to the wrapped service.
    pub fn layer(&self) -> crate::EngineLayer {
        crate::EngineLayer::new(self.clone())
    }

    /// Live sessions (open or closing).
    pub fn session_count(&self) -> usize {
        self.0.sessions.len()
    }

    /// A live session by id.
    pub fn session(&self, sid: &Sid) -> Option<Session> {
        self.0.sessions.get(sid).map(|s| s.clone())
    }

    /// Closes every session at once with [`CloseReason::ServerShutdown`]
    /// after flushing what is queued.
    pub fn close_all(&self) {
        for s in self.live_sessions() {
            s.close_deferred(CloseReason::ServerShutdown, true);
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.0.config)
            .field("sessions", &self.0.sessions.len())
            .finish()
    }
}

impl EngineInner {
    /// Creates and registers a session and starts its heartbeat driver.
    pub(crate) fn open_session(
        self: &Arc<Self>,
        protocol: Protocol,
        transport: TransportKind,
        request: RequestInfo,
    ) -> Result<Session, EngineError> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(EngineError::ShuttingDown);
        }
        if self.sessions.len() >= self.config.max_sessions {
            return Err(EngineError::TooManySessions);
        }
        if let (Some(limit), Some(addr)) = (self.config.handshakes_per_ip, request.remote_addr)
            && !self.handshake_rate.allow(addr.ip(), limit, Instant::now())
        {
            return Err(EngineError::TooManyHandshakes);
        }
        let sid = Sid::generate(self.config.node_id).map_err(|e| {
            tracing::error!(error = %e, "no randomness for a session id");
            EngineError::BadRequest
        })?;
        let timing = Timing {
            ping_interval: self.config.ping_interval,
            ping_timeout: self.config.ping_timeout,
            max_queue_bytes: self.config.max_queue_bytes,
        };
        let machine = Machine::new(protocol, transport, timing, Instant::now());
        let session = Session::new(
            sid,
            Arc::downgrade(self),
            self.counters.clone(),
            machine,
            request,
        );
        self.sessions.insert(sid, session.clone());
        let index = match transport {
            TransportKind::Polling => 0,
            TransportKind::WebSocket => 1,
        };
        Counters::add(&self.counters.handshakes[index], 1);
        tokio::spawn(session.clone().drive());
        tracing::debug!(%sid, transport = transport.as_str(), "session opened");
        Ok(session)
    }

    /// The handshake packet for a new session.
    pub(crate) fn open_packet(&self, session: &Session) -> Packet {
        let upgrades: &[&str] =
            if session.transport() == TransportKind::Polling && self.config.transports.websocket {
                &["websocket"]
            } else {
                &[]
            };
        let sid = session.sid();
        Packet::Open(OpenData::new(&sid, upgrades, &self.config).to_json().into())
    }
}
