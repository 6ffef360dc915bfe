//! The gateway's settings: one list, read from flags, `SOCKETGATE_*`
//! environment variables and a TOML file, in that order of precedence,
//! over built-in defaults.
//!
//! Every setting is a flag (`--ping-interval-ms`), an environment variable
//! (`SOCKETGATE_PING_INTERVAL_MS`) and a TOML key (`ping_interval_ms`): the
//! flag's name with `_` for `-`. A file names its keys at the top level:
//!
//! ```toml
//! addr = "0.0.0.0:3000"
//! advertise_addr = "10.0.0.1:3000"
//! redis_url = "redis://10.0.0.9:6379"
//! recovery_ms = 120000
//! allowed_origins = ["https://app.example.com"]
//! ```
//!
//! An unknown key or a malformed value stops the start with the file, the
//! line and the key. `socketgate config default` prints every setting with
//! its default and its documentation (a file that, read back, equals the
//! defaults); `socketgate config check FILE` validates a file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::CommandFactory;
use serde::{Deserialize, Serialize};

use crate::gateway::GatewayConfig;
use crate::socketio::{RecoveryConfig, SocketIoConfig};
use crate::{AllowedOrigins, EngineConfig};

/// How the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colours only on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// The socket.io packet encoding a gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ParserName {
    /// socket.io's default text parser.
    Json,
    /// `socket.io-msgpack-parser` 3.x (clients must use it too).
    Msgpack,
}

/// Every setting of the gateway, each optional: what one source (flags and
/// environment, or a file) says. [`Settings::defaults`] fills them all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "SOCKETGATE_ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<SocketAddr>,
    /// URL path of the socket.io endpoint.
    #[arg(long, env = "SOCKETGATE_PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Server ping interval, in milliseconds.
    #[arg(long, env = "SOCKETGATE_PING_INTERVAL_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_interval_ms: Option<u64>,
    /// How long a pong may take, in milliseconds.
    #[arg(long, env = "SOCKETGATE_PING_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_timeout_ms: Option<u64>,
    /// Largest message a client may send, in bytes.
    #[arg(long, env = "SOCKETGATE_MAX_PAYLOAD")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_payload: Option<usize>,
    /// How long a client may stay without joining a namespace, in
    /// milliseconds.
    #[arg(long, env = "SOCKETGATE_CONNECT_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// Browser origins allowed besides the gateway's own (a list; `*`
    /// allows all). As a flag or variable: comma-separated.
    #[arg(long, env = "SOCKETGATE_ALLOWED_ORIGINS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// Accept legacy clients (engine.io v3: socket.io-client 2.x).
    #[arg(long, env = "SOCKETGATE_ALLOW_EIO3", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_eio3: Option<bool>,
    /// permessage-deflate on WebSocket, for clients that offer it (messages
    /// of 1024 bytes or more; no context takeover, so memory per
    /// connection stays bounded).
    #[arg(long, env = "SOCKETGATE_WS_COMPRESSION", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws_compression: Option<bool>,
    /// The socket.io parser: `json` (the default) or `msgpack`
    /// (socket.io-msgpack-parser; every client must use the same).
    #[arg(long, env = "SOCKETGATE_PARSER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parser: Option<ParserName>,
    /// Compress polling answers of 1024 bytes or more with gzip or deflate
    /// for clients that accept it (`Accept-Encoding`).
    #[arg(long, env = "SOCKETGATE_HTTP_COMPRESSION", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_compression: Option<bool>,
    /// Connection state recovery: keep a disconnected client's session and
    /// the packets it misses for this many milliseconds; 0 turns it off (as
    /// in the reference server). With it on, every event carries an offset
    /// as its last argument, which clients without recovery support
    /// (python-socketio, rust_socketio, socket.io-client before 4.6) hand to
    /// their handlers. Retained packets are bounded (10 000 packets,
    /// 16 MiB).
    #[arg(long, env = "SOCKETGATE_RECOVERY_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_ms: Option<u64>,
    /// Serve the demo page from this folder instead of the built-in copy.
    #[arg(long, env = "SOCKETGATE_DEMO_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo_dir: Option<PathBuf>,
    /// The socket.io-client browser bundle to serve at
    /// /socket.io/socket.io.min.js (the demo page uses its own small client
    /// when the file is missing).
    #[arg(long, env = "SOCKETGATE_CLIENT_BUNDLE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_bundle: Option<PathBuf>,
    /// The socket.io Admin UI: the `/admin` namespace it connects to and
    /// its page at `/admin/`. Off by default: the dashboard shows every
    /// socket's handshake and can disconnect them.
    #[arg(long, env = "SOCKETGATE_ADMIN", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
    /// The Admin UI's username (with `admin_password_hash`); none: no login
    /// (for local use only).
    #[arg(long, env = "SOCKETGATE_ADMIN_USER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_user: Option<String>,
    /// A bcrypt hash of the Admin UI's password (`$2b$…`).
    #[arg(long, env = "SOCKETGATE_ADMIN_PASSWORD_HASH", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_password_hash: Option<String>,
    /// Refuse the Admin UI's commands (emit, join, leave, disconnect).
    #[arg(long, env = "SOCKETGATE_ADMIN_READ_ONLY", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_read_only: Option<bool>,
    /// What the Admin UI is told: `development` (every socket, room and
    /// event as it happens) or `production` (server stats only).
    #[arg(long, env = "SOCKETGATE_ADMIN_MODE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_mode: Option<crate::admin::AdminMode>,
    /// The Admin UI's built page (`@socket.io/admin-ui`'s `ui/dist`),
    /// served at /admin/.
    #[arg(long, env = "SOCKETGATE_ADMIN_UI_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_ui_dir: Option<PathBuf>,
    /// Redis for a cluster of nodes (`redis://host:port`), compatible with
    /// the Node socket.io Redis adapter and emitter; none: one node, in
    /// memory.
    #[arg(long, env = "SOCKETGATE_REDIS_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// The secret every node of a cluster shares: with it, a request for a
    /// session another node owns is forwarded there, so the load balancer
    /// need not be sticky. Prefer the environment variable or the file (a
    /// flag shows in the process list).
    #[arg(long, env = "SOCKETGATE_CLUSTER_SECRET", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_secret: Option<String>,
    /// This node's id in the cluster (1-65535); none: a free random one.
    #[arg(long, env = "SOCKETGATE_NODE_ID", value_parser = clap::value_parser!(u16).range(1..))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<u16>,
    /// Where the other nodes of the cluster reach this one; none: the
    /// listening address.
    #[arg(long, env = "SOCKETGATE_ADVERTISE_ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise_addr: Option<SocketAddr>,
    /// How long a shutdown (SIGTERM) waits for clients to be told and
    /// flushed, in milliseconds.
    #[arg(long, env = "SOCKETGATE_SHUTDOWN_GRACE_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_ms: Option<u64>,
    /// Serve HTTPS and WSS with this certificate chain (PEM; with
    /// `tls_key`). Both files are read again on SIGHUP.
    #[arg(long, env = "SOCKETGATE_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM).
    #[arg(long, env = "SOCKETGATE_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Keys of the HTTP API for backends (`Authorization: Bearer <key>` or
    /// `X-API-Key`); none: the API is off (404). As a flag or variable:
    /// comma-separated.
    #[arg(
        long,
        env = "SOCKETGATE_API_KEY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Vec<String>>,
    /// Serve the HTTP API on this address of its own (an internal
    /// network) instead of under /api/ on the main listener.
    #[arg(long, env = "SOCKETGATE_API_ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_addr: Option<SocketAddr>,
    /// The backend's connect hook (an http:// URL): asked before a client
    /// joins a namespace.
    #[arg(long, env = "SOCKETGATE_CONNECT_HOOK")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_hook: Option<String>,
    /// The backend's event hook (an http:// URL): gets the client events
    /// `event_hook_events` names; its answer is the ack.
    #[arg(long, env = "SOCKETGATE_EVENT_HOOK")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_hook: Option<String>,
    /// Event names the event hook gets (globs like `chat.*`; a list,
    /// comma-separated as a flag or variable).
    #[arg(long, env = "SOCKETGATE_EVENT_HOOK_EVENTS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_hook_events: Option<Vec<String>>,
    /// The backend's disconnect hook (an http:// URL), told (best effort)
    /// when a socket leaves.
    #[arg(long, env = "SOCKETGATE_DISCONNECT_HOOK")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnect_hook: Option<String>,
    /// How long a hook call may take, in milliseconds.
    #[arg(long, env = "SOCKETGATE_HOOK_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_timeout_ms: Option<u64>,
    /// Request headers the connect hook gets (a list, comma-separated as a
    /// flag or variable); no other header reaches the backend.
    #[arg(long, env = "SOCKETGATE_HOOK_HEADERS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_headers: Option<Vec<String>>,
    /// PEM files of certificates trusted for `https://` hooks besides the
    /// system's (a list, comma-separated as a flag or variable).
    #[arg(long, env = "SOCKETGATE_HOOK_CA_FILE", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_ca_file: Option<Vec<PathBuf>>,
    /// The relay on the main namespace (join, leave, chat, echo: what the
    /// demo page uses); false turns it off.
    #[arg(long, env = "SOCKETGATE_RELAY", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<bool>,
    /// Relay events a socket may send per second (a token bucket; past it
    /// events are dropped, acked with an error).
    #[arg(long, env = "SOCKETGATE_RELAY_EVENTS_PER_SECOND")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_events_per_second: Option<u32>,
    /// Relay events a socket may send in a burst.
    #[arg(long, env = "SOCKETGATE_RELAY_BURST")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_burst: Option<u32>,
    /// Rooms a client may join through the relay.
    #[arg(long, env = "SOCKETGATE_MAX_CLIENT_ROOMS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_client_rooms: Option<usize>,
    /// Log format: `text` (colours only on a terminal) or `json` (one
    /// object per line).
    #[arg(long, env = "SOCKETGATE_LOG_FORMAT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// Copies into `$self` each field of `$lower` that `$self` does not set.
macro_rules! fill {
    ($self:ident, $lower:ident; $($field:ident),* $(,)?) => {
        $( if $self.$field.is_none() { $self.$field = $lower.$field; } )*
    };
}

/// Why settings could not be read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not valid: the message names the line and the key.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// A value is out of range (named).
    #[error("setting {key}: {message}")]
    Value {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Settings {
    /// The built-in defaults: every setting that has one.
    pub fn defaults() -> Settings {
        // The library's defaults, so that the two never drift apart.
        let gateway = GatewayConfig::default();
        let io = &gateway.io;
        let (hooks, relay) = (&gateway.hooks, gateway.relay.unwrap_or_default());
        let ms = |d: Duration| Some(d.as_millis() as u64);
        Settings {
            addr: Some(gateway.addr),
            path: Some(io.engine.path.clone()),
            ping_interval_ms: ms(io.engine.ping_interval),
            ping_timeout_ms: ms(io.engine.ping_timeout),
            max_payload: Some(io.engine.max_payload),
            connect_timeout_ms: ms(io.connect_timeout),
            allowed_origins: Some(Vec::new()),
            allow_eio3: Some(io.engine.allow_eio3),
            http_compression: Some(io.engine.http_compression),
            ws_compression: Some(io.engine.ws_compression),
            parser: Some(ParserName::Json),
            recovery_ms: Some(0),
            demo_dir: None,
            client_bundle: gateway.client_bundle.clone(),
            admin: Some(false),
            admin_user: None,
            admin_password_hash: None,
            admin_read_only: Some(false),
            admin_mode: Some(crate::admin::AdminConfig::default().mode),
            admin_ui_dir: gateway.admin_ui_dir.clone(),
            redis_url: None,
            cluster_secret: None,
            node_id: None,
            advertise_addr: None,
            shutdown_grace_ms: ms(gateway.shutdown_grace),
            tls_cert: None,
            tls_key: None,
            api_key: None,
            api_addr: None,
            connect_hook: None,
            event_hook: None,
            event_hook_events: Some(hooks.event_patterns.clone()),
            disconnect_hook: None,
            hook_timeout_ms: ms(hooks.timeout),
            hook_headers: Some(hooks.headers.clone()),
            hook_ca_file: Some(hooks.ca_files.clone()),
            relay: Some(gateway.relay.is_some()),
            relay_events_per_second: Some(relay.events_per_second),
            relay_burst: Some(relay.burst),
            max_client_rooms: Some(io.max_client_rooms),
            log_format: Some(LogFormat::Text),
        }
    }

    /// These settings, with what they leave unset taken from `lower`.
    pub fn or(mut self, lower: Settings) -> Settings {
        fill!(self, lower;
            addr, path, ping_interval_ms, ping_timeout_ms, max_payload,
            connect_timeout_ms, allowed_origins, allow_eio3, http_compression, ws_compression, parser, recovery_ms,
            demo_dir, client_bundle, admin, admin_user, admin_password_hash,
            admin_read_only, admin_mode, admin_ui_dir, redis_url, cluster_secret, node_id,
            advertise_addr, shutdown_grace_ms, tls_cert, tls_key, api_key, api_addr,
            connect_hook, event_hook, event_hook_events, disconnect_hook,
            hook_timeout_ms, hook_headers, hook_ca_file, relay, relay_events_per_second,
            relay_burst, max_client_rooms, log_format,
        );
        self
    }

    /// Reads a TOML file; unknown keys and malformed values are refused
    /// with the line and the key.
    pub fn from_file(path: &Path) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|error| SettingsError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::from_toml(&text).map_err(|message| SettingsError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Reads TOML text (see [`from_file`](Self::from_file)).
    pub fn from_toml(text: &str) -> Result<Settings, String> {
        toml::from_str(text).map_err(|e: toml::de::Error| e.to_string().trim_end().to_owned())
    }

    /// The gateway's configuration from settings merged down to the
    /// defaults (see [`or`](Self::or)); values out of range are refused
    /// with their key.
    pub fn gateway_config(&self) -> Result<GatewayConfig, SettingsError> {
        let s = self.clone().or(Settings::defaults());
        let must = |key: &'static str| SettingsError::Value {
            key,
            message: "has no value".into(),
        };
        let ms = |key: &'static str, v: Option<u64>| -> Result<Duration, SettingsError> {
            let v = v.ok_or_else(|| must(key))?;
            if v == 0 {
                return Err(SettingsError::Value {
                    key,
                    message: "must be more than 0".into(),
                });
            }
            Ok(Duration::from_millis(v))
        };
        let path = s.path.clone().ok_or_else(|| must("path"))?;
        if !path.starts_with('/') {
            return Err(SettingsError::Value {
                key: "path",
                message: format!("{path:?} must start with /"),
            });
        }
        let max_payload = s.max_payload.ok_or_else(|| must("max_payload"))?;
        if max_payload == 0 {
            return Err(SettingsError::Value {
                key: "max_payload",
                message: "must be more than 0".into(),
            });
        }
        let engine = EngineConfig::default()
            .path(path)
            .ping_interval(ms("ping_interval_ms", s.ping_interval_ms)?)
            .ping_timeout(ms("ping_timeout_ms", s.ping_timeout_ms)?)
            .max_payload(max_payload)
            .allow_eio3(s.allow_eio3.unwrap_or(false))
            .http_compression(s.http_compression.unwrap_or(true))
            .ws_compression(s.ws_compression.unwrap_or(false))
            .allowed_origins(AllowedOrigins::list(
                s.allowed_origins.as_deref().unwrap_or_default(),
            ));
        let mut io = SocketIoConfig::default()
            .engine(engine)
            .connect_timeout(ms("connect_timeout_ms", s.connect_timeout_ms)?);
        io.max_client_rooms = s.max_client_rooms.ok_or_else(|| must("max_client_rooms"))?;
        io = io.parser(match s.parser.unwrap_or(ParserName::Json) {
            ParserName::Json => crate::socketio::Parser::Json,
            ParserName::Msgpack => crate::socketio::Parser::Msgpack,
        });
        let hook = |key: &'static str, url: Option<String>| -> Result<_, SettingsError> {
            url.map(|u| {
                u.parse::<http::Uri>().map_err(|e| SettingsError::Value {
                    key,
                    message: format!("{u:?} is not a URL: {e}"),
                })
            })
            .transpose()
        };
        let hooks = crate::hooks::HooksConfig::default()
            .connect(hook("connect_hook", s.connect_hook)?)
            .events(hook("event_hook", s.event_hook)?)
            .disconnect(hook("disconnect_hook", s.disconnect_hook)?)
            .event_patterns(s.event_hook_events.unwrap_or_default())
            .timeout(ms("hook_timeout_ms", s.hook_timeout_ms)?)
            .headers(s.hook_headers.unwrap_or_default())
            .ca_files(s.hook_ca_file.unwrap_or_default());
        if let Err(e) = crate::hooks::Hooks::new(hooks.clone()) {
            return Err(SettingsError::Value {
                key: "connect_hook, event_hook or disconnect_hook",
                message: e.to_string(),
            });
        }
        let per_second = s.relay_events_per_second.unwrap_or(0);
        let burst = s.relay_burst.unwrap_or(0);
        if per_second == 0 || burst == 0 {
            return Err(SettingsError::Value {
                key: if per_second == 0 {
                    "relay_events_per_second"
                } else {
                    "relay_burst"
                },
                message: "must be more than 0".into(),
            });
        }
        let relay = s.relay.unwrap_or(true).then(|| {
            crate::gateway::RelayLimits::default()
                .events_per_second(per_second)
                .burst(burst)
        });
        let api = crate::api::ApiConfig::default().keys(s.api_key.unwrap_or_default());
        if let Some(window) = s.recovery_ms.filter(|ms| *ms > 0) {
            io = io.recovery(
                RecoveryConfig::default().max_disconnection_duration(Duration::from_millis(window)),
            );
        }
        let tls = match (s.tls_cert, s.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::TlsFiles::new(cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(SettingsError::Value {
                    key: "tls_key",
                    message: "is needed with tls_cert".into(),
                });
            }
            (None, Some(_)) => {
                return Err(SettingsError::Value {
                    key: "tls_cert",
                    message: "is needed with tls_key".into(),
                });
            }
        };
        let admin_auth = match (s.admin_user, s.admin_password_hash) {
            (Some(user), Some(hash)) => Some(crate::admin::AdminAuth::new(user, hash)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(SettingsError::Value {
                    key: "admin_password_hash",
                    message: "is needed with admin_user".into(),
                });
            }
            (None, Some(_)) => {
                return Err(SettingsError::Value {
                    key: "admin_user",
                    message: "is needed with admin_password_hash".into(),
                });
            }
        };
        let admin = s.admin.unwrap_or(false).then(|| {
            crate::admin::AdminConfig::default()
                .auth(admin_auth)
                .read_only(s.admin_read_only.unwrap_or(false))
                .mode(s.admin_mode.unwrap_or_default())
        });
        Ok(GatewayConfig::default()
            .admin(admin, s.admin_ui_dir)
            .tls(tls)
            .api(api, s.api_addr)
            .hooks(hooks)
            .relay(relay)
            .addr(s.addr.ok_or_else(|| must("addr"))?)
            .io(io)
            .demo_dir(s.demo_dir)
            .client_bundle(s.client_bundle)
            .redis_url(s.redis_url)
            .cluster_secret(s.cluster_secret)
            .node_id(s.node_id)
            .advertise_addr(s.advertise_addr)
            .shutdown_grace(ms("shutdown_grace_ms", s.shutdown_grace_ms)?))
    }

    /// Every setting, in the order `--help` lists them: its TOML key,
    /// flag, environment variable and documentation.
    pub fn catalogue() -> Vec<SettingInfo> {
        #[derive(clap::Parser)]
        struct Probe {
            #[command(flatten)]
            settings: Settings,
        }
        Probe::command()
            .get_arguments()
            .filter_map(|arg| {
                let flag = arg.get_long()?.to_owned();
                Some(SettingInfo {
                    key: flag.replace('-', "_"),
                    env: arg
                        .get_env()
                        .map(|e| e.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    doc: arg
                        .get_long_help()
                        .or(arg.get_help())
                        .map(|h| h.to_string())
                        .unwrap_or_default(),
                    flag: format!("--{flag}"),
                })
            })
            .collect()
    }

    /// A TOML file with every setting, its documentation and its default
    /// (settings without one are commented out): read back, it equals
    /// [`Settings::defaults`].
    pub fn default_file() -> String {
        let defaults = toml::Table::try_from(Settings::defaults())
            .expect("the defaults serialise to a TOML table");
        let mut out = String::from(
            "# socketgate settings. Precedence: flags > SOCKETGATE_* environment variables >\n\
             # this file (--config FILE or SOCKETGATE_CONFIG) > built-in defaults.\n",
        );
        for info in Self::catalogue() {
            out.push('\n');
            for line in info.doc.lines() {
                out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
            }
            out.push_str(&format!("# {} / {}\n", info.flag, info.env));
            match defaults.get(&info.key) {
                Some(value) => out.push_str(&format!("{} = {value}\n", info.key)),
                None => out.push_str(&format!("# {} =\n", info.key)),
            }
        }
        out
    }
}

/// One setting as [`Settings::catalogue`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SettingInfo {
    /// The TOML key (`ping_interval_ms`).
    pub key: String,
    /// The flag (`--ping-interval-ms`).
    pub flag: String,
    /// The environment variable (`SOCKETGATE_PING_INTERVAL_MS`).
    pub env: String,
    /// What it does.
    pub doc: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_reads_back_as_the_defaults() {
        let file = Settings::default_file();
        assert_eq!(Settings::from_toml(&file).unwrap(), Settings::defaults());
        assert!(file.contains("ping_interval_ms = 25000"), "{file}");
        assert!(file.contains("# redis_url ="), "{file}");
    }

    #[test]
    fn every_setting_has_a_flag_an_environment_variable_and_a_key() {
        let catalogue = Settings::catalogue();
        assert!(catalogue.len() >= 17);
        let table = toml::Table::try_from(Settings::defaults()).unwrap();
        for info in &catalogue {
            assert_eq!(info.env, format!("SOCKETGATE_{}", info.key.to_uppercase()));
            assert_eq!(info.flag, format!("--{}", info.key.replace('_', "-")));
            assert!(!info.doc.is_empty(), "{info:?}");
            // A key the file accepts: a file setting just that key parses.
            if let Some(value) = table.get(&info.key) {
                let one = format!("{} = {value}", info.key);
                assert!(Settings::from_toml(&one).is_ok(), "{one}");
            }
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_line() {
        let err =
            Settings::from_toml("addr = \"127.0.0.1:1\"\nping_intervall_ms = 5\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("ping_intervall_ms"), "{err}");
        let err = Settings::from_toml("\n\nping_timeout_ms = \"soon\"\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(
            err.contains("ping_timeout_ms") || err.contains("invalid type"),
            "{err}"
        );
        let err = Settings::from_toml("addr = \"not an address\"\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn the_higher_source_wins_field_by_field() {
        let flags = Settings {
            ping_interval_ms: Some(1),
            ..Settings::default()
        };
        let file = Settings {
            ping_interval_ms: Some(2),
            ping_timeout_ms: Some(3),
            ..Settings::default()
        };
        let merged = flags.or(file).or(Settings::defaults());
        assert_eq!(merged.ping_interval_ms, Some(1));
        assert_eq!(merged.ping_timeout_ms, Some(3));
        assert_eq!(merged.max_payload, Some(1_000_000));
    }

    #[test]
    fn values_out_of_range_name_their_key() {
        let zero = Settings {
            ping_interval_ms: Some(0),
            ..Settings::default()
        };
        let err = zero.gateway_config().unwrap_err();
        assert!(err.to_string().contains("ping_interval_ms"), "{err}");
        let path = Settings {
            path: Some("socket.io".into()),
            ..Settings::default()
        };
        assert!(
            path.gateway_config()
                .unwrap_err()
                .to_string()
                .contains("path")
        );
    }
}
