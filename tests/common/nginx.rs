//! A real nginx in front of several gateways: plain round-robin (no
//! `ip_hash`, no cookie, so a client's requests land on any node), on an
//! ephemeral loopback port, configured in a temporary folder of its own and
//! stopped when dropped.
//!
//! It runs as a single process (`master_process off`), so killing the child
//! leaves no worker behind, and nothing switches users.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The proxying part of the configuration: what a deployment in front of
/// socketgate needs (WebSocket upgrades passed through, long-polls not cut
/// short, responses not buffered). `socketgate` is the `upstream` block.
pub const LOCATION: &str = r#"location / {
        proxy_pass http://socketgate;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        # Longer than a long-poll (ping interval + ping timeout) and than a
        # quiet WebSocket between two pings.
        proxy_read_timeout 120s;
        proxy_send_timeout 120s;
        proxy_buffering off;
    }"#;

/// The `Connection` header for the upstream: `upgrade` for a WebSocket
/// handshake, `close` otherwise (the usual nginx idiom).
pub const CONNECTION_MAP: &str = r#"map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }"#;

/// The `upstream` block: plain round-robin over `servers` (`host:port`).
pub fn upstream_block(servers: &[String]) -> String {
    let mut block = String::from("upstream socketgate {\n");
    for s in servers {
        block.push_str(&format!("        server {s};\n"));
    }
    block.push_str("    }");
    block
}

/// The whole configuration: listening on `127.0.0.1:port`, everything
/// nginx writes kept in `dir`, one access-log line per request naming the
/// upstream(s) that served it.
pub fn config(port: u16, servers: &[String], dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format upstreams '$upstream_addr|$upstream_status|$status|$request_method|$request_uri';
    access_log {d}/access.log upstreams;

    {map}

    {upstream}

    server {{
        listen 127.0.0.1:{port};
        {location}
    }}
}}
"#,
        map = CONNECTION_MAP,
        upstream = upstream_block(servers),
        location = LOCATION,
    )
}

/// Where Debian puts it; the test command installs the `nginx` package.
fn binary() -> &'static str {
    for path in ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(path).exists() {
            return path;
        }
    }
    panic!(
        "nginx is missing: run the README's test command (`bash tests/run.sh` installs Debian's nginx package)"
    );
}

/// One request as nginx logged it (written when the request ends: a
/// WebSocket's line appears when it closes).
#[derive(Debug, Clone)]
pub struct Logged {
    /// Every upstream tried, in order (more than one when nginx moved on
    /// from a node that failed); empty when none was reached.
    pub upstreams: Vec<String>,
    pub status: u16,
    pub method: String,
    pub uri: String,
}

pub struct Nginx {
    child: Option<Child>,
    /// `127.0.0.1:port`.
    pub addr: String,
    pub dir: PathBuf,
}

impl Nginx {
    /// Starts nginx over `upstreams` and waits until it accepts connections.
    pub async fn start(upstreams: &[String]) -> Nginx {
        let nginx = binary();
        let dir = std::env::temp_dir().join(format!(
            "socketgate-nginx-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(dir.join("nginx.conf"), config(port, upstreams, &dir)).unwrap();
        let mut child = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx runs");
        let addr = format!("127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + super::DEADLINE;
        loop {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "nginx exited ({status}) before listening:\n{}",
                    std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nginx did not listen on {addr}:\n{}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Nginx {
            child: Some(child),
            addr,
            dir,
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request logged so far.
    pub fn access_log(&self) -> Vec<Logged> {
        let text = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut f = line.splitn(5, '|');
                let upstreams = f.next()?;
                let _upstream_status = f.next()?;
                let status = f.next()?.parse().ok()?;
                let method = f.next()?.to_owned();
                let uri = f.next()?.to_owned();
                // `$upstream_addr` is "a:p, b:p" after a retry, "-" when none.
                let upstreams = upstreams
                    .split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty() && *u != "-")
                    .map(str::to_owned)
                    .collect();
                Some(Logged {
                    upstreams,
                    status,
                    method,
                    uri,
                })
            })
            .collect()
    }

    /// How many logged requests each upstream answered (the last one tried).
    pub fn spread(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for entry in self.access_log() {
            let key = entry
                .upstreams
                .last()
                .cloned()
                .unwrap_or_else(|| "none".to_owned());
            *counts.entry(key).or_insert(0) += 1;
        }
        counts
    }

    /// nginx's error log (upstream failures it noticed are here).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Stops it and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A number no other `Nginx` of this process has.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
