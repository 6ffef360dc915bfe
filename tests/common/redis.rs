//! A real `redis-server` for cluster tests: on an ephemeral loopback port,
//! without persistence, stopped when dropped.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

/// Where Debian puts it; the test command installs the `redis-server`
/// package.
fn binary() -> &'static str {
    for path in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] {
        if std::path::Path::new(path).exists() {
            return path;
        }
    }
    panic!(
        "redis-server is missing: run the README's test command (`bash tests/run.sh` installs Debian's redis-server package)"
    );
}

impl RedisServer {
    /// A new server on a free port.
    pub async fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port).await
    }

    /// A server on `port` (to restart one where its clients expect it).
    pub async fn start_on(port: u16) -> RedisServer {
        let child = Command::new(binary())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs");
        let server = RedisServer {
            child: Some(child),
            port,
        };
        let deadline = tokio::time::Instant::now() + super::DEADLINE;
        while !server.ping().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not answer on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Whether it answers PING.
    pub async fn ping(&self) -> bool {
        let Ok(mut conn) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if conn.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut buf = [0u8; 7];
        matches!(
            tokio::time::timeout(Duration::from_secs(1), conn.read_exact(&mut buf)).await,
            Ok(Ok(_))
        ) && &buf == b"+PONG\r\n"
    }

    /// A connection for the test's own commands.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// How many entries the recovery stream (`socket.io#stream`) holds.
    pub async fn stream_len(&self) -> usize {
        redis::cmd("XLEN")
            .arg("socket.io#stream")
            .query_async(&mut self.conn().await)
            .await
            .unwrap()
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> bool {
        redis::cmd("EXISTS")
            .arg(key)
            .query_async::<i64>(&mut self.conn().await)
            .await
            .unwrap()
            == 1
    }

    /// Kills it (SIGKILL) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
    }
}
