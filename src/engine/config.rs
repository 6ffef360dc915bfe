//! Engine configuration.

use std::time::Duration;

use crate::origin::AllowedOrigins;

/// Which transports the engine accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// HTTP long-polling; default on.
    pub polling: bool,
    /// WebSocket; default on.
    pub websocket: bool,
}

impl Default for Transports {
    fn default() -> Self {
        Transports {
            polling: true,
            websocket: true,
        }
    }
}

/// Settings of the engine.io layer. Build with [`EngineConfig::default`] and
/// the setters; every field documents its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// URL path the engine answers under, with leading and trailing slash;
    /// default `/socket.io/`.
    pub path: String,
    /// How often the server pings; default 25 s.
    pub ping_interval: Duration,
    /// How long a pong may take before the session is closed; default 20 s.
    pub ping_timeout: Duration,
    /// How long an upgrade to WebSocket may take; default 10 s.
    pub upgrade_timeout: Duration,
    /// Largest payload a client may send in one POST or WebSocket frame, in
    /// bytes; default 1 000 000 (`maxHttpBufferSize`).
    pub max_payload: usize,
    /// Bound on each session's outbound queue, in bytes of encoded packets;
    /// default 8 MiB. A send that would pass it fails with
    /// [`SendError::QueueFull`](crate::engine::SendError::QueueFull).
    pub max_queue_bytes: usize,
    /// Enabled transports; default both.
    pub transports: Transports,
    /// Origins allowed to open sessions from a browser; default: requests
    /// without `Origin` and same-origin requests only.
    pub allowed_origins: AllowedOrigins,
    /// This node's id, carried inside every sid; default 0.
    pub node_id: u16,
    /// Accept engine.io v3 clients (`EIO=3`: socket.io-client 2.x); default
    /// off, as in the reference server.
    pub allow_eio3: bool,
    /// Most live sessions; past it new handshakes get 503 "Too many
    /// sessions"; default 100 000.
    pub max_sessions: usize,
    /// Handshakes allowed per client IP address per second; past it they
    /// get 429 "Too many handshakes"; default `None` (no limit). Needs the
    /// peer address (axum's `into_make_service_with_connect_info`).
    pub handshakes_per_ip: Option<u32>,
    /// Longest request target (path and query) accepted, in bytes; past it
    /// 414; default 8 KiB.
    pub max_url_bytes: usize,
    /// Most bytes of request headers (names and values); past it 431;
    /// default 16 KiB.
    pub max_header_bytes: usize,
    /// How long the body of a POST may take to arrive (a slow body holds a
    /// connection and the session's POST slot); past it 408 and the session
    /// closes; default 10 s.
    pub post_timeout: Duration,
    /// Compress polling answers of at least
    /// [`compression_threshold`](Self::compression_threshold) bytes with
    /// gzip or deflate when the client accepts one (`Accept-Encoding`);
    /// default true.
    pub http_compression: bool,
    /// The smallest polling answer, or WebSocket message with
    /// [`ws_compression`](Self::ws_compression), compressed; default 1024
    /// bytes (smaller ones gain little and cost a header).
    pub compression_threshold: usize,
    /// Negotiate permessage-deflate (RFC 7692) with WebSocket clients that
    /// offer it, without context takeover either way (nothing kept per
    /// connection between messages); messages of at least
    /// [`compression_threshold`](Self::compression_threshold) bytes are
    /// then sent compressed. Default false, as in the reference server.
    pub ws_compression: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/socket.io/".to_owned(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            max_queue_bytes: 8 << 20,
            transports: Transports::default(),
            allowed_origins: AllowedOrigins::default(),
            node_id: 0,
            allow_eio3: false,
            max_sessions: 100_000,
            handshakes_per_ip: None,
            max_url_bytes: 8 << 10,
            max_header_bytes: 16 << 10,
            post_timeout: Duration::from_secs(10),
            http_compression: true,
            compression_threshold: 1024,
            ws_compression: false,
        }
    }
}

impl EngineConfig {
    /// Checks that every setting is in range: the message names the first
    /// that is not.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                !(self.path.starts_with('/') && self.path.ends_with('/')),
                "path must start and end with '/'",
            ),
            (
                self.ping_interval.is_zero(),
                "ping_interval must be above zero",
            ),
            (
                self.ping_timeout.is_zero(),
                "ping_timeout must be above zero",
            ),
            (
                self.upgrade_timeout.is_zero(),
                "upgrade_timeout must be above zero",
            ),
            (self.max_payload == 0, "max_payload must be at least 1 byte"),
            (
                self.max_queue_bytes == 0,
                "max_queue_bytes must be at least 1 byte",
            ),
            (
                !self.transports.polling && !self.transports.websocket,
                "at least one transport must be enabled",
            ),
            (self.max_sessions == 0, "max_sessions must be at least 1"),
            (
                self.post_timeout.is_zero(),
                "post_timeout must be above zero",
            ),
        ];
        match checks.iter().find(|(bad, _)| *bad) {
            Some((_, why)) => Err((*why).to_owned()),
            None => Ok(()),
        }
    }

    /// Sets [`path`](Self::path); a missing leading or trailing slash is added.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let mut path: String = path.into();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        if !path.ends_with('/') {
            path.push('/');
        }
        self.path = path;
        self
    }

    /// Sets [`ping_interval`](Self::ping_interval).
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.ping_interval = d;
        self
    }

    /// Sets [`ping_timeout`](Self::ping_timeout).
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.ping_timeout = d;
        self
    }

    /// Sets [`upgrade_timeout`](Self::upgrade_timeout).
    pub fn upgrade_timeout(mut self, d: Duration) -> Self {
        self.upgrade_timeout = d;
        self
    }

    /// Sets [`max_payload`](Self::max_payload).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Sets [`max_queue_bytes`](Self::max_queue_bytes).
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes;
        self
    }

    /// Sets [`transports`](Self::transports).
    pub fn transports(mut self, transports: Transports) -> Self {
        self.transports = transports;
        self
    }

    /// Sets [`allowed_origins`](Self::allowed_origins).
    pub fn allowed_origins(mut self, origins: AllowedOrigins) -> Self {
        self.allowed_origins = origins;
        self
    }

    /// Sets [`allow_eio3`](Self::allow_eio3).
    pub fn allow_eio3(mut self, allow: bool) -> Self {
        self.allow_eio3 = allow;
        self
    }

    /// Sets [`max_sessions`](Self::max_sessions).
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// Sets [`handshakes_per_ip`](Self::handshakes_per_ip).
    pub fn handshakes_per_ip(mut self, per_second: Option<u32>) -> Self {
        self.handshakes_per_ip = per_second;
        self
    }

    /// Sets [`http_compression`](Self::http_compression).
    pub fn http_compression(mut self, on: bool) -> Self {
        self.http_compression = on;
        self
    }

    /// Sets [`ws_compression`](Self::ws_compression).
    pub fn ws_compression(mut self, on: bool) -> Self {
        self.ws_compression = on;
        self
    }

    /// Sets [`compression_threshold`](Self::compression_threshold).
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.compression_threshold = bytes;
        self
    }

    /// Sets [`max_url_bytes`](Self::max_url_bytes).
    pub fn max_url_bytes(mut self, n: usize) -> Self {
        self.max_url_bytes = n;
        self
    }

    /// Sets [`max_header_bytes`](Self::max_header_bytes).
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.max_header_bytes = n;
        self
    }

    /// Sets [`post_timeout`](Self::post_timeout).
    pub fn post_timeout(mut self, d: Duration) -> Self {
        self.post_timeout = d;
        self
    }

    /// Sets [`node_id`](Self::node_id).
    pub fn node_id(mut self, id: u16) -> Self {
        self.node_id = id;
        self
    }
}
