//! Backend hooks: the gateway asks an application backend, over HTTP, who
//! may connect, hands it the client events it wants, and tells it who
//! left. The backend can be written in any language: each hook is a JSON
//! `POST` to a URL of its own, answered with JSON.
//!
//! Every call goes through one pooled HTTP/1.1 client, `http://` or
//! `https://` (rustls, trusting the system's CA certificates and those of
//! [`HooksConfig::ca_files`]), and has a deadline, [`HooksConfig::timeout`]
//! (1 s by default, TLS handshake included).
//!
//! # The connect hook
//!
//! Before a client's namespace CONNECT is accepted, the gateway POSTs:
//!
//! ```json
//! {
//!   "namespace": "/",
//!   "auth": {"token": "…"},
//!   "headers": {"cookie": "…", "authorization": "…"},
//!   "query": {"room": "lobby"},
//!   "address": "203.0.113.7",
//!   "transport": "polling"
//! }
//! ```
//!
//! `auth` is the client's `auth` option (`{}` without one); `headers` are
//! the connection's first request's headers named in
//! [`HooksConfig::headers`] only, their names in lower case (every other
//! header never reaches the backend); `query` is that request's query
//! string without engine.io's own parameters (`EIO`, `transport`, `sid`,
//! `t`, `j`, `b64`); `address` is the peer's IP address (`null` when
//! unknown); `transport` is the transport the connection opened with
//! (`polling` or `websocket`).
//!
//! The backend answers `200` with either
//!
//! - `{"allow": true, "data": {…}, "rooms": ["user:42", …]}`: the socket is
//!   accepted; `data` (optional, any JSON) becomes its
//!   [data](crate::socketio::Socket::data), and it is in `rooms`
//!   (optional) before anything else happens, or
//! - `{"allow": false, "message": "…", "data": …}`: refused; the client's
//!   `connect_error` gets an `Error` whose `message` is `message` (default
//!   `"refused"`) and whose `data` is `data` (optional). socket.io-client
//!   does not retry a refusal by itself.
//!
//! Anything else is a *backend failure*: the backend cannot be reached,
//! does not answer within the timeout, answers another status (a 5xx
//! among them) or a body that is not one of these. The client is then
//! neither refused nor let in: its connection (the engine.io session) is
//! closed, so socket.io-client sees `transport close` and reconnects with
//! its usual delay (`reconnectionDelay`, 1 s by default), and gets in once
//! the backend answers again. Failures are counted
//! ([`HooksStats::connect_failed`]) and logged when the backend goes down
//! and when it comes back, not once per call.
//!
//! # The events hook
//!
//! Client events whose name matches one of [`HooksConfig::event_patterns`]
//! (`*` stands for any run of characters: `chat.*`, `*`) and that no other
//! handler takes are POSTed, one socket's events one after another in the
//! order they arrived:
//!
//! ```json
//! {"namespace": "/", "socket_id": "…", "data": {…}, "event": "chat.send", "args": ["hi", {"x": 1}]}
//! ```
//!
//! `data` is the socket's data (from the connect hook); a binary argument
//! appears as `{"_base64": "…"}`. The backend answers `200` (or `204`, or
//! an empty body: nothing to do) with
//!
//! ```json
//! {"ack": ["ok", 42], "emits": [{"rooms": ["lobby"], "event": "chat.message", "args": [{"text": "hi"}]}]}
//! ```
//!
//! Each of `emits` (optional) is emitted to its `rooms` (everyone in the
//! namespace without `rooms`) through the namespace's broadcast operator,
//! so on every node of a cluster; then, when the client asked for an
//! acknowledgement, it gets `ack` as its arguments (none when `ack` is
//! missing). `{"_base64": "…"}` in `ack` or `args` becomes a binary
//! argument. On a backend failure the client's acknowledgement is
//! `{"error": "backend unavailable"}`.
//!
//! Each socket has a queue of [`EVENT_QUEUE`] events waiting for the
//! backend; an event that finds it full is dropped, counted
//! ([`HooksStats::events_dropped`]) and acknowledged with `{"error":
//! "busy"}`.
//!
//! # The disconnect hook
//!
//! When a socket leaves, the gateway POSTs, **best effort**:
//!
//! ```json
//! {"namespace": "/", "socket_id": "…", "data": {…}, "reason": "transport close"}
//! ```
//!
//! and ignores the answer. Best effort because a disconnect cannot hold
//! anything up: when a node restarts or a network blip drops thousands of
//! clients at once, thousands of notifications fall due at the same time,
//! while the same clients reconnect (and call the connect hook). They wait
//! in one bounded queue ([`DISCONNECT_QUEUE`] notifications, a few sent at
//! once); a notification that finds the queue full is dropped and counted
//! ([`HooksStats::disconnects_dropped`]), one that fails is not retried,
//! and a node that dies sends none. A backend that must know who is
//! connected should expire what it keeps, or ask the gateway.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::gateway::{Relay, RelayLimits};
use crate::socketio::{
    ConnectError, DisconnectReason, Event, Handshake, Namespace, Payload, Socket, SocketIo,
};

/// Events of one socket that may wait for the events hook; past it they
/// are dropped.
pub const EVENT_QUEUE: usize = 64;

/// Disconnect notifications that may wait to be sent; past it they are
/// dropped.
pub const DISCONNECT_QUEUE: usize = 1024;

/// Disconnect notifications sent at once.
const DISCONNECT_CONCURRENCY: usize = 8;

/// The largest answer read from a backend.
const MAX_ANSWER: usize = 1024 * 1024;

/// The query parameters of engine.io itself, not passed to the backend.
const ENGINE_PARAMS: &[&str] = &["EIO", "transport", "sid", "t", "j", "b64"];

/// Which hooks call which backend URLs. Each hook is off unless its URL is
/// set.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HooksConfig {
    /// Asked before a namespace connection is accepted; default none
    /// (everyone is let in).
    pub connect: Option<Uri>,
    /// Gets the client events named by [`event_patterns`](Self::event_patterns);
    /// default none.
    pub events: Option<Uri>,
    /// Which events go to [`events`](Self::events): names or globs where
    /// `*` stands for any run of characters; default `["*"]` (all).
    pub event_patterns: Vec<String>,
    /// Told, best effort, when a socket leaves; default none.
    pub disconnect: Option<Uri>,
    /// How long each call may take, connecting included; default 1 s.
    pub timeout: Duration,
    /// The request headers the connect hook passes on (case-insensitive);
    /// default `cookie` and `authorization`.
    pub headers: Vec<String>,
    /// Certificates (PEM files, each may hold several) trusted for
    /// `https://` hooks besides the system's: a private CA, or a backend's
    /// own self-signed certificate. Default none.
    pub ca_files: Vec<PathBuf>,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            connect: None,
            events: None,
            event_patterns: vec!["*".to_owned()],
            disconnect: None,
            timeout: Duration::from_secs(1),
            headers: vec!["cookie".to_owned(), "authorization".to_owned()],
            ca_files: Vec::new(),
        }
    }
}

impl HooksConfig {
    /// Sets [`connect`](Self::connect).
    pub fn connect(mut self, url: Option<Uri>) -> Self {
        self.connect = url;
        self
    }

    /// Sets [`ca_files`](Self::ca_files).
    pub fn ca_files(mut self, files: Vec<PathBuf>) -> Self {
        self.ca_files = files;
        self
    }

    /// Sets [`events`](Self::events).
    pub fn events(mut self, url: Option<Uri>) -> Self {
        self.events = url;
        self
    }

    /// Sets [`event_patterns`](Self::event_patterns).
    pub fn event_patterns<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.event_patterns = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`disconnect`](Self::disconnect).
    pub fn disconnect(mut self, url: Option<Uri>) -> Self {
        self.disconnect = url;
        self
    }

    /// Sets [`timeout`](Self::timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`headers`](Self::headers).
    pub fn headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.headers = headers.into_iter().map(Into::into).collect();
        self
    }

    /// Whether any hook is on.
    pub fn any(&self) -> bool {
        self.connect.is_some() || self.events.is_some() || self.disconnect.is_some()
    }
}

/// Why hooks could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HooksError {
    /// A hook URL that is not `http[s]://host[:port]/…`.
    #[error("the {hook} hook URL {url} is not usable: {why}")]
    BadUrl {
        /// Which hook (`connect`, `events`, `disconnect`).
        hook: &'static str,
        /// The URL.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A zero timeout.
    #[error("the hook timeout must be above zero")]
    ZeroTimeout,
    /// A CA file for https hooks could not be read.
    #[error("the hook CA file {path}: {why}")]
    BadCa {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// The hooks' counters so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HooksStats {
    /// Connections the backend allowed.
    pub connect_allowed: u64,
    /// Connections the backend refused.
    pub connect_refused: u64,
    /// Connect hook calls that failed (the client's connection was
    /// closed).
    pub connect_failed: u64,
    /// Events the backend answered.
    pub events_sent: u64,
    /// Event hook calls that failed.
    pub events_failed: u64,
    /// Events dropped because the socket's queue was full.
    pub events_dropped: u64,
    /// Disconnect notifications the backend took (any 2xx).
    pub disconnects_sent: u64,
    /// Disconnect notifications that failed.
    pub disconnects_failed: u64,
    /// Disconnect notifications dropped because the queue was full.
    pub disconnects_dropped: u64,
    /// Whether the backend is down: the last call to some hook failed.
    pub backend_down: bool,
}

/// The backend hooks, as [`install`] or [`Hooks::new`] set them up. Cheap
/// to clone.
#[derive(Clone)]
pub struct Hooks(Arc<Inner>);

struct Inner {
    config: HooksConfig,
    caller: Arc<Caller>,
    /// Started with the first disconnect notification (it needs a Tokio
    /// runtime); the sender is dropped with the hooks, ending the task.
    disconnects: OnceLock<mpsc::Sender<Value>>,
}

/// What makes calls: the pooled client, the deadline and the counters.
/// Apart from [`Inner`] so that the disconnect task does not keep the
/// queue it reads alive.
struct Caller {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    stats: Counters,
    /// One state per hook (connect, events, disconnect): they may be
    /// different backends.
    down: [AtomicBool; 3],
    /// Where call latencies go, when the gateway serves metrics.
    telemetry: OnceLock<Arc<crate::telemetry::Telemetry>>,
}

#[derive(Default)]
struct Counters {
    connect_allowed: AtomicU64,
    connect_refused: AtomicU64,
    connect_failed: AtomicU64,
    events_sent: AtomicU64,
    events_failed: AtomicU64,
    events_dropped: AtomicU64,
    disconnects_sent: AtomicU64,
    disconnects_failed: AtomicU64,
    disconnects_dropped: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The hooks, by their index in [`Caller::down`].
#[derive(Debug, Clone, Copy)]
enum Hook {
    Connect = 0,
    Events = 1,
    Disconnect = 2,
}

impl Hook {
    fn name(self) -> &'static str {
        match self {
            Hook::Connect => "connect",
            Hook::Events => "events",
            Hook::Disconnect => "disconnect",
        }
    }
}

/// Why a call did not give an answer to use.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answered HTTP {0}")]
    Status(StatusCode),
    #[error("bad answer: {0}")]
    BadAnswer(String),
}

impl Caller {
    /// POSTs `body` to `url`: the status and the body, or why not.
    async fn post(
        &self,
        hook: Hook,
        url: &Uri,
        body: &Value,
    ) -> Result<(StatusCode, Bytes), CallError> {
        let started = tokio::time::Instant::now();
        let result = self.call(url, body).await;
        if let Some(telemetry) = self.telemetry.get() {
            let outcome = match &result {
                Ok((status, _)) if status.is_success() => "ok",
                Ok(_) => "status",
                Err(CallError::Timeout(_)) => "timeout",
                Err(CallError::Unreachable(_)) => "unreachable",
                Err(_) => "bad_answer",
            };
            let seconds = started.elapsed().as_secs_f64();
            telemetry.record(|| {
                metrics::histogram!(
                    "socketgate_hook_duration_seconds",
                    "hook" => hook.name(),
                    "outcome" => outcome
                )
                .record(seconds);
            });
        }
        result
    }

    async fn call(&self, url: &Uri, body: &Value) -> Result<(StatusCode, Bytes), CallError> {
        let request = Request::post(url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, "socketgate")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
        let call = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| CallError::Unreachable(error_chain(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| CallError::BadAnswer(format!("reading the body: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| CallError::Timeout(self.timeout))?
    }

    /// Records how a call to `hook` went; logs only when the backend goes
    /// down or comes back.
    fn record(&self, hook: Hook, url: &Uri, result: Result<(), &CallError>) {
        let down = &self.down[hook as usize];
        // Host, port and path only: user info or a query string may carry
        // a key.
        let url = format!(
            "{}:{}{}",
            url.host().unwrap_or_default(),
            url.port_u16().unwrap_or(80),
            url.path()
        );
        match result {
            Ok(()) => {
                if down.swap(false, Ordering::AcqRel) {
                    tracing::info!(hook = hook.name(), %url, "hook backend answers again");
                }
            }
            Err(error) => {
                if !down.swap(true, Ordering::AcqRel) {
                    tracing::warn!(hook = hook.name(), %url, %error, "hook backend down");
                } else {
                    tracing::debug!(hook = hook.name(), %error, "hook call failed");
                }
            }
        }
    }
}

/// An error and its sources, for the log (hyper's own message is only
/// "client error (Connect)").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The TLS client for https hooks: the system's certificates (when an
/// https hook is configured; they are read once, at start) and those of
/// `ca_files`.
fn client_tls(
    ca_files: &[PathBuf],
    https: bool,
) -> Result<tokio_rustls::rustls::ClientConfig, HooksError> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    if https {
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 && ca_files.is_empty() {
            tracing::warn!(
                errors = ?native.errors,
                "no system CA certificate found: https hooks will fail; install the ca-certificates package or give --hook-ca-file"
            );
        }
    }
    for path in ca_files {
        let bad = |why: String| HooksError::BadCa {
            path: path.clone(),
            why,
        };
        for cert in crate::tls::certificates(path).map_err(bad)? {
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    Ok(tokio_rustls::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn check_url(hook: &'static str, url: &Option<Uri>) -> Result<(), HooksError> {
    let Some(url) = url else { return Ok(()) };
    let bad = |why| HooksError::BadUrl {
        hook,
        url: url.to_string(),
        why,
    };
    match url.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("it must start with http:// or https://")),
    }
    if url.authority().is_none() {
        return Err(bad("it has no host"));
    }
    Ok(())
}

impl Hooks {
    /// Hooks with `config`, not yet on any namespace (see [`install`], or
    /// [`guard`](Self::guard) and [`attach`](Self::attach)).
    pub fn new(config: HooksConfig) -> Result<Hooks, HooksError> {
        check_url("connect", &config.connect)?;
        check_url("events", &config.events)?;
        check_url("disconnect", &config.disconnect)?;
        if config.timeout.is_zero() {
            return Err(HooksError::ZeroTimeout);
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.timeout));
        // https URLs go through the rustls connector; without one, the
        // store's contents are never read.
        connector.enforce_http(false);
        let https = [&config.connect, &config.events, &config.disconnect]
            .into_iter()
            .flatten()
            .any(|u| u.scheme_str() == Some("https"));
        let tls = client_tls(&config.ca_files, https)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let caller = Arc::new(Caller {
            client,
            timeout: config.timeout,
            stats: Counters::default(),
            down: Default::default(),
            telemetry: OnceLock::new(),
        });
        Ok(Hooks(Arc::new(Inner {
            config,
            caller,
            disconnects: OnceLock::new(),
        })))
    }

    /// Records every call's latency (histogram
    /// `socketgate_hook_duration_seconds{hook, outcome}`) in `telemetry`.
    pub fn set_telemetry(&self, telemetry: Arc<crate::telemetry::Telemetry>) {
        let _ = self.0.caller.telemetry.set(telemetry);
    }

    /// The configuration.
    pub fn config(&self) -> &HooksConfig {
        &self.0.config
    }

    /// The counters so far.
    pub fn stats(&self) -> HooksStats {
        let c = &self.0.caller.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HooksStats {
            connect_allowed: get(&c.connect_allowed),
            connect_refused: get(&c.connect_refused),
            connect_failed: get(&c.connect_failed),
            events_sent: get(&c.events_sent),
            events_failed: get(&c.events_failed),
            events_dropped: get(&c.events_dropped),
            disconnects_sent: get(&c.disconnects_sent),
            disconnects_failed: get(&c.disconnects_failed),
            disconnects_dropped: get(&c.disconnects_dropped),
            backend_down: self.0.caller.down.iter().any(|d| d.load(Ordering::Relaxed)),
        }
    }

    /// Puts the connect hook in front of `ns` (a connect middleware); does
    /// nothing when the connect hook is off.
    pub fn guard(&self, ns: &Namespace) {
        if self.0.config.connect.is_none() {
            return;
        }
        let hooks = self.clone();
        let path = ns.path().to_owned();
        ns.middleware(move |handshake| {
            let hooks = hooks.clone();
            let path = path.clone();
            async move { hooks.on_connect(&path, &handshake).await }
        });
    }

    /// Sets up the events and disconnect hooks on a socket that just
    /// connected (call it from the namespace's connect handler).
    pub fn attach(&self, socket: &Socket) {
        if self.0.config.events.is_some() {
            let (tx, rx) = mpsc::channel(EVENT_QUEUE);
            let hooks = self.clone();
            socket.on_fallback(move |_, mut event| {
                if !hooks.forwards(&event.name) {
                    tracing::trace!(event = %event.name, "no handler and no hook");
                    return;
                }
                match tx.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(e)) => {
                        event = e;
                        bump(&hooks.0.caller.stats.events_dropped);
                        let _ = event.ack(&json!({ "error": "busy" }));
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            });
            // One task per socket, one call at a time: the backend sees a
            // socket's events in the order the client sent them. It ends
            // when the socket leaves (its handlers, and the sender, go).
            tokio::spawn(self.clone().forward_events(socket.clone(), rx));
        }
        if self.0.config.disconnect.is_some() {
            let hooks = self.clone();
            socket.on_disconnect(move |socket, reason| hooks.notify_disconnect(socket, reason));
        }
    }

    /// Whether events named `name` go to the events hook.
    fn forwards(&self, name: &str) -> bool {
        self.0
            .config
            .event_patterns
            .iter()
            .any(|p| glob_matches(p, name))
    }

    async fn on_connect(&self, path: &str, handshake: &Handshake) -> Result<(), ConnectError> {
        let Some(url) = &self.0.config.connect else {
            return Ok(());
        };
        let caller = &self.0.caller;
        let body = connect_request(path, handshake, &self.0.config.headers);
        let answer = caller
            .post(Hook::Connect, url, &body)
            .await
            .and_then(|(status, body)| ConnectAnswer::parse(status, &body));
        caller.record(Hook::Connect, url, answer.as_ref().map(|_| ()));
        match answer {
            Ok(ConnectAnswer::Allow { data, rooms }) => {
                bump(&caller.stats.connect_allowed);
                if let Some(data) = data {
                    handshake.set_socket_data(data);
                }
                for room in rooms {
                    handshake.join_socket(room);
                }
                Ok(())
            }
            Ok(ConnectAnswer::Refuse { message, data }) => {
                bump(&caller.stats.connect_refused);
                let mut err = ConnectError::new(message);
                if let Some(data) = data {
                    err = err.with_data(data);
                }
                Err(err)
            }
            Err(e) => {
                bump(&caller.stats.connect_failed);
                Err(ConnectError::close_connection(format!(
                    "connect hook failed: {e}"
                )))
            }
        }
    }

    async fn forward_events(self, socket: Socket, mut events: mpsc::Receiver<Event>) {
        while let Some(event) = events.recv().await {
            self.forward(&socket, event).await;
        }
    }

    async fn forward(&self, socket: &Socket, mut event: Event) {
        let Some(url) = &self.0.config.events else {
            return;
        };
        let caller = &self.0.caller;
        let body = json!({
            "namespace": socket.ns(),
            "socket_id": socket.id().as_str(),
            "data": socket.data(),
            "event": event.name,
            "args": to_base64(&event.payload),
        });
        let answer = caller
            .post(Hook::Events, url, &body)
            .await
            .and_then(|(status, body)| EventAnswer::parse(status, &body));
        caller.record(Hook::Events, url, answer.as_ref().map(|_| ()));
        let answer = match answer {
            Ok(answer) => answer,
            Err(_) => {
                bump(&caller.stats.events_failed);
                let _ = event.ack(&json!({ "error": "backend unavailable" }));
                return;
            }
        };
        bump(&caller.stats.events_sent);
        let ns = socket.namespace();
        for emit in answer.emits {
            let target = emit
                .rooms
                .into_iter()
                .fold(ns.all(), |target, room| target.to(room));
            if let Err(e) = target.emit_payload(&emit.event, &from_base64(emit.args)) {
                tracing::debug!(event = %emit.event, error = %e, "an emit from the events hook was not sent");
            }
        }
        if let Some(ack) = event.take_ack() {
            let _ = ack.send_payload(&from_base64(answer.ack));
        }
    }

    fn notify_disconnect(&self, socket: &Socket, reason: DisconnectReason) {
        let caller = &self.0.caller;
        let Some(queue) = self.disconnect_queue() else {
            bump(&caller.stats.disconnects_dropped);
            return;
        };
        let body = json!({
            "namespace": socket.ns(),
            "socket_id": socket.id().as_str(),
            "data": socket.data(),
            "reason": reason.to_string(),
        });
        if queue.try_send(body).is_err() {
            bump(&caller.stats.disconnects_dropped);
        }
    }

    /// The disconnect queue, its task started on first use; `None` outside
    /// a Tokio runtime (nothing can send then) or without the hook.
    fn disconnect_queue(&self) -> Option<&mpsc::Sender<Value>> {
        let url = self.0.config.disconnect.clone()?;
        if let Some(queue) = self.0.disconnects.get() {
            return Some(queue);
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(self.0.disconnects.get_or_init(|| {
            let (tx, rx) = mpsc::channel(DISCONNECT_QUEUE);
            runtime.spawn(send_disconnects(self.0.caller.clone(), url, rx));
            tx
        }))
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("config", &self.0.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Sends the disconnect notifications, a few at once, until the hooks are
/// gone.
async fn send_disconnects(caller: Arc<Caller>, url: Uri, mut queue: mpsc::Receiver<Value>) {
    let slots = Arc::new(Semaphore::new(DISCONNECT_CONCURRENCY));
    while let Some(body) = queue.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (caller, url) = (caller.clone(), url.clone());
        tokio::spawn(async move {
            let result = match caller.post(Hook::Disconnect, &url, &body).await {
                Ok((status, _)) if status.is_success() => Ok(()),
                Ok((status, _)) => Err(CallError::Status(status)),
                Err(e) => Err(e),
            };
            caller.record(Hook::Disconnect, &url, result.as_ref().map(|_| ()));
            match result {
                Ok(()) => bump(&caller.stats.disconnects_sent),
                Err(_) => bump(&caller.stats.disconnects_failed),
            }
            drop(slot);
        });
    }
}

/// The connect hook's request.
fn connect_request(path: &str, handshake: &Handshake, allowed: &[String]) -> Value {
    let mut headers = Map::new();
    for name in handshake.headers.keys() {
        if !allowed
            .iter()
            .any(|a| a.eq_ignore_ascii_case(name.as_str()))
        {
            continue;
        }
        let values: Vec<&str> = handshake
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        // http's header names are lower case already.
        headers.insert(name.as_str().to_owned(), Value::from(values.join(", ")));
    }
    let mut query = Map::new();
    let mut transport = Value::Null;
    if let Some(q) = handshake.url.query() {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            if k == "transport" {
                transport = Value::from(v.as_ref());
            }
            if !ENGINE_PARAMS.contains(&k.as_ref()) {
                query.insert(k.into_owned(), Value::from(v.into_owned()));
            }
        }
    }
    json!({
        "namespace": path,
        "auth": handshake.auth,
        "headers": headers,
        "query": query,
        "address": handshake.address.map(|a| a.ip().to_string()),
        "transport": transport,
    })
}

/// The connect hook's answer.
#[derive(Debug, PartialEq)]
enum ConnectAnswer {
    Allow {
        data: Option<Value>,
        rooms: Vec<String>,
    },
    Refuse {
        message: String,
        data: Option<Value>,
    },
}

impl ConnectAnswer {
    fn parse(status: StatusCode, body: &[u8]) -> Result<Self, CallError> {
        #[derive(Deserialize)]
        struct Wire {
            allow: bool,
            #[serde(default)]
            data: Option<Value>,
            #[serde(default)]
            rooms: Option<Vec<String>>,
            #[serde(default)]
            message: Option<String>,
        }
        if status != StatusCode::OK {
            return Err(CallError::Status(status));
        }
        let wire: Wire =
            serde_json::from_slice(body).map_err(|e| CallError::BadAnswer(e.to_string()))?;
        Ok(if wire.allow {
            ConnectAnswer::Allow {
                data: wire.data,
                rooms: wire.rooms.unwrap_or_default(),
            }
        } else {
            ConnectAnswer::Refuse {
                message: wire.message.unwrap_or_else(|| "refused".to_owned()),
                data: wire.data,
            }
        })
    }
}

/// The events hook's answer.
#[derive(Debug, Default, Deserialize)]
struct EventAnswer {
    #[serde(default)]
    ack: Vec<Value>,
    #[serde(default)]
    emits: Vec<EmitAnswer>,
}

#[derive(Debug, Deserialize)]
struct EmitAnswer {
    #[serde(default)]
    rooms: Vec<String>,
    event: String,
    #[serde(default)]
    args: Vec<Value>,
}

impl EventAnswer {
    fn parse(status: StatusCode, body: &[u8]) -> Result<Self, CallError> {
        if status != StatusCode::OK && status != StatusCode::NO_CONTENT {
            return Err(CallError::Status(status));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(EventAnswer::default());
        }
        serde_json::from_slice(body).map_err(|e| CallError::BadAnswer(e.to_string()))
    }
}

/// Event arguments as JSON for a backend: binary attachments inline as
/// `{"_base64": "…"}`.
fn to_base64(payload: &Payload) -> Vec<Value> {
    fn walk(v: &Value, bins: &[Bytes]) -> Value {
        match v {
            Value::Object(o) if o.get("_placeholder") == Some(&Value::Bool(true)) => {
                let bytes = o
                    .get("num")
                    .and_then(Value::as_u64)
                    .and_then(|n| bins.get(usize::try_from(n).ok()?));
                match bytes {
                    Some(b) => {
                        json!({ "_base64": base64::engine::general_purpose::STANDARD.encode(b) })
                    }
                    None => v.clone(),
                }
            }
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), walk(v, bins))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(|v| walk(v, bins)).collect()),
            _ => v.clone(),
        }
    }
    payload
        .args
        .iter()
        .map(|v| walk(v, &payload.bins))
        .collect()
}

/// Arguments from a backend: each `{"_base64": "…"}` (an object with
/// that one key, valid base64) becomes a binary attachment.
fn from_base64(args: Vec<Value>) -> Payload {
    fn walk(v: Value, payload: &mut Payload) -> Value {
        match v {
            Value::Object(o) => {
                if o.len() == 1
                    && let Some(Value::String(text)) = o.get("_base64")
                    && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text)
                {
                    return payload.attach(bytes);
                }
                Value::Object(o.into_iter().map(|(k, v)| (k, walk(v, payload))).collect())
            }
            Value::Array(a) => Value::Array(a.into_iter().map(|v| walk(v, payload)).collect()),
            v => v,
        }
    }
    let mut payload = Payload::new();
    for arg in args {
        let arg = walk(arg, &mut payload);
        payload.args.push(arg);
    }
    payload
}

/// Whether `name` matches `pattern`, where `*` stands for any run of
/// characters (none included) and everything else for itself.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and how much of the name it took so far.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            // Let the star take one more byte.
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// Sets up the main namespace for `config`: the connect hook in front of
/// it, the events and disconnect hooks on each socket. The relay is off;
/// see [`install_with_relay`].
pub fn install(io: &SocketIo, config: HooksConfig) -> Result<Hooks, HooksError> {
    let hooks = Hooks::new(config)?;
    let on_socket = hooks.clone();
    let ns = io.ns("/", move |socket| on_socket.attach(&socket));
    hooks.guard(&ns);
    Ok(hooks)
}

/// [`install`] with the [relay](crate::gateway::relay) on the same
/// namespace, within `limits`. The relay's events (`join`, `leave`,
/// `chat`, `echo`) are the relay's; the events hook gets the others that
/// match its patterns. With no hook configured this is
/// [`relay_with`](crate::gateway::relay_with).
pub fn install_with_relay(
    io: &SocketIo,
    config: HooksConfig,
    limits: RelayLimits,
) -> Result<(Hooks, Relay), HooksError> {
    let hooks = Hooks::new(config)?;
    let relay = Relay::new(limits);
    let (on_socket, relay_on_socket) = (hooks.clone(), relay.clone());
    let ns = io.ns("/", move |socket| {
        relay_on_socket.attach(&socket);
        on_socket.attach(&socket);
    });
    relay.room_policy_on(&ns);
    hooks.guard(&ns);
    Ok((hooks, relay))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("chat.*", "chat.send"));
        assert!(glob_matches("chat.*", "chat."));
        assert!(!glob_matches("chat.*", "chat"));
        assert!(!glob_matches("chat.*", "xchat.send"));
        assert!(glob_matches("*.send", "chat.send"));
        assert!(glob_matches("a*b*c", "aXXbYYbc"));
        assert!(!glob_matches("a*b*c", "aXXbYYbd"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(glob_matches("é*", "été"));
    }

    #[test]
    fn connect_answers() {
        let ok = StatusCode::OK;
        assert_eq!(
            ConnectAnswer::parse(ok, br#"{"allow":true,"data":{"user":1},"rooms":["u:1"]}"#)
                .unwrap(),
            ConnectAnswer::Allow {
                data: Some(json!({"user": 1})),
                rooms: vec!["u:1".into()]
            }
        );
        assert_eq!(
            ConnectAnswer::parse(ok, br#"{"allow":true}"#).unwrap(),
            ConnectAnswer::Allow {
                data: None,
                rooms: vec![]
            }
        );
        assert_eq!(
            ConnectAnswer::parse(ok, br#"{"allow":false,"message":"no","data":{"code":4}}"#)
                .unwrap(),
            ConnectAnswer::Refuse {
                message: "no".into(),
                data: Some(json!({"code": 4}))
            }
        );
        // Anything else is a failure, never a refusal.
        for (status, body) in [
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                &br#"{"allow":false}"#[..],
            ),
            (StatusCode::CREATED, br#"{"allow":true}"#),
            (ok, b""),
            (ok, b"allow"),
            (ok, br#"{"allowed":true}"#),
            (ok, br#"{"allow":"yes"}"#),
            (ok, br#"{"allow":true,"rooms":"lobby"}"#),
        ] {
            assert!(
                ConnectAnswer::parse(status, body).is_err(),
                "{status} {}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn event_answers() {
        let a = EventAnswer::parse(StatusCode::NO_CONTENT, b"").unwrap();
        assert!(a.ack.is_empty() && a.emits.is_empty());
        let a = EventAnswer::parse(
            StatusCode::OK,
            br#"{"ack":[1],"emits":[{"event":"e"},{"rooms":["r"],"event":"f","args":[2]}]}"#,
        )
        .unwrap();
        assert_eq!(a.ack, vec![json!(1)]);
        assert_eq!(a.emits[1].rooms, vec!["r".to_owned()]);
        assert!(EventAnswer::parse(StatusCode::BAD_GATEWAY, b"{}").is_err());
        assert!(EventAnswer::parse(StatusCode::OK, br#"{"emits":[{}]}"#).is_err());
    }

    #[test]
    fn binary_round_trips_through_base64() {
        let mut payload = Payload::new().arg("x").bin(&b"\x00\x01"[..]);
        let nested = payload.attach(&b"\xff"[..]);
        payload.args.push(json!({ "file": nested }));
        let json = to_base64(&payload);
        assert_eq!(
            json,
            vec![
                json!("x"),
                json!({"_base64": "AAE="}),
                json!({"file": {"_base64": "/w=="}})
            ]
        );
        let back = from_base64(json);
        assert_eq!(back.binary(1).map(|b| &b[..]), Some(&b"\x00\x01"[..]));
        assert_eq!(back.bins.len(), 2);
        assert_eq!(back.args[2]["file"]["_placeholder"], true);
        // Not base64, or not alone: left as it is.
        let kept = from_base64(vec![
            json!({"_base64": "%%"}),
            json!({"_base64": "AA==", "x": 1}),
        ]);
        assert!(kept.bins.is_empty());
    }

    #[test]
    fn urls() {
        let url = |s: &str| Some(s.parse::<Uri>().unwrap());
        assert!(check_url("connect", &url("http://127.0.0.1:8080/hook")).is_ok());
        assert!(check_url("connect", &None).is_ok());
        assert!(check_url("connect", &url("https://example.com/hook")).is_ok());
        let err = check_url("connect", &url("ftp://example.com/hook")).unwrap_err();
        assert!(err.to_string().contains("http:// or https://"), "{err}");
        assert!(check_url("events", &url("/hook")).is_err());
    }
}
