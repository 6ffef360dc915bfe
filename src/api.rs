//! The HTTP API for application backends: publish events to rooms, move
//! sockets between rooms, disconnect them and list them, from any language,
//! with one HTTP call. Every call goes through the namespace's broadcast
//! operator, so in a cluster (see [`RedisBus`](crate::RedisBus)) it reaches
//! the sockets of every node.
//!
//! Mount [`router`] in front of (or merged into) the gateway's routes; it
//! serves everything under `/api/`:
//!
//! ```
//! use socketgate::api::{self, ApiConfig};
//! use socketgate::socketio::{SocketIo, SocketIoConfig};
//! use tower::Layer;
//!
//! let io = SocketIo::new(SocketIoConfig::default());
//! let routes = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .merge(api::router(&io, ApiConfig::default().key("a-long-random-key")));
//! let app = io.layer().layer(routes);
//! # drop(app);
//! ```
//!
//! # Authentication
//!
//! Every call carries one of the configured keys, as
//! `Authorization: Bearer <key>` or `X-API-Key: <key>`; keys are compared
//! in constant time. A call without a valid key gets 401. With no key
//! configured the API is off: every `/api/` path answers 404 (it is never
//! open).
//!
//! # Answers and errors
//!
//! Success is `200 {"result": …}`. Failure is
//! `{"error": {"code": "<snake_case>", "message": "…"}}` with:
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `invalid_json` | the body is not a JSON object |
//! | 400 | `invalid_field` | a field is missing, of the wrong type, out of range or unknown (the message names it: `rooms[1]: a string expected`) |
//! | 400 | `invalid_base64` | a `{"_base64": …}` argument does not decode |
//! | 400 | `reserved_event` | the event name is socket.io's own (`connect`, `disconnect`, …) |
//! | 400 | `missing_selector` | join, leave or disconnect without `rooms`, `sockets` or `"all": true` |
//! | 401 | `unauthorized` | no key, or a wrong one |
//! | 404 | `not_found` | no such endpoint (or the API is off) |
//! | 404 | `unknown_namespace` | the namespace does not exist on this server |
//! | 405 | `method_not_allowed` | e.g. `GET /api/emit` (the `Allow` header says which) |
//! | 413 | `payload_too_large` | the body is over [`ApiConfig::max_body_bytes`] |
//! | 413 | `message_too_large` | the event is larger than a client's whole outbound queue |
//! | 503 | `cluster_unavailable` | the cluster bus could not take the event, or the other nodes could not be asked for their sockets |
//! | 504 | `cluster_unavailable` | an emit with acks could not ask the other nodes (only this node's sockets got it) |
//! | 504 | `ack_timeout` | the ack wait did not finish in its time plus a grace of 5 s |
//!
//! # Selecting sockets
//!
//! Commands address the sockets of one namespace (`"namespace"`, default
//! `"/"`, an unknown one is 404): those in any of `"rooms"` or whose id is
//! in `"sockets"` (each socket's own room: this works on every node), minus
//! those in any of `"except"`. Each of the three is a list of strings (one
//! string alone is a list of one). `emit` without `rooms` and `sockets`
//! goes to everyone; `join`, `leave` and `disconnect` change sockets, so
//! they need `rooms` or `sockets`, or `"all": true` to mean every socket.
//! Unknown fields are refused: a misspelt `"romos"` must not turn a message
//! for one room into one for everyone.
//!
//! Rooms here are the server's room names as they are. The gateway's relay
//! keeps the rooms its clients join by themselves under `relay:`
//! (`socket.emit("join", "lobby")` joins `relay:lobby`), so a backend
//! publishing to those uses the prefix.
//!
//! # Binary arguments
//!
//! Any JSON object `{"_base64": "<standard base64>"}` in `args` (at any
//! depth, and alone in its object) is sent as binary: socket.io clients
//! receive a `Buffer` (Node) or an `ArrayBuffer` (browsers). Binary in ack
//! answers comes back the same way.
//!
//! # Endpoints
//!
//! ## `POST /api/emit`
//!
//! ```json
//! {"namespace": "/", "rooms": ["news"], "except": ["muted"], "sockets": [],
//!  "event": "headline", "args": ["text", {"_base64": "AQID"}],
//!  "volatile": false, "ack_timeout_ms": 2000}
//! ```
//!
//! Only `event` is required. Answers `{"result": {}}` once the event is
//! handed to every recipient's queue (and to the cluster). With
//! `ack_timeout_ms` (1 to [`ApiConfig::max_ack_timeout`]) every recipient
//! is asked to acknowledge and the call waits up to that long:
//! `{"result": {"acks": [[…args of one answer…], …], "missing": 1,
//! "silent_nodes": 0}}`, where `missing` counts the recipients that did
//! not answer in time and `silent_nodes` the other nodes that did not even
//! say how many sockets they asked. Answers from sockets on other nodes
//! carry only their first argument (the Node Redis adapter's format).
//!
//! ```sh
//! curl -H "Authorization: Bearer $KEY" -d '{"rooms":["news"],"event":"headline","args":["hello"]}' \
//!   http://127.0.0.1:3000/api/emit
//! ```
//!
//! ## `POST /api/join`, `POST /api/leave`
//!
//! ```json
//! {"namespace": "/", "sockets": ["<socket id>"], "rooms": [], "except": [], "join": ["vip"]}
//! {"namespace": "/", "rooms": ["vip"], "leave": ["vip", "beta"]}
//! ```
//!
//! The selected sockets join (leave) every room of `join` (`leave`).
//! Answers `{"result": {}}`; on other nodes it happens as they read it
//! from the bus (as with the Node adapter, they do not answer).
//!
//! ```sh
//! curl -H "X-API-Key: $KEY" -d '{"sockets":["'$SID'"],"join":["vip"]}' http://127.0.0.1:3000/api/join
//! ```
//!
//! ## `POST /api/disconnect`
//!
//! ```json
//! {"namespace": "/", "rooms": ["banned"], "sockets": [], "close": false}
//! ```
//!
//! The selected sockets are disconnected from the namespace (the client
//! sees "io server disconnect" and does not reconnect by itself); with
//! `"close": true` their whole connections are closed instead (the client
//! sees "transport close" and reconnects). Answers `{"result": {}}`.
//!
//! ```sh
//! curl -H "X-API-Key: $KEY" -d '{"rooms":["banned"]}' http://127.0.0.1:3000/api/disconnect
//! ```
//!
//! ## `GET /api/sockets?namespace=/&room=r`
//!
//! The sockets of the namespace on every node (`room`, repeatable: only
//! those in any of these rooms):
//! `{"result": {"sockets": [{"id": "…", "rooms": ["…"], "data": …,
//! "handshake": {"address", "time", "issued", "secure", "xdomain", "query",
//! "user_agent"?, "origin"?, "auth"?}}], "silent_nodes": 0}}`. The
//! handshake is a summary: request headers (cookies, credentials) are not
//! given out, and the client's `auth` object only with
//! [`ApiConfig::expose_auth`].
//!
//! ```sh
//! curl -H "X-API-Key: $KEY" 'http://127.0.0.1:3000/api/sockets?room=vip'
//! ```
//!
//! ## `POST /api/batch`
//!
//! ```json
//! {"commands": [{"op": "join", "sockets": ["<id>"], "join": ["vip"]},
//!               {"op": "emit", "rooms": ["vip"], "event": "welcome"}]}
//! ```
//!
//! Up to [`ApiConfig::max_batch`] commands, each an `emit`, `join`,
//! `leave` or `disconnect` body with its `op`. The whole batch is checked
//! first: one malformed command answers 400 (naming it,
//! `commands[1].event: …`) and none runs. Then they run one after the
//! other, in order (an emit with acks finishes before the next command
//! starts), and every command runs even when one before it failed (a
//! namespace gone, a message too large): each answer says how it went,
//! `{"result": {"results": [{"result": {}}, {"error": {"code", "message"}}]}}`.
//!
//! ```sh
//! curl -H "X-API-Key: $KEY" -d '{"commands":[{"op":"join","sockets":["'$SID'"],"join":["vip"]},{"op":"emit","rooms":["vip"],"event":"welcome"}]}' \
//!   http://127.0.0.1:3000/api/batch
//! ```

mod binary;
mod command;
mod error;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::any;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};

use crate::socketio::{BroadcastOperator, Namespace, SocketIo};
use command::{Bounds, Command, Emit, Target};
use error::{ApiError, json_response};

/// How long an ack wait may overrun its `ack_timeout_ms` (the other
/// nodes' answers on their way) before the call gives up with 504.
const ACK_GRACE: Duration = Duration::from_secs(5);

/// The API's settings.
#[derive(Clone)]
#[non_exhaustive]
pub struct ApiConfig {
    /// The keys a call may present; default none: the API is off (every
    /// `/api/` path answers 404). Empty keys are ignored.
    pub keys: Vec<String>,
    /// The largest request body; default 1 MiB. Larger ones get 413.
    pub max_body_bytes: usize,
    /// The longest `ack_timeout_ms` an emit may ask for; default 60 s.
    pub max_ack_timeout: Duration,
    /// The most commands in one batch; default 100.
    pub max_batch: usize,
    /// Whether `GET /api/sockets` gives out each client's `auth` object
    /// (it often holds a token); default false.
    pub expose_auth: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            keys: Vec::new(),
            max_body_bytes: 1024 * 1024,
            max_ack_timeout: Duration::from_secs(60),
            max_batch: 100,
            expose_auth: false,
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves: configurations get logged.
        f.debug_struct("ApiConfig")
            .field("keys", &self.keys.len())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_ack_timeout", &self.max_ack_timeout)
            .field("max_batch", &self.max_batch)
            .field("expose_auth", &self.expose_auth)
            .finish()
    }
}

impl ApiConfig {
    /// Adds a key to [`keys`](Self::keys).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(key.into());
        self
    }

    /// Sets [`keys`](Self::keys).
    pub fn keys(mut self, keys: Vec<String>) -> Self {
        self.keys = keys;
        self
    }

    /// Sets [`max_body_bytes`](Self::max_body_bytes).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets [`max_ack_timeout`](Self::max_ack_timeout).
    pub fn max_ack_timeout(mut self, timeout: Duration) -> Self {
        self.max_ack_timeout = timeout;
        self
    }

    /// Sets [`max_batch`](Self::max_batch).
    pub fn max_batch(mut self, commands: usize) -> Self {
        self.max_batch = commands;
        self
    }

    /// Sets [`expose_auth`](Self::expose_auth).
    pub fn expose_auth(mut self, expose: bool) -> Self {
        self.expose_auth = expose;
        self
    }

    /// Whether a key is configured: without one the API is off.
    pub fn is_enabled(&self) -> bool {
        self.keys.iter().any(|k| !k.is_empty())
    }
}

/// The API's routes (`/api` and everything under `/api/`), for `io`.
/// Merge them into the application's router; the router keeps `io` alive.
pub fn router(io: &SocketIo, config: ApiConfig) -> Router {
    let api = Arc::new(Api {
        io: io.clone(),
        keys: config
            .keys
            .iter()
            .filter(|k| !k.is_empty())
            .map(|k| k.as_bytes().to_vec())
            .collect(),
        config,
    });
    let handler = any(move |req: Request<Body>| {
        let api = api.clone();
        async move {
            match api.call(req).await {
                Ok(res) => res,
                Err(e) => e.into_response(),
            }
        }
    });
    Router::new()
        .route("/api", handler.clone())
        .route("/api/", handler.clone())
        .route("/api/{*rest}", handler)
}

struct Api {
    io: SocketIo,
    keys: Vec<Vec<u8>>,
    config: ApiConfig,
}

/// The endpoints, and the method each takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Emit,
    Join,
    Leave,
    Disconnect,
    Sockets,
    Batch,
}

impl Endpoint {
    fn of(path: &str) -> Option<Self> {
        Some(match path.trim_end_matches('/') {
            "/api/emit" => Endpoint::Emit,
            "/api/join" => Endpoint::Join,
            "/api/leave" => Endpoint::Leave,
            "/api/disconnect" => Endpoint::Disconnect,
            "/api/sockets" => Endpoint::Sockets,
            "/api/batch" => Endpoint::Batch,
            _ => return None,
        })
    }

    fn method(self) -> Method {
        match self {
            Endpoint::Sockets => Method::GET,
            _ => Method::POST,
        }
    }

    /// [`method`](Self::method) for the `Allow` header.
    fn allow(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Endpoint::Sockets => "GET",
            _ => "POST",
        })
    }

    /// The command name of the endpoints that run one.
    fn op(self) -> Option<&'static str> {
        match self {
            Endpoint::Emit => Some("emit"),
            Endpoint::Join => Some("join"),
            Endpoint::Leave => Some("leave"),
            Endpoint::Disconnect => Some("disconnect"),
            Endpoint::Sockets | Endpoint::Batch => None,
        }
    }
}

impl Api {
    async fn call(&self, req: Request<Body>) -> Result<Response<Body>, ApiError> {
        if self.keys.is_empty() {
            return Err(ApiError::not_found(
                "the API is off: no API key is configured",
            ));
        }
        if !self.authorized(req.headers()) {
            tracing::debug!(path = req.uri().path(), "API call without a valid key");
            return Err(ApiError::unauthorized());
        }
        let endpoint = Endpoint::of(req.uri().path())
            .ok_or_else(|| ApiError::not_found(format!("no endpoint {}", req.uri().path())))?;
        if req.method() != endpoint.method() {
            let mut res = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{} {} is not served: use {}",
                    req.method(),
                    req.uri().path(),
                    endpoint.method()
                ),
            )
            .into_response();
            res.headers_mut().insert(header::ALLOW, endpoint.allow());
            return Ok(res);
        }
        let result = match endpoint {
            Endpoint::Sockets => self.sockets(req.uri().query().unwrap_or_default()).await?,
            Endpoint::Batch => {
                let body = self.body(req).await?;
                self.batch(body).await?
            }
            other => {
                let body = self.body(req).await?;
                let op = other.op().unwrap_or_default();
                self.run(Command::parse(op, body, "", self.bounds())?)
                    .await?
            }
        };
        Ok(json_response(StatusCode::OK, &json!({ "result": result })))
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            max_ack_timeout: self.config.max_ack_timeout,
        }
    }

    /// Whether the request presents one of the keys, as a bearer token or
    /// in `X-API-Key`.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| {
                let v = v.as_bytes();
                (v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer "))
                    .then(|| v[7..].trim_ascii())
            });
        let api_key = headers
            .get_all("x-api-key")
            .iter()
            .map(|v| v.as_bytes().trim_ascii());
        let mut ok = false;
        // Every presented value against every key, without stopping early.
        for presented in bearer.chain(api_key) {
            for key in &self.keys {
                ok |= constant_time_eq(key, presented);
            }
        }
        ok
    }

    /// The request body as JSON, bounded by `max_body_bytes`.
    async fn body(&self, req: Request<Body>) -> Result<Value, ApiError> {
        let limit = self.config.max_body_bytes;
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is over {limit} bytes"),
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(too_large());
        }
        let bytes = http_body_util::Limited::new(req.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_json",
                        format!("the body could not be read: {e}"),
                    )
                }
            })?
            .to_bytes();
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "the body is empty: a JSON object expected",
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not JSON: {e}"),
            )
        })
    }

    fn namespace(&self, path: &str) -> Result<Namespace, ApiError> {
        self.io
            .of(path)
            .ok_or_else(|| ApiError::unknown_namespace(path))
    }

    fn operator(&self, target: &Target) -> Result<BroadcastOperator, ApiError> {
        let mut op = self.namespace(&target.namespace)?.all();
        for room in target.rooms.iter().chain(&target.sockets) {
            op = op.to(room.clone());
        }
        for room in &target.except {
            op = op.except(room.clone());
        }
        Ok(op)
    }

    /// Runs one command; its `result`.
    async fn run(&self, command: Command) -> Result<Value, ApiError> {
        match command {
            Command::Emit(emit) => self.emit(emit).await,
            Command::Join(target, rooms) => {
                let op = self.operator(&target)?;
                for room in rooms {
                    op.join(room);
                }
                Ok(json!({}))
            }
            Command::Leave(target, rooms) => {
                let op = self.operator(&target)?;
                for room in rooms {
                    op.leave(room);
                }
                Ok(json!({}))
            }
            Command::Disconnect(target, close) => {
                let op = self.operator(&target)?;
                if close {
                    op.close_connections();
                } else {
                    op.disconnect_sockets();
                }
                Ok(json!({}))
            }
        }
    }

    async fn emit(&self, emit: Emit) -> Result<Value, ApiError> {
        let mut op = self.operator(&emit.target)?;
        if emit.volatile {
            op = op.volatile();
        }
        let Some(timeout) = emit.ack_timeout else {
            op.emit_payload(&emit.event, &emit.payload)?;
            return Ok(json!({}));
        };
        let op = op.timeout(timeout);
        let wait = op.emit_payload_with_ack(&emit.event, &emit.payload);
        let results = tokio::time::timeout(timeout + ACK_GRACE, wait)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "ack_timeout",
                    "the acks could not be gathered in time",
                )
            })??;
        if let Some(e) = &results.remote_error {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "cluster_unavailable",
                format!(
                    "the other nodes could not be asked for acks ({e}); this node's {} sockets got the event",
                    results.replies.len() + results.missing.len()
                ),
            ));
        }
        let acks: Vec<Value> = results
            .replies
            .iter()
            .map(|(_, answer)| answer)
            .chain(&results.remote_replies)
            .map(|answer| Value::from(binary::encode_args(answer)))
            .collect();
        let missing = results.missing.len() as u64 + results.remote_missing;
        Ok(json!({ "acks": acks, "missing": missing, "silent_nodes": results.silent_nodes }))
    }

    /// `GET /api/sockets?namespace=…&room=…`.
    async fn sockets(&self, query: &str) -> Result<Value, ApiError> {
        let mut namespace = None;
        let mut rooms = Vec::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "namespace" if namespace.is_none() => namespace = Some(value.into_owned()),
                "namespace" => return Err(ApiError::field("namespace", "given twice")),
                "room" if !value.is_empty() => rooms.push(crate::socketio::Room::from(&*value)),
                "room" => return Err(ApiError::field("room", "empty")),
                other => return Err(ApiError::field(other, "unknown query parameter")),
            }
        }
        let target = Target {
            namespace: namespace.unwrap_or_else(|| "/".to_owned()),
            rooms,
            sockets: Vec::new(),
            except: Vec::new(),
        };
        let found = self.operator(&target)?.fetch_sockets().await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster_unavailable",
                format!("the other nodes could not be asked: {e}"),
            )
        })?;
        let sockets: Vec<Value> = found
            .items
            .iter()
            .map(|socket| {
                let mut rooms: Vec<&str> = socket.rooms().iter().map(|r| &**r).collect();
                rooms.sort_unstable();
                json!({
                    "id": socket.id().as_str(),
                    "rooms": rooms,
                    "data": socket.data(),
                    "handshake": handshake_summary(socket.handshake(), self.config.expose_auth),
                })
            })
            .collect();
        Ok(json!({ "sockets": sockets, "silent_nodes": found.silent_nodes }))
    }

    /// `POST /api/batch`: all commands checked, then run in order.
    async fn batch(&self, body: Value) -> Result<Value, ApiError> {
        let Value::Object(mut body) = body else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "the body: a JSON object expected",
            ));
        };
        let list = match body.remove("commands") {
            Some(Value::Array(list)) => list,
            Some(_) => return Err(ApiError::field("commands", "a list of commands expected")),
            None => return Err(ApiError::field("commands", "missing")),
        };
        if let Some(key) = body.keys().next() {
            return Err(ApiError::field(key, "unknown field"));
        }
        if list.len() > self.config.max_batch {
            return Err(ApiError::field(
                "commands",
                format!("at most {} commands", self.config.max_batch),
            ));
        }
        let mut commands = Vec::with_capacity(list.len());
        for (i, item) in list.into_iter().enumerate() {
            let at = format!("commands[{i}]");
            let Value::Object(mut fields) = item else {
                return Err(ApiError::field(&at, "a JSON object expected"));
            };
            let op = match fields.remove("op") {
                Some(Value::String(op)) => op,
                Some(_) => return Err(ApiError::field(&format!("{at}.op"), "a string expected")),
                None => return Err(ApiError::field(&format!("{at}.op"), "missing")),
            };
            commands.push(Command::parse(
                &op,
                Value::Object(fields),
                &at,
                self.bounds(),
            )?);
        }
        let mut results = Vec::with_capacity(commands.len());
        for (i, command) in commands.into_iter().enumerate() {
            results.push(match self.run(command).await {
                Ok(result) => json!({ "result": result }),
                Err(e) => json!({ "error": e.within(&format!("commands[{i}]")).to_json() }),
            });
        }
        Ok(json!({ "results": results }))
    }
}

/// What an API caller learns of a socket's handshake (in the reference
/// server's shape, from any node): no request headers but the user agent
/// and the origin (cookies and credentials stay private), and the `auth`
/// object only when asked for.
fn handshake_summary(handshake: &Value, expose_auth: bool) -> Value {
    let mut out = Map::new();
    for key in ["address", "time", "issued", "secure", "xdomain", "query"] {
        if let Some(v) = handshake.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    let headers = handshake.get("headers");
    for (header, key) in [("user-agent", "user_agent"), ("origin", "origin")] {
        if let Some(v) = headers.and_then(|h| h.get(header)) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    if expose_auth && let Some(auth) = handshake.get("auth") {
        out.insert("auth".to_owned(), auth.clone());
    }
    Value::Object(out)
}

/// Whether `key == presented`, in a time that depends on their lengths
/// only, never on where they differ (a key cannot be guessed byte by byte
/// from response times).
fn constant_time_eq(key: &[u8], presented: &[u8]) -> bool {
    let mut diff = key.len() ^ presented.len();
    for (i, &byte) in presented.iter().enumerate() {
        let other = key.get(i).copied().unwrap_or(!byte);
        diff |= usize::from(byte ^ other);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"secret", b""));
        assert!(!constant_time_eq(b"a", b"b"));
    }

    #[test]
    fn the_handshake_summary_leaves_headers_and_auth_out() {
        let hs = json!({
            "headers": { "cookie": "session=1", "authorization": "Basic x", "user-agent": "node", "origin": "https://a" },
            "time": "t", "address": "127.0.0.1", "xdomain": true, "secure": false, "issued": 5,
            "url": "/socket.io/?token=x", "query": { "EIO": "4" }, "auth": { "token": "t" },
        });
        let summary = handshake_summary(&hs, false);
        assert_eq!(
            summary,
            json!({ "address": "127.0.0.1", "time": "t", "issued": 5, "secure": false,
                    "xdomain": true, "query": { "EIO": "4" }, "user_agent": "node", "origin": "https://a" })
        );
        assert_eq!(
            handshake_summary(&hs, true)["auth"],
            json!({ "token": "t" })
        );
    }
}
