//! The server side of the socket.io Admin UI (`@socket.io/admin-ui` 0.5.x):
//! the `/admin` namespace the dashboard connects to.
//!
//! What the dashboard hears, as the Node `instrument()` sends it:
//!
//! | event | when | arguments |
//! |---|---|---|
//! | `session` | after a login with username and password | a session id the UI reconnects with |
//! | `config` | on connect | `{supportedFeatures}` |
//! | `all_sockets` | on connect | every socket of every namespace |
//! | `server_stats` | every 2 s | `{serverId, hostname, pid, uptime, clientsCount, pollingClientsCount, aggregatedEvents, namespaces}` |
//! | `socket_connected` | a socket joined a namespace | the socket, the time |
//! | `socket_disconnected` | a socket left | namespace, socket id, reason, time |
//! | `room_joined`, `room_left` | a socket joined or left a room | namespace, room, socket id, time |
//! | `socket_updated` | a client upgraded to WebSocket, or a socket's data changed | `{id, nsp, transport}` or `{id, nsp, data}` |
//! | `event_received` | a client sent an event (any namespace but the dashboard's) | namespace, socket id, `[event, …args]`, time |
//! | `event_sent` | an event went to a socket (an emit, or each recipient of a broadcast) | namespace, socket id, `[event, …args]`, time |
//!
//! Everything from `all_sockets` down is the development mode's
//! ([`AdminMode::Development`], the default, as the Node server's unless
//! `NODE_ENV=production`); in [`AdminMode::Production`] the dashboard gets
//! `config` and `server_stats` only, and the socket paths carry no admin
//! code at all.
//!
//! and the commands it sends (refused, by not being listened to, in
//! read-only mode): `emit` (nsp, room, event, …args), `join` (nsp, room,
//! filter), `leave` (nsp, room, filter), `_disconnect` (nsp, close, filter);
//! the filter is a room or a socket id (every socket is in its own room),
//! or empty for the whole namespace.
//!
//! In a cluster every node reports (`server_stats`, the live events) to
//! the dashboards of every node through the adapter, `all_sockets` asks
//! the other nodes, and the commands are cluster-wide broadcasts.
//!
//! The live events are told by the socket layer as they happen (see
//! `socketio::Observer`), and are sent without recovery: a dashboard that
//! reconnects asks for `all_sockets` again, so they are never retained
//! for it, nor written to a cluster's recovery stream. While no dashboard
//! is connected nothing is built or sent: in a cluster each node asks the
//! others every second whether one is connected to them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::engine::{EngineStats, TransportKind};
use crate::socketio::{
    ConnectError, DisconnectReason, Event, Namespace, Observer, Payload, Room, Socket, SocketId,
    SocketIo, WeakNamespace, WeakSocketIo,
};

/// The dashboard's login: a username and a bcrypt hash of the password.
#[derive(Clone)]
#[non_exhaustive]
pub struct AdminAuth {
    /// The username the dashboard must give.
    pub username: String,
    /// A bcrypt hash (`$2b$…`) of the password.
    pub password_hash: String,
}

impl AdminAuth {
    /// A login with `username` and a bcrypt `password_hash`.
    pub fn new(username: impl Into<String>, password_hash: impl Into<String>) -> Self {
        AdminAuth {
            username: username.into(),
            password_hash: password_hash.into(),
        }
    }
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How the admin namespace is served.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdminConfig {
    /// The namespace the dashboard connects to; default `/admin`.
    pub namespace: String,
    /// The login; default none: anyone who reaches the namespace is in
    /// (for local use only: the dashboard shows every socket's handshake).
    pub auth: Option<AdminAuth>,
    /// Refuse the dashboard's commands (emit, join, leave, disconnect);
    /// default off.
    pub read_only: bool,
    /// The server's name on the dashboard; default the host name.
    pub server_id: Option<String>,
    /// How often `server_stats` is sent; default 2 s (at least 100 ms).
    pub stats_interval: Duration,
    /// What the dashboard is told; default [`AdminMode::Development`].
    pub mode: AdminMode,
}

/// How much the dashboard is told, as the Node server's `mode` option.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AdminMode {
    /// Every socket, room and event, as they change: the dashboard's
    /// Sockets, Rooms, Clients and Events pages.
    #[default]
    Development,
    /// `server_stats` only (the dashboard's overview): nothing about single
    /// sockets, and no admin code on the socket paths.
    Production,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            namespace: "/admin".to_owned(),
            auth: None,
            read_only: false,
            server_id: None,
            stats_interval: Duration::from_secs(2),
            mode: AdminMode::Development,
        }
    }
}

impl AdminConfig {
    /// Sets [`auth`](Self::auth).
    pub fn auth(mut self, auth: Option<AdminAuth>) -> Self {
        self.auth = auth;
        self
    }

    /// Sets [`read_only`](Self::read_only).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets [`namespace`](Self::namespace).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets [`mode`](Self::mode).
    pub fn mode(mut self, mode: AdminMode) -> Self {
        self.mode = mode;
        self
    }
}

/// Why the admin namespace could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The password hash is not a bcrypt hash.
    #[error("the admin password hash is not a valid bcrypt hash: {0}")]
    BadHash(String),
    /// The server has a monitor already (the admin namespace was installed
    /// twice in development mode).
    #[error("the Admin UI is installed already on this server: install it once")]
    Twice,
}

/// The features the dashboard may use, as the Node server names them.
fn features(read_only: bool, mode: AdminMode) -> Vec<&'static str> {
    let mut f = if read_only {
        Vec::new()
    } else {
        vec![
            "EMIT",
            "JOIN",
            "LEAVE",
            "DISCONNECT",
            "MJOIN",
            "MLEAVE",
            "MDISCONNECT",
        ]
    };
    f.push("AGGREGATED_EVENTS");
    // ALL_EVENTS is what makes the UI show its sockets, rooms, clients
    // and events pages.
    if mode == AdminMode::Development {
        f.push("ALL_EVENTS");
    }
    f
}

/// Installs the admin namespace on `io` and starts its stats task (so it
/// must be called inside a tokio runtime). The task ends with the server.
pub fn install(io: &SocketIo, config: AdminConfig) -> Result<(), AdminError> {
    if let Some(auth) = &config.auth {
        // A wrong hash is a setup mistake: say so at start, not at login.
        bcrypt::verify("", &auth.password_hash).map_err(|e| AdminError::BadHash(e.to_string()))?;
    }
    if config.mode == AdminMode::Development && io.observed() {
        return Err(AdminError::Twice);
    }
    let sessions: Arc<Mutex<Sessions>> = Arc::default();
    let weak = io.downgrade();
    let (read_only, mode) = (config.read_only, config.mode);
    let auth = config.auth.clone();
    let on_connect_sessions = sessions.clone();
    let audience: Arc<Audience> = Arc::default();
    let on_connect_audience = audience.clone();
    let ns = io.ns(&config.namespace, move |socket| {
        on_connect_audience.arrived(&socket);
        on_admin(
            &socket,
            &weak,
            (read_only, mode),
            auth.is_some(),
            &on_connect_sessions,
        )
    });
    audience
        .clustered
        .store(ns.is_clustered(), Ordering::Relaxed);
    if mode == AdminMode::Development {
        let monitor = Monitor {
            admin: ns.downgrade(),
            path: ns.path().to_owned(),
            audience: audience.clone(),
        };
        // Checked above; nothing else sets a monitor.
        let _ = io.observe(Arc::new(monitor));
    }
    if let Some(auth) = config.auth.clone() {
        let auth = Arc::new(auth);
        // bcrypt costs a quarter of a second of CPU by design: a flood of
        // logins waits here rather than taking every blocking thread.
        let checks = Arc::new(tokio::sync::Semaphore::new(2));
        ns.middleware(move |handshake| {
            let (auth, sessions, checks) = (auth.clone(), sessions.clone(), checks.clone());
            async move {
                let given = &handshake.auth;
                if let Some(id) = given["sessionId"].as_str()
                    && lock(&sessions).is_valid(id, Instant::now())
                {
                    return Ok(());
                }
                let user = given["username"].as_str().unwrap_or_default();
                let password = given["password"].as_str().unwrap_or_default().to_owned();
                if user == auth.username
                    && let Ok(_turn) = checks.acquire().await
                {
                    // bcrypt is slow on purpose: keep it off the I/O threads.
                    let hash = auth.password_hash.clone();
                    let ok =
                        tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash)).await;
                    if matches!(ok, Ok(Ok(true))) {
                        return Ok(());
                    }
                }
                tracing::info!("admin login refused");
                Err(ConnectError::new("invalid credentials"))
            }
        });
    }
    let stats = Stats::new(&config, io.config().engine.node_id);
    let weak = io.downgrade();
    let interval = config.stats_interval;
    let nsp = ns.path().to_owned();
    if ns.is_clustered() {
        let (weak, nsp, audience) = (weak.clone(), nsp.clone(), audience.clone());
        tokio::spawn(async move { look_for_dashboards(weak, nsp, audience).await });
    }
    tokio::spawn(async move { stats_loop(weak, nsp, stats, interval, audience).await });
    Ok(())
}

/// Who may be listening: the dashboards connected here, and whether one
/// is connected to another node of the cluster, as last looked. A node
/// reports only then: with no dashboard open anywhere, the socket paths
/// pay two atomic loads per report they would have made, and a cluster
/// carries no admin traffic.
#[derive(Default)]
struct Audience {
    here: AtomicUsize,
    clustered: AtomicBool,
    elsewhere: AtomicBool,
}

impl Audience {
    /// A dashboard connected here: counted until it leaves.
    fn arrived(self: &Arc<Self>, socket: &Socket) {
        self.here.fetch_add(1, Ordering::Relaxed);
        let audience = self.clone();
        socket.on_disconnect(move |_, _| {
            audience.here.fetch_sub(1, Ordering::Relaxed);
        });
    }

    /// Whether a dashboard may be listening: one is connected here, or, in
    /// a cluster, one on another node hears this one through the adapter.
    fn any(&self) -> bool {
        self.here.load(Ordering::Relaxed) > 0
            || (self.clustered.load(Ordering::Relaxed) && self.elsewhere.load(Ordering::Relaxed))
    }
}

/// Every second, asks the cluster whether the admin namespace has a socket
/// anywhere. A dashboard that connects on another node so hears this one
/// within about a second (it got every socket in `all_sockets` already).
/// When the cluster does not answer, reports are sent anyway.
async fn look_for_dashboards(io: WeakSocketIo, nsp: String, audience: Arc<Audience>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // Only a weak link: the server's end ends the task.
        let Some(admin) = io.upgrade().and_then(|io| io.of(&nsp)) else {
            return;
        };
        let anywhere = match admin.all_rooms().await {
            Ok(rooms) => !rooms.items.is_empty(),
            Err(_) => true,
        };
        audience.elsewhere.store(anywhere, Ordering::Relaxed);
    }
}

/// How long a dashboard's session id stands in for the password (as the
/// Node server's Redis store keeps them).
const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The session ids given to dashboards that logged in, with when.
#[derive(Default)]
struct Sessions(HashMap<String, Instant>);

impl Sessions {
    fn is_valid(&self, id: &str, now: Instant) -> bool {
        self.0
            .get(id)
            .is_some_and(|at| now.duration_since(*at) < SESSION_LIFETIME)
    }

    /// Adds one; expired ones go, so logins cannot pile them up.
    fn insert(&mut self, id: String, now: Instant) {
        self.0
            .retain(|_, at| now.duration_since(*at) < SESSION_LIFETIME);
        self.0.insert(id, now);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A dashboard connected: its session, config, the sockets, its commands.
fn on_admin(
    socket: &Socket,
    io: &WeakSocketIo,
    (read_only, mode): (bool, AdminMode),
    with_auth: bool,
    sessions: &Mutex<Sessions>,
) {
    let known = socket.handshake().auth["sessionId"]
        .as_str()
        .is_some_and(|id| lock(sessions).is_valid(id, Instant::now()));
    if with_auth
        && !known
        && let Some(id) = random_id()
    {
        // Logged in with the password: a session id spares the UI from
        // asking again when it reconnects.
        lock(sessions).insert(id.clone(), Instant::now());
        let _ = socket.emit("session", &id);
    }
    let _ = socket.emit(
        "config",
        &json!({ "supportedFeatures": features(read_only, mode) }),
    );
    if mode == AdminMode::Development
        && let Some(io) = io.upgrade()
    {
        if io.namespaces().iter().any(|ns| ns.is_clustered()) {
            // The other nodes' sockets take a round trip through the
            // cluster: answer from a task, not from the connect handler.
            let socket = socket.clone();
            tokio::spawn(async move {
                let all = all_sockets_in_cluster(&io).await;
                let _ = socket.emit("all_sockets", &all);
            });
        } else {
            let _ = socket.emit("all_sockets", &all_sockets(&io));
        }
    }
    if read_only {
        return;
    }
    for command in ["emit", "join", "leave", "_disconnect"] {
        let io = io.clone();
        socket.on(command, move |_socket, event| {
            if let Some(io) = io.upgrade() {
                run_command(&io, &event);
            }
        });
    }
}

/// A session id, or none without the OS generator: a guessable id would
/// stand in for the password, so the UI then just asks for it again.
fn random_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `emit`, `join`, `leave`, `_disconnect` from the dashboard, with the
/// Node server's arguments. Malformed commands are ignored.
fn run_command(io: &SocketIo, event: &Event) {
    let args = &event.payload.args;
    let text = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or_default();
    let Some(ns) = io.of(text(0)) else { return };
    let target = |filter: &str| {
        if filter.is_empty() {
            ns.all()
        } else {
            ns.to(filter.to_owned())
        }
    };
    match event.name.as_str() {
        "emit" => {
            let name = text(2);
            if name.is_empty() {
                return;
            }
            let mut payload = Payload::new();
            for arg in args.iter().skip(3) {
                payload = payload.arg(arg.clone());
            }
            let _ = target(text(1)).emit_payload(name, &payload);
        }
        "join" | "leave" => {
            let room = text(1);
            if room.is_empty() {
                return;
            }
            let op = target(text(2));
            if event.name == "join" {
                op.join(room.to_owned());
            } else {
                op.leave(room.to_owned());
            }
        }
        "_disconnect" => {
            let op = target(text(2));
            if args.get(1).and_then(Value::as_bool).unwrap_or(false) {
                op.close_connections();
            } else {
                op.disconnect_sockets();
            }
        }
        _ => {}
    }
}

/// A socket as the dashboard lists it (the Node server's `serialize`).
fn serialize(socket: &Socket) -> Value {
    let session = socket.session();
    let sid = session.sid();
    let hs = socket.handshake();
    let headers: serde_json::Map<String, Value> = hs
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), Value::from(v.to_str().ok()?))))
        .collect();
    let query = hs.query_json();
    let forwarded = ["cf-connecting-ip", "x-forwarded-for"]
        .iter()
        .find_map(|h| hs.headers.get(*h).and_then(|v| v.to_str().ok()));
    let address = forwarded
        .map(str::to_owned)
        .or_else(|| hs.address.map(|a| a.ip().to_string()));
    let issued = millis(hs.issued);
    let data = data_of(socket);
    let mut rooms: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
    rooms.sort();
    json!({
        "id": socket.id().as_str(),
        "clientId": sid.as_str().get(..12).unwrap_or(sid.as_str()),
        "transport": session.transport().as_str(),
        "nsp": socket.ns(),
        "data": data,
        "handshake": {
            "address": address,
            "headers": headers,
            "query": query,
            "issued": issued,
            "secure": hs.url.scheme_str() == Some("https"),
            "time": iso_time(hs.issued),
            "url": hs.url.to_string(),
            "xdomain": hs.headers.contains_key(http::header::ORIGIN),
        },
        "rooms": rooms,
    })
}

/// A socket's data as the dashboard reads it: an object (the UI reads
/// fields of it), as the Node server's.
fn data_of(socket: &Socket) -> Value {
    match socket.data() {
        Value::Null => json!({}),
        data => data,
    }
}

fn all_sockets(io: &SocketIo) -> Vec<Value> {
    io.namespaces()
        .iter()
        .flat_map(|ns| ns.sockets())
        .map(|s| serialize(&s))
        .collect()
}

/// [`all_sockets`] and the sockets of the namespaces of this node on the
/// other nodes, as they answer. Those carry what the cluster carries
/// (id, handshake, rooms, data): no transport, and their own id stands
/// for their client's.
async fn all_sockets_in_cluster(io: &SocketIo) -> Vec<Value> {
    let mut all = Vec::new();
    for ns in io.namespaces() {
        let local = ns.sockets();
        let here: HashSet<&str> = local.iter().map(|s| s.id().as_str()).collect();
        all.extend(local.iter().map(serialize));
        let Ok(found) = ns.all().fetch_sockets().await else {
            continue;
        };
        for remote in found
            .items
            .iter()
            .filter(|r| !here.contains(r.id().as_str()))
        {
            let id = remote.id().as_str();
            all.push(json!({
                "id": id,
                "clientId": id.get(..12).unwrap_or(id),
                "nsp": ns.path(),
                "data": if remote.data().is_null() { json!({}) } else { remote.data().clone() },
                "handshake": remote.handshake(),
                "rooms": remote.rooms().iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            }));
        }
    }
    all
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `2026-12-04T20:33:58.123Z`, as JavaScript's `Date#toJSON`.
fn iso_time(t: SystemTime) -> String {
    let ms = millis(t);
    let (secs, ms) = (ms / 1000, ms % 1000);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = crate::socketio::civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// What `server_stats` reports, and the counters it differences.
struct Stats {
    server_id: String,
    hostname: String,
    started: Instant,
    last: Option<EngineStats>,
}

impl Stats {
    fn new(config: &AdminConfig, node_id: u16) -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "localhost".to_owned());
        // Nodes of a cluster may share a host: their node id tells them
        // apart (the Node server uses the pid of a cluster worker).
        let default_id = match node_id {
            0 => hostname.clone(),
            n => format!("{hostname}#{n}"),
        };
        Stats {
            server_id: config.server_id.clone().unwrap_or(default_id),
            hostname,
            started: Instant::now(),
            last: None,
        }
    }

    fn report(&mut self, io: &SocketIo, sockets: &[Socket]) -> Value {
        let now = io.engine().stats();
        let mut aggregated = Vec::new();
        if let Some(last) = &self.last {
            // The Node server counts per second; one bucket per report
            // is as fine as the dashboard's 10 s charts show.
            let at = millis(SystemTime::now()) / 1000 * 1000;
            let handshakes = |s: &EngineStats| s.handshakes_polling + s.handshakes_websocket;
            for (kind, n) in [
                (
                    "rawConnection",
                    handshakes(&now).saturating_sub(handshakes(last)),
                ),
                (
                    "packetsIn",
                    now.messages_in.saturating_sub(last.messages_in),
                ),
                ("bytesIn", now.bytes_in.saturating_sub(last.bytes_in)),
                ("packetsOut", now.frames_out.saturating_sub(last.frames_out)),
                ("bytesOut", now.bytes_out.saturating_sub(last.bytes_out)),
            ] {
                if n > 0 {
                    aggregated.push(json!({ "timestamp": at, "type": kind, "count": n }));
                }
            }
        }
        // Clients are engine sessions; those still on polling are the
        // ones the dashboard counts apart.
        let mut polling = HashSet::new();
        for s in sockets {
            if s.session().transport() == TransportKind::Polling {
                polling.insert(s.session().sid());
            }
        }
        let namespaces: Vec<Value> = io
            .namespaces()
            .iter()
            .map(|ns| json!({ "name": ns.path(), "socketsCount": ns.sockets().len() }))
            .collect();
        let report = json!({
            "serverId": self.server_id,
            "hostname": self.hostname,
            "pid": std::process::id(),
            "uptime": self.started.elapsed().as_secs_f64(),
            "clientsCount": now.sessions,
            "pollingClientsCount": polling.len(),
            "aggregatedEvents": aggregated,
            "namespaces": namespaces,
        });
        self.last = Some(now);
        report
    }
}

/// Every `interval`: `server_stats` (checked every second, so that a
/// dashboard that arrives gets its first report soon).
async fn stats_loop(
    io: WeakSocketIo,
    nsp: String,
    mut stats: Stats,
    interval: Duration,
    audience: Arc<Audience>,
) {
    // A zero interval would make tokio's interval panic; 100 ms is as
    // often as anyone needs a dashboard redrawn.
    let interval = interval.max(Duration::from_millis(100));
    let tick = Duration::from_secs(1).min(interval);
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_stats = Instant::now();
    loop {
        ticker.tick().await;
        // Only a weak link: the server's end ends the task.
        let Some(io) = io.upgrade() else { return };
        let Some(admin) = io.of(&nsp) else { return };
        if !audience.any() {
            // Nobody watching: nothing to compute.
            stats.last = Some(io.engine().stats());
            continue;
        }
        if Instant::now() >= next_stats {
            next_stats = Instant::now() + interval;
            let sockets: Vec<Socket> = io.namespaces().iter().flat_map(|ns| ns.sockets()).collect();
            let report = stats.report(&io, &sockets);
            let _ = admin.emit_unretained("server_stats", &Payload::new().arg(report));
        }
    }
}

/// The development mode's live events, as the socket layer tells them.
struct Monitor {
    admin: WeakNamespace,
    /// The dashboard's own namespace: its events are not reported (each
    /// report is an event sent on it).
    path: String,
    audience: Arc<Audience>,
}

impl Monitor {
    /// The admin namespace, when a dashboard may be listening.
    fn listening(&self) -> Option<Namespace> {
        if !self.audience.any() {
            return None;
        }
        self.admin.upgrade()
    }

    fn tell(admin: &Namespace, event: &str, payload: &Payload) {
        if let Err(e) = admin.emit_unretained(event, payload) {
            tracing::debug!(event, error = %e, "an admin event was not sent");
        }
    }

    /// `room_joined` / `room_left`: namespace, room, socket id, time.
    fn room(&self, event: &str, ns: &str, room: &Room, sid: &SocketId) {
        // A dashboard joins its own room before its CONNECT answer is
        // sent: it must not hear of it (nor would it care).
        if ns == self.path {
            return;
        }
        if let Some(admin) = self.listening() {
            let p = Payload::new()
                .arg(ns)
                .arg(room.to_string())
                .arg(sid.as_str())
                .arg(iso_time(SystemTime::now()));
            Self::tell(&admin, event, &p);
        }
    }

    /// `event_received` / `event_sent`: namespace, socket id, the event's
    /// data (binary arguments as they were), time.
    fn event(admin: &Namespace, event: &str, ns: &str, sid: &SocketId, data: &Payload) {
        let p = Payload {
            args: vec![
                Value::from(ns),
                Value::from(sid.as_str()),
                Value::Array(data.args.clone()),
                Value::from(iso_time(SystemTime::now())),
            ],
            bins: data.bins.clone(),
        };
        Self::tell(admin, event, &p);
    }
}

impl Observer for Monitor {
    fn connected(&self, socket: &Socket) {
        if let Some(admin) = self.listening() {
            let p = Payload::new()
                .arg(serialize(socket))
                .arg(iso_time(SystemTime::now()));
            Self::tell(&admin, "socket_connected", &p);
        }
    }

    fn disconnected(&self, socket: &Socket, reason: DisconnectReason) {
        if let Some(admin) = self.listening() {
            let p = Payload::new()
                .arg(socket.ns())
                .arg(socket.id().as_str())
                .arg(reason.as_str())
                .arg(iso_time(SystemTime::now()));
            Self::tell(&admin, "socket_disconnected", &p);
        }
    }

    fn joined(&self, ns: &str, room: &Room, sid: &SocketId) {
        self.room("room_joined", ns, room, sid);
    }

    fn left(&self, ns: &str, room: &Room, sid: &SocketId) {
        self.room("room_left", ns, room, sid);
    }

    fn received(&self, socket: &Socket, data: &Payload) {
        if socket.ns() == self.path {
            return;
        }
        if let Some(admin) = self.listening() {
            Self::event(&admin, "event_received", socket.ns(), socket.id(), data);
        }
    }

    fn sent(&self, ns: &str, sids: &[SocketId], packet: &crate::socketio::Encoded) {
        if ns == self.path || sids.is_empty() {
            return;
        }
        let Some(admin) = self.listening() else {
            return;
        };
        let Some(data) = packet.event_data() else {
            return;
        };
        for sid in sids {
            Self::event(&admin, "event_sent", ns, sid, &data);
        }
    }

    fn upgraded(&self, socket: &Socket) {
        if let Some(admin) = self.listening() {
            let update = json!({
                "id": socket.id().as_str(),
                "nsp": socket.ns(),
                "transport": socket.session().transport().as_str(),
            });
            Self::tell(&admin, "socket_updated", &Payload::new().arg(update));
        }
    }

    fn data_changed(&self, socket: &Socket) {
        if let Some(admin) = self.listening() {
            let update = json!({
                "id": socket.id().as_str(),
                "nsp": socket.ns(),
                "data": data_of(socket),
            });
            Self::tell(&admin, "socket_updated", &Payload::new().arg(update));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_time_is_javascripts() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_416_438_123);
        assert_eq!(iso_time(t), "2026-12-04T20:33:58.123Z");
        assert_eq!(iso_time(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso_time(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn sessions_expire_after_a_day() {
        let t0 = Instant::now();
        let mut sessions = Sessions::default();
        sessions.insert("a".into(), t0);
        assert!(sessions.is_valid("a", t0 + Duration::from_secs(3600)));
        assert!(!sessions.is_valid("b", t0));
        let later = t0 + SESSION_LIFETIME;
        assert!(!sessions.is_valid("a", later));
        sessions.insert("b".into(), later);
        assert_eq!(sessions.0.len(), 1, "the expired one went");
    }

    #[test]
    fn read_only_offers_no_command() {
        assert_eq!(
            features(true, AdminMode::Development),
            vec!["AGGREGATED_EVENTS", "ALL_EVENTS"]
        );
        assert_eq!(
            features(true, AdminMode::Production),
            vec!["AGGREGATED_EVENTS"]
        );
        assert!(features(false, AdminMode::Development).contains(&"MDISCONNECT"));
    }

    #[tokio::test]
    async fn a_bad_hash_is_refused_at_install() {
        let io = SocketIo::new(Default::default());
        let config = AdminConfig::default().auth(Some(AdminAuth::new("admin", "not-a-hash")));
        assert!(matches!(install(&io, config), Err(AdminError::BadHash(_))));
    }
}
