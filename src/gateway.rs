//! The standalone gateway behind the `socketgate` binary: a relay on the
//! main namespace, an index page, and serving with graceful shutdown.
//!
//! The relay lets clients talk to each other without any server code:
//!
//! | client emits | the gateway |
//! |---|---|
//! | `join` (room) | adds the socket to the room; acks with the room, or `{"error": …}` when refused |
//! | `leave` (room) | removes it; acks with the room |
//! | `chat` ({room?, …}) | emits `chat` with the same object plus `from` (the sender's socket id) to the room, or to everyone without `room` (sender included) |
//! | `echo` (…args) | emits `echo` back with the same arguments; acks with them when asked |
//!
//! `GET /health` answers `{"status":"ok","sessions":N,…}` (the engine's
//! counters, and `recovery_ms`: the recovery window, 0 when off).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::serve::IncomingStream;
use http::{HeaderValue, Request, Response, StatusCode, header};
use serde_json::Value;
use tokio::net::TcpListener;
use tower::Layer;
use tower::util::MapRequest;

use crate::cluster::{
    ClusterStore, ClusterStoreConfig, NodeRegistry, NodesConfig, RedisBus, RedisConfig,
};
use crate::engine::Engine;
use crate::rate::TokenBucket;
use crate::socketio::{Event, Namespace, Room, Socket, SocketIo, SocketIoConfig};

/// What the gateway serves and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Listening address; default 127.0.0.1:3000.
    pub addr: SocketAddr,
    /// The socket.io settings.
    pub io: SocketIoConfig,
    /// How long a shutdown waits for connections to flush and close;
    /// default 10 s.
    pub shutdown_grace: Duration,
    /// Serve the demo page from this folder instead of the copy built into
    /// the binary (for working on the page); default none.
    pub demo_dir: Option<PathBuf>,
    /// The official socket.io-client browser bundle, served at
    /// `<path>/socket.io.min.js` when the file exists; default
    /// `client-demo/node_modules/socket.io-client/dist/socket.io.min.js`
    /// (what `npm ci` in `client-demo/` installs).
    pub client_bundle: Option<PathBuf>,
    /// The socket.io Admin UI's namespace; default none (off).
    pub admin: Option<crate::admin::AdminConfig>,
    /// The Admin UI's built page (`@socket.io/admin-ui`'s `ui/dist`),
    /// served at `/admin/` when [`admin`](Self::admin) is on; default
    /// `client-demo/node_modules/@socket.io/admin-ui/ui/dist` (what `npm
    /// ci` in `client-demo/` installs).
    pub admin_ui_dir: Option<PathBuf>,
    /// Redis for a cluster of nodes (the Node socket.io Redis adapter's
    /// format); default none: one node, in memory.
    pub redis_url: Option<String>,
    /// The secret the nodes of a cluster share: with it, a request for a
    /// session another node owns is forwarded there (no sticky load
    /// balancer needed); default none: such a request gets "Session ID
    /// unknown".
    pub cluster_secret: Option<String>,
    /// This node's id in the cluster (1–65535); default none: a free
    /// random one.
    pub node_id: Option<u16>,
    /// Where the other nodes reach this one; default the listening address
    /// (which must then not be a wildcard such as 0.0.0.0).
    pub advertise_addr: Option<SocketAddr>,
    /// Serve HTTPS and WSS with this certificate; default none: plain
    /// HTTP.
    pub tls: Option<crate::tls::TlsFiles>,
    /// The HTTP API for backends; default off (no key).
    pub api: crate::api::ApiConfig,
    /// Serve the API on an address of its own; default none: under
    /// `/api/` on the main listener.
    pub api_addr: Option<SocketAddr>,
    /// The backend hooks; default none.
    pub hooks: crate::hooks::HooksConfig,
    /// The relay on the main namespace and its limits; default on, 50
    /// events/s per socket (burst 100). `None`: no relay.
    pub relay: Option<RelayLimits>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            io: SocketIoConfig::default(),
            shutdown_grace: Duration::from_secs(10),
            demo_dir: None,
            client_bundle: Some(PathBuf::from(
                "client-demo/node_modules/socket.io-client/dist/socket.io.min.js",
            )),
            admin: None,
            admin_ui_dir: Some(PathBuf::from(
                "client-demo/node_modules/@socket.io/admin-ui/ui/dist",
            )),
            redis_url: None,
            cluster_secret: None,
            node_id: None,
            advertise_addr: None,
            tls: None,
            api: crate::api::ApiConfig::default(),
            api_addr: None,
            hooks: crate::hooks::HooksConfig::default(),
            relay: Some(RelayLimits::default()),
        }
    }
}

impl GatewayConfig {
    /// Sets [`addr`](Self::addr).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Sets [`io`](Self::io).
    pub fn io(mut self, io: SocketIoConfig) -> Self {
        self.io = io;
        self
    }

    /// Sets [`demo_dir`](Self::demo_dir).
    pub fn demo_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.demo_dir = dir;
        self
    }

    /// Sets [`admin`](Self::admin) and [`admin_ui_dir`](Self::admin_ui_dir).
    pub fn admin(
        mut self,
        admin: Option<crate::admin::AdminConfig>,
        ui_dir: Option<PathBuf>,
    ) -> Self {
        self.admin = admin;
        self.admin_ui_dir = ui_dir;
        self
    }

    /// Sets [`client_bundle`](Self::client_bundle).
    pub fn client_bundle(mut self, path: Option<PathBuf>) -> Self {
        self.client_bundle = path;
        self
    }

    /// Sets [`redis_url`](Self::redis_url).
    pub fn redis_url(mut self, url: Option<String>) -> Self {
        self.redis_url = url;
        self
    }

    /// Sets [`cluster_secret`](Self::cluster_secret).
    pub fn cluster_secret(mut self, secret: Option<String>) -> Self {
        self.cluster_secret = secret;
        self
    }

    /// Sets [`node_id`](Self::node_id).
    pub fn node_id(mut self, id: Option<u16>) -> Self {
        self.node_id = id;
        self
    }

    /// Sets [`advertise_addr`](Self::advertise_addr).
    pub fn advertise_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.advertise_addr = addr;
        self
    }

    /// Sets [`api`](Self::api) and [`api_addr`](Self::api_addr).
    pub fn api(mut self, api: crate::api::ApiConfig, addr: Option<SocketAddr>) -> Self {
        self.api = api;
        self.api_addr = addr;
        self
    }

    /// Sets [`hooks`](Self::hooks).
    pub fn hooks(mut self, hooks: crate::hooks::HooksConfig) -> Self {
        self.hooks = hooks;
        self
    }

    /// Sets [`relay`](Self::relay).
    pub fn relay(mut self, relay: Option<RelayLimits>) -> Self {
        self.relay = relay;
        self
    }

    /// Sets [`tls`](Self::tls).
    pub fn tls(mut self, tls: Option<crate::tls::TlsFiles>) -> Self {
        self.tls = tls;
        self
    }

    /// Sets [`shutdown_grace`](Self::shutdown_grace).
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }
}

/// Lets the client choose its rooms: `join` (room) and `leave` (room),
/// each acknowledged with the room name, or with `{"error": "…"}` when the
/// room is refused: a name that is not a string, is empty or too long, is
/// shaped like a socket id (every socket's private room), is refused by the
/// namespace's [room policy](crate::socketio::Namespace::room_policy), or
/// would pass [`max_client_rooms`](crate::socketio::SocketIoConfig::max_client_rooms).
pub fn self_service_rooms(socket: &Socket) {
    self_service_rooms_within(socket, None);
}

/// [`self_service_rooms`], each request within the socket's event budget
/// when it has one.
fn self_service_rooms_within(socket: &Socket, gate: Option<&Gate>) {
    on_within(socket, gate, "join", |s, mut ev| {
        let answer = room_arg(&ev).and_then(|name| {
            s.join_client_room(&name)
                .map(|_| name)
                .map_err(|e| e.to_string())
        });
        ack_room(&mut ev, answer);
    });
    on_within(socket, gate, "leave", |s, mut ev| {
        let answer = room_arg(&ev).and_then(|name| {
            s.leave_client_room(&name)
                .map(|_| name)
                .map_err(|e| e.to_string())
        });
        ack_room(&mut ev, answer);
    });
}

/// Handles `name` on `socket`; with a gate, an event past the socket's
/// budget is dropped instead (acknowledged with `{"error":"rate
/// limited"}` when the client asked) and counted.
fn on_within<F>(socket: &Socket, gate: Option<&Gate>, name: &str, handler: F)
where
    F: Fn(&Socket, Event) + Send + Sync + 'static,
{
    match gate {
        None => socket.on(name, handler),
        Some(gate) => {
            let gate = gate.clone();
            socket.on(name, move |s, mut ev| {
                if gate.admits() {
                    handler(s, ev);
                } else {
                    let _ = ev.ack(&serde_json::json!({ "error": "rate limited" }));
                }
            });
        }
    }
}

/// The room name a client sent as its first argument.
fn room_arg(ev: &Event) -> Result<String, String> {
    match ev.payload.args.first() {
        Some(Value::String(name)) => Ok(name.clone()),
        _ => Err("the room must be a string".to_owned()),
    }
}

fn ack_room(ev: &mut Event, answer: Result<String, String>) {
    let _ = match answer {
        Ok(room) => ev.ack(&room),
        Err(error) => {
            tracing::debug!(%error, "room refused");
            ev.ack(&serde_json::json!({ "error": error }))
        }
    };
}

/// The prefix of the rooms clients of the relay join: they live apart
/// from every room the server (or a backend) uses, so a client can never
/// join its way into someone else's messages.
pub const RELAY_ROOM_PREFIX: &str = "relay:";

/// How much each client may send through the relay: a token bucket per
/// socket over every relay event (`join`, `leave`, `chat`, `echo`). An
/// event past the budget is dropped and counted, and acknowledged with
/// `{"error":"rate limited"}` when the client asked for an
/// acknowledgement; the client stays connected. Rooms per socket are
/// bounded by [`SocketIoConfig::max_client_rooms`] (default 50).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayLimits {
    /// Events per second per socket, the steady rate; default 50.
    pub events_per_second: u32,
    /// Events a socket may send at once after a quiet spell (the bucket's
    /// size); default 100.
    pub burst: u32,
}

impl Default for RelayLimits {
    fn default() -> Self {
        RelayLimits {
            events_per_second: 50,
            burst: 100,
        }
    }
}

impl RelayLimits {
    /// Sets [`events_per_second`](Self::events_per_second).
    pub fn events_per_second(mut self, n: u32) -> Self {
        self.events_per_second = n;
        self
    }

    /// Sets [`burst`](Self::burst).
    pub fn burst(mut self, n: u32) -> Self {
        self.burst = n;
        self
    }
}

/// The relay: its limits and its counters. Cheap to clone; see
/// [`relay_with`], or [`Relay::attach`] to put it on sockets of a namespace
/// of your own.
#[derive(Debug, Clone)]
pub struct Relay {
    limits: RelayLimits,
    rate_limited: Arc<AtomicU64>,
}

impl Relay {
    /// A relay with these limits.
    pub fn new(limits: RelayLimits) -> Self {
        Relay {
            limits,
            rate_limited: Arc::default(),
        }
    }

    /// Its limits.
    pub fn limits(&self) -> RelayLimits {
        self.limits
    }

    /// Events dropped so far because a socket was past its budget.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Sets the room policy of the relay on `ns`: rooms clients join
    /// live under [`RELAY_ROOM_PREFIX`].
    pub fn room_policy_on(&self, ns: &Namespace) {
        ns.room_policy(|_, name| Ok(Room::from(format!("{RELAY_ROOM_PREFIX}{name}"))));
    }

    /// Handles the relay's events on `socket`, each within the socket's
    /// budget.
    pub fn attach(&self, socket: &Socket) {
        let gate = Gate {
            bucket: Arc::new(Mutex::new(TokenBucket::new(
                self.limits.events_per_second,
                self.limits.burst,
                Instant::now(),
            ))),
            dropped: self.rate_limited.clone(),
        };
        let gate = Some(&gate);
        self_service_rooms_within(socket, gate);
        on_within(socket, gate, "chat", |s, ev| {
            let mut msg: Value = ev.data().unwrap_or_default();
            if !msg.is_object() {
                msg = serde_json::json!({ "text": msg });
            }
            msg["from"] = Value::from(s.id().as_str());
            let ns = s.namespace();
            let _ = match msg.get("room").and_then(Value::as_str) {
                Some(name) => match s.client_room(name) {
                    Ok(room) => ns.to(room).emit("chat", &msg),
                    Err(e) => {
                        tracing::debug!(error = %e, "chat to a refused room");
                        Ok(())
                    }
                },
                None => ns.emit("chat", &msg),
            };
        });
        on_within(socket, gate, "echo", |s, mut ev| {
            let _ = s.emit_payload("echo", &ev.payload);
            if let Some(ack) = ev.take_ack() {
                let _ = ack.send_payload(&ev.payload);
            }
        });
    }
}

/// One socket's event budget.
#[derive(Clone)]
struct Gate {
    bucket: Arc<Mutex<TokenBucket>>,
    dropped: Arc<AtomicU64>,
}

impl Gate {
    /// Whether the next event is within the budget (counted when not).
    fn admits(&self) -> bool {
        let ok = self
            .bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_take(Instant::now());
        if !ok {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::trace!("relay event over the rate limit dropped");
        }
        ok
    }
}

/// Installs the relay on the main namespace, with the default
/// [`RelayLimits`].
pub fn relay(io: &SocketIo) {
    relay_with(io, RelayLimits::default());
}

/// Installs the relay on the main namespace with `limits`; the returned
/// handle reads its counters.
pub fn relay_with(io: &SocketIo, limits: RelayLimits) -> Relay {
    let relay = Relay::new(limits);
    let on_socket = relay.clone();
    let ns = io.ns("/", move |socket| on_socket.attach(&socket));
    relay.room_policy_on(&ns);
    relay
}

/// The demo page (`client-demo/`), built into the binary.
const DEMO: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../client-demo/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../client-demo/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../client-demo/style.css"),
    ),
    (
        "mini-client.js",
        "text/javascript; charset=utf-8",
        include_str!("../client-demo/mini-client.js"),
    ),
];

fn asset(content_type: &'static str, body: impl Into<Body>) -> Response<Body> {
    let mut res = Response::new(body.into());
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// The cluster this gateway is a node of.
#[derive(Clone, Default)]
struct Cluster {
    bus: Option<RedisBus>,
    nodes: Option<NodeRegistry>,
    store: Option<ClusterStore>,
    /// The backend hooks and the relay, when on.
    hooks: Option<crate::hooks::Hooks>,
    relay: Option<Relay>,
    telemetry: Arc<crate::telemetry::Telemetry>,
}

/// `GET /health`: the engine's live counters, for monitoring and for
/// load balancers' health checks.
fn health(engine: &Engine, recovery_ms: u128, cluster: &Cluster) -> Response<Body> {
    let stats = engine.stats();
    let bus = cluster.bus.as_ref().map(|bus| {
        let s = bus.stats();
        let nodes = cluster.nodes.as_ref().map(|n| {
            let n = n.stats();
            serde_json::json!({ "alive": n.alive, "joined": n.joined, "died": n.died })
        });
        serde_json::json!({
            "bus": if s.up { "up" } else { "down" },
            "uid": bus.uid(),
            "published": s.published,
            "unpublished": s.unpublished,
            "received": s.received,
            "malformed": s.malformed,
            "dropped_incoming": s.dropped_incoming,
            "nodes": nodes,
        })
    });
    let body = serde_json::json!({
        "status": if engine.is_shutting_down() { "shutting down" } else { "ok" },
        "node_id": engine.config().node_id,
        "sessions": stats.sessions,
        "volatile_dropped": stats.volatile_dropped,
        "slow_consumer_closes": stats.slow_consumer_closes,
        "dropped_full": stats.dropped_full,
        "recovery_ms": recovery_ms,
        "cluster": bus,
        "recovery": cluster.store.as_ref().map(|store| {
            let s = store.stats();
            serde_json::json!({
                "recovered": s.recovered,
                "not_recovered": s.not_recovered,
                "appended": s.appended,
                "delivered": s.delivered,
                "sessions_dropped": s.sessions_dropped,
                "malformed": s.malformed,
            })
        }),
        "routing": {
            "forwarded": stats.forwarded,
            "forward_failures": stats.forward_failures,
            "relayed": stats.relayed,
            "served_forwarded": stats.served_forwarded,
            "refused_forwards": stats.refused_forwards,
            "owner_unknown": stats.owner_unknown,
        },
    });
    asset("application/json", body.to_string())
}

/// `GET /ready`: 200 while the node takes new clients; 503 once it is
/// shutting down (so a load balancer stops sending it handshakes first)
/// and while its cluster's Redis is unreachable.
fn ready(engine: &Engine, cluster: &Cluster) -> Response<Body> {
    let bus_down = cluster.bus.as_ref().is_some_and(RedisBus::is_down);
    let reason = if engine.is_shutting_down() {
        Some("shutting down")
    } else if bus_down {
        Some("Redis unreachable")
    } else {
        None
    };
    let mut res = asset(
        "application/json",
        match reason {
            None => serde_json::json!({ "ready": true }),
            Some(why) => serde_json::json!({ "ready": false, "reason": why }),
        }
        .to_string(),
    );
    if reason.is_some() {
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    res
}

/// A file read now, or 404 when it cannot be read.
async fn file(path: &Path, content_type: &'static str) -> Response<Body> {
    match tokio::fs::read(path).await {
        Ok(bytes) => asset(content_type, bytes),
        Err(_) => not_found(),
    }
}

fn not_found() -> Response<Body> {
    let mut res = Response::new(Body::from("Not Found"));
    *res.status_mut() = StatusCode::NOT_FOUND;
    res
}

/// The Admin UI page's `index.html` without its links to outside sites
/// (web fonts and icons from CDNs): the gateway serves the dashboard on
/// its own, and a browser without Internet access would wait on them.
fn admin_index(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<link") {
        out.push_str(&rest[..start]);
        let tag_len = rest[start..]
            .find('>')
            .map_or(rest.len() - start, |e| e + 1);
        let tag = &rest[start..start + tag_len];
        if !tag.contains("href=\"http://") && !tag.contains("href=\"https://") {
            out.push_str(tag);
        }
        rest = &rest[start + tag_len..];
    }
    out.push_str(rest);
    out
}

/// The content type of a file of the Admin UI page, by its extension.
fn admin_content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("ttf") => "font/ttf",
        _ => "application/octet-stream",
    }
}

/// `GET /admin/<name>`: a file of the Admin UI page; names that step out
/// of its folder are not found.
async fn admin_file(dir: &Path, name: &str) -> Response<Body> {
    let relative = Path::new(name);
    if name.is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return not_found();
    }
    let path = dir.join(relative);
    if name == "index.html" {
        return match tokio::fs::read_to_string(&path).await {
            Ok(html) => asset("text/html; charset=utf-8", admin_index(&html)),
            Err(_) => not_found(),
        };
    }
    file(&path, admin_content_type(&path)).await
}

/// The gateway's own routes: the demo page, the client bundle when present,
/// `/health` and `/ready`. socket.io is not among them: mount `io.layer()` around
/// the router, as [`serve`] does. The socket.io path must be the default
/// one for the page and the bundle route to line up.
pub fn router(io: &SocketIo, config: &GatewayConfig) -> Router {
    router_in_cluster(io, config, Cluster::default())
}

/// [`router`], whose `/health` also reports the cluster.
fn router_in_cluster(io: &SocketIo, config: &GatewayConfig, cluster: Cluster) -> Router {
    let mut router = Router::new();
    for &(name, content_type, embedded) in DEMO {
        let dir = config.demo_dir.clone();
        let route = if name == "index.html" {
            "/".to_owned()
        } else {
            format!("/{name}")
        };
        router = router.route(
            &route,
            get(move || async move {
                match &dir {
                    Some(dir) => file(&dir.join(name), content_type).await,
                    None => asset(content_type, embedded),
                }
            }),
        );
    }
    if let (Some(_), Some(dir)) = (&config.admin, &config.admin_ui_dir) {
        let (index_dir, files_dir) = (dir.clone(), dir.clone());
        router = router
            .route(
                "/admin",
                get(|| async {
                    let mut res = Response::new(Body::empty());
                    *res.status_mut() = StatusCode::PERMANENT_REDIRECT;
                    res.headers_mut()
                        .insert(header::LOCATION, HeaderValue::from_static("/admin/"));
                    res
                }),
            )
            .route(
                "/admin/",
                get(move || {
                    let dir = index_dir.clone();
                    async move { admin_file(&dir, "index.html").await }
                }),
            )
            .route(
                "/admin/{*name}",
                get(
                    move |axum::extract::Path(name): axum::extract::Path<String>| {
                        let dir = files_dir.clone();
                        async move { admin_file(&dir, &name).await }
                    },
                ),
            );
    }
    let bundle = config.client_bundle.clone();
    let engine = io.engine().clone();
    let recovery_ms = io
        .config()
        .recovery
        .as_ref()
        .map_or(0, |r| r.max_disconnection_duration.as_millis());
    let (ready_engine, ready_cluster) = (engine.clone(), cluster.clone());
    let telemetry = cluster.telemetry.clone();
    let (metrics_io, metrics_cluster) = (io.clone(), cluster.clone());
    router
        .route(
            "/metrics",
            get(move || {
                let (io, cluster, telemetry) = (
                    metrics_io.clone(),
                    metrics_cluster.clone(),
                    telemetry.clone(),
                );
                async move {
                    let parts = crate::telemetry::ClusterParts {
                        bus: cluster.bus.as_ref(),
                        nodes: cluster.nodes.as_ref(),
                        store: cluster.store.as_ref(),
                        hooks: cluster.hooks.as_ref(),
                        relay: cluster.relay.as_ref(),
                    };
                    asset(
                        "text/plain; version=0.0.4; charset=utf-8",
                        telemetry.render(&io, parts),
                    )
                }
            }),
        )
        .route(
            "/health",
            get(move || {
                let (engine, cluster) = (engine.clone(), cluster.clone());
                async move { health(&engine, recovery_ms, &cluster) }
            }),
        )
        .route(
            "/ready",
            get(move || {
                let (engine, cluster) = (ready_engine.clone(), ready_cluster.clone());
                async move { ready(&engine, &cluster) }
            }),
        )
        .route(
            "/socket.io/socket.io.min.js",
            get(move || async move {
                // Read on each request: installing the bundle needs no restart.
                match &bundle {
                    Some(path) => file(path, "text/javascript; charset=utf-8").await,
                    None => not_found(),
                }
            }),
        )
}

/// Serves the gateway on `listener` until `shutdown` completes, then tells
/// every client (they reconnect later), flushes and closes within the
/// grace period.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let mut io_config = config.io.clone();
    let mut cluster = Cluster::default();
    if let Some(url) = &config.redis_url {
        let bus = RedisBus::new(RedisConfig::new(url.clone())).map_err(std::io::Error::other)?;
        tracing::info!(uid = bus.uid(), "cluster on Redis {}", redact(url));
        let advertise = config.advertise_addr.unwrap_or(addr);
        if advertise.ip().is_unspecified() {
            return Err(std::io::Error::other(format!(
                "listening on {addr}: give --advertise-addr, the address the other nodes reach this one on"
            )));
        }
        let secret = config.cluster_secret.clone().unwrap_or_default();
        let mut nodes_config = NodesConfig::new(url.clone(), advertise, secret.clone());
        nodes_config.node_id = config.node_id;
        let nodes = NodeRegistry::join(nodes_config)
            .await
            .map_err(std::io::Error::other)?;
        io_config.engine.node_id = nodes.id();
        if secret.is_empty() {
            tracing::warn!(
                "no --cluster-secret: a request for a session of another node gets 'Session ID unknown' (the load balancer must be sticky); give every node the same secret to forward them"
            );
        }
        // With recovery on, sessions and packets live in Redis: a client
        // recovers on whichever node it comes back to.
        let store = match &io_config.recovery {
            Some(recovery) => Some(
                ClusterStore::new(ClusterStoreConfig::new(url.clone(), recovery))
                    .await
                    .map_err(std::io::Error::other)?,
            ),
            None => None,
        };
        cluster.bus = Some(bus);
        cluster.nodes = Some(nodes);
        cluster.store = store;
    }
    let mut builder = SocketIo::builder().config(io_config);
    if let Some(bus) = &cluster.bus {
        builder = builder.adapter(bus.adapter_factory());
    }
    if let Some(store) = &cluster.store {
        builder = builder.cluster_store(store.clone());
    }
    let io = builder.build().map_err(std::io::Error::other)?;
    if let Some(nodes) = &cluster.nodes
        && config
            .cluster_secret
            .as_ref()
            .is_some_and(|s| !s.is_empty())
    {
        io.engine().route_sessions(Arc::new(nodes.clone()));
    }
    // The relay (on by default, limited) and the backend hooks.
    let other = std::io::Error::other;
    match (config.hooks.any(), config.relay) {
        (false, Some(limits)) => cluster.relay = Some(relay_with(&io, limits)),
        (_, Some(limits)) => {
            let (hooks, relay) =
                crate::hooks::install_with_relay(&io, config.hooks.clone(), limits)
                    .map_err(other)?;
            (cluster.hooks, cluster.relay) = (Some(hooks), Some(relay));
        }
        (_, None) => {
            cluster.hooks = Some(crate::hooks::install(&io, config.hooks.clone()).map_err(other)?);
        }
    }
    if let Some(hooks) = &cluster.hooks {
        hooks.set_telemetry(cluster.telemetry.clone());
    }
    if let Some(admin) = &config.admin {
        crate::admin::install(&io, admin.clone()).map_err(std::io::Error::other)?;
        tracing::info!(
            "Admin UI at /admin/ ({})",
            if admin.auth.is_some() {
                "login required"
            } else {
                "no login: keep it local"
            }
        );
    }
    // The HTTP API: under /api/ here, or on its own listener.
    let api = config.api.is_enabled().then(|| {
        let telemetry = cluster.telemetry.clone();
        crate::api::router(&io, config.api.clone()).layer(axum::middleware::from_fn(
            move |req: Request<Body>, next: axum::middleware::Next| {
                let telemetry = telemetry.clone();
                async move {
                    let endpoint = api_endpoint(req.uri().path());
                    let res = next.run(req).await;
                    let status = match res.status().as_u16() {
                        200..=299 => "2xx",
                        400..=499 => "4xx",
                        _ => "5xx",
                    };
                    telemetry.record(|| {
                        metrics::counter!(
                            "socketgate_api_calls_total",
                            "endpoint" => endpoint,
                            "status" => status
                        )
                        .increment(1);
                    });
                    res
                }
            },
        ))
    });
    let (api_here, api_apart) = match (api, config.api_addr) {
        (Some(api), Some(addr)) => (None, Some((api, addr))),
        (api, _) => (api, None),
    };
    let api_stop = tokio_util::sync::CancellationToken::new();
    if let Some((api, api_addr)) = api_apart {
        let listener = TcpListener::bind(api_addr).await?;
        tracing::info!("HTTP API served on http://{}", listener.local_addr()?);
        let stop = api_stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, api)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the HTTP API listener failed");
            }
        });
    }
    // The engine sits in front of the router rather than inside it as a
    // route layer: socket.io requests, nearly all of the traffic, then skip
    // routing and the per-request clone of the routed service (8 % less
    // server CPU per polling round trip). Each connection's requests carry
    // its peer address, as axum's `ConnectInfo` does for a router.
    let (nodes, store) = (cluster.nodes.clone(), cluster.store.clone());
    let mut routes = router_in_cluster(&io, &config, cluster);
    if let Some(api) = api_here {
        routes = routes.merge(api);
    }
    let app = io.layer().layer(routes);
    let grace = config.shutdown_grace;
    let io_for_shutdown = io.clone();
    let drain = async move {
        shutdown.await;
        tracing::info!(
            "shutting down: closing {} sessions",
            io_for_shutdown.engine().session_count()
        );
        if !io_for_shutdown.shutdown(grace).await {
            tracing::warn!("some sessions did not close within {grace:?}");
        }
        // The sessions the closes kept go to Redis before the node
        // says it is gone: the others recover its clients.
        if let Some(store) = &store
            && !store.flush(Duration::from_secs(2)).await
        {
            tracing::warn!(
                "some sessions could not be written to Redis before exiting: their clients start afresh"
            );
        }
        if let Some(nodes) = &nodes {
            nodes.leave().await;
        }
        api_stop.cancel();
    };
    match &config.tls {
        Some(files) => {
            let tls = crate::tls::Reloadable::new(files.clone()).map_err(std::io::Error::other)?;
            tls.reload_on_sighup();
            tracing::info!("socketgate listening on https://{addr}");
            serve_tls(listener, tls, app, drain, grace).await;
        }
        None => {
            let make_service = tower::service_fn(move |stream: IncomingStream<'_, TcpListener>| {
                std::future::ready(Ok::<_, Infallible>(with_peer(
                    app.clone(),
                    *stream.remote_addr(),
                )))
            });
            tracing::info!("socketgate listening on http://{addr}");
            axum::serve(listener, make_service)
                .with_graceful_shutdown(drain)
                .await?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// The gateway's service for one connection: its requests carry the
/// peer's address, as axum's `ConnectInfo` does for a router.
fn with_peer<S>(
    app: S,
    peer: SocketAddr,
) -> MapRequest<S, impl Fn(Request<Body>) -> Request<Body> + Clone> {
    let peer = ConnectInfo(peer);
    MapRequest::new(app, move |mut req: Request<Body>| {
        req.extensions_mut().insert(peer);
        req
    })
}

/// Serves HTTPS (and WSS) on `listener` until `drain` completes, then waits
/// up to `grace` for the connections in flight.
async fn serve_tls<S>(
    listener: TcpListener,
    tls: crate::tls::Reloadable,
    app: S,
    drain: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let stop = tokio_util::sync::CancellationToken::new();
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(drain);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, mostly: wait a moment.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            // Finished connections are reaped as they go.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut drain => break,
        };
        let acceptor = tls.acceptor();
        let service = hyper_util::service::TowerToHyperService::new(MapRequest::new(
            with_peer(app.clone(), peer),
            |req: Request<hyper::body::Incoming>| req.map(Body::new),
        ));
        let stop = stop.clone();
        connections.spawn(async move {
            let _ = tcp.set_nodelay(true);
            // A client that never completes its TLS handshake does not hold
            // a task for long.
            let stream =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => {
                    // Finishes the request in flight, then closes.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    stop.cancel();
    let all_closed = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if all_closed.is_err() {
        tracing::warn!("some HTTPS connections were still open after {grace:?}");
    }
}

/// An API path as a metrics label: one of a fixed set.
fn api_endpoint(path: &str) -> &'static str {
    match path.trim_end_matches('/') {
        "/api/emit" => "emit",
        "/api/join" => "join",
        "/api/leave" => "leave",
        "/api/disconnect" => "disconnect",
        "/api/sockets" => "sockets",
        "/api/batch" => "batch",
        _ => "other",
    }
}

/// A Redis URL without its password, for the log.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://…@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
