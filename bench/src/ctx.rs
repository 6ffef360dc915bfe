//! Where to connect and how: the target URL (loopback only), transport
//! choice, shared limits, and the process-wide clock used for timestamps.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::conn::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Websocket,
    Polling,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Websocket => "websocket",
            Transport::Polling => "polling",
        }
    }
}

/// How the HTTP requests of polling clients are spread over the nodes of
/// a cluster (`--routing`, echo over several `--url`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Routing {
    /// Every request (GET and POST) to the next node in turn, as a
    /// round-robin load balancer without session affinity does: most land
    /// on a node that does not own the session.
    RoundRobin,
    /// Every request of a client to the node its handshake went to, as a
    /// sticky load balancer does.
    Sticky,
}

impl Routing {
    pub fn name(self) -> &'static str {
        match self {
            Routing::RoundRobin => "round-robin",
            Routing::Sticky => "sticky",
        }
    }
}

/// The server under test: a loopback socket address plus the engine.io path.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port` as given, for the Host header and the WebSocket URL.
    pub host: String,
    /// Engine path, always starting and ending with `/` (default `/socket.io/`).
    pub path: String,
}

impl Target {
    /// Parses `http://HOST:PORT[/path/]`. Refuses anything that does not
    /// resolve to a loopback address: this tool only loads local servers.
    pub fn parse(url: &str, path: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .ok_or_else(|| format!("--url must start with http:// (got {url:?})"))?;
        let (host, url_path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if host.is_empty() {
            return Err(format!("--url has no host: {url:?}"));
        }
        let host_port = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        let addr = host_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host_port}: {e}"))?
            .find(|a| a.ip().is_loopback())
            .ok_or_else(|| {
                format!("{host_port} is not a loopback address; this tool only loads local servers")
            })?;
        // The path in the URL wins over --path when it is more than "/".
        let chosen = if url_path.len() > 1 { url_path } else { path };
        let mut p = String::new();
        if !chosen.starts_with('/') {
            p.push('/');
        }
        p.push_str(chosen);
        if !p.ends_with('/') {
            p.push('/');
        }
        Ok(Target {
            addr,
            host: host.to_string(),
            path: p,
        })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}{}?EIO=4&transport=websocket", self.host, self.path)
    }

    pub fn polling_uri(&self, sid: Option<&str>) -> String {
        match sid {
            Some(sid) => format!("{}?EIO=4&transport=polling&sid={sid}", self.path),
            None => format!("{}?EIO=4&transport=polling", self.path),
        }
    }
}

/// Shared by every client task.
pub struct Ctx {
    pub target: Target,
    /// Bound on every single network step (connect, one round trip, ...).
    pub timeout: Duration,
    pub ws_config: WebSocketConfig,
    /// Limits how many connection handshakes are in progress at once.
    pub connect_gate: Semaphore,
    local_addrs: Vec<IpAddr>,
    next_local: AtomicUsize,
    /// HTTP requests sent to this server by polling sessions (handshakes
    /// included), for per-node request counts.
    pub http_requests: AtomicU64,
}

impl Ctx {
    pub fn new(
        target: Target,
        timeout: Duration,
        connect_concurrency: usize,
        local_addrs: Vec<IpAddr>,
    ) -> Ctx {
        // Small read buffers: tungstenite zeroes the whole buffer before
        // every read, and the frames here are tens of bytes (at 16 KiB
        // that was ~5 % of the tool's CPU in broadcast); they also keep
        // many idle connections lean. Larger messages still arrive whole.
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(4 << 20))
            .max_frame_size(Some(4 << 20));
        Ctx {
            target,
            timeout,
            ws_config,
            connect_gate: Semaphore::new(connect_concurrency.max(1)),
            local_addrs,
            next_local: AtomicUsize::new(0),
            http_requests: AtomicU64::new(0),
        }
    }

    /// A TCP connection to the target with TCP_NODELAY, bound round-robin
    /// to one of `--local-addrs` when given (more source addresses, more
    /// ephemeral ports).
    pub async fn tcp_connect(&self) -> Result<TcpStream, Error> {
        let addr = self.target.addr;
        let sock = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| Error::Connect(format!("socket: {e}")))?;
        if !self.local_addrs.is_empty() {
            let i = self.next_local.fetch_add(1, Ordering::Relaxed) % self.local_addrs.len();
            sock.bind(SocketAddr::new(self.local_addrs[i], 0))
                .map_err(|e| Error::Connect(format!("bind {}: {e}", self.local_addrs[i])))?;
        }
        let stream = tokio::time::timeout(self.timeout, sock.connect(addr))
            .await
            .map_err(|_| Error::Timeout("tcp connect"))?
            .map_err(|e| Error::Connect(format!("tcp connect {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Starts the process clock; call once early.
pub fn init_clock() {
    EPOCH.get_or_init(Instant::now);
}

/// Microseconds since the process clock started; carried in payloads so a
/// receiver in the same process can compute delivery latency.
pub fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loopback_urls() {
        let t = Target::parse("http://127.0.0.1:3000", "/socket.io/").unwrap();
        assert_eq!(t.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(t.path, "/socket.io/");
        assert_eq!(
            t.ws_url(),
            "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            t.polling_uri(Some("abc")),
            "/socket.io/?EIO=4&transport=polling&sid=abc"
        );
        let t = Target::parse("http://127.0.0.1:3000/engine.io", "/socket.io/").unwrap();
        assert_eq!(t.path, "/engine.io/");
        let t = Target::parse("http://localhost:4000/", "x").unwrap();
        assert!(t.addr.ip().is_loopback());
        assert_eq!(t.path, "/x/");
    }

    #[test]
    fn refuses_non_loopback_and_bad_schemes() {
        assert!(Target::parse("http://10.0.0.1:3000", "/socket.io/").is_err());
        assert!(Target::parse("https://127.0.0.1:3000", "/socket.io/").is_err());
        assert!(Target::parse("http://:3000", "/socket.io/").is_err());
    }
}
