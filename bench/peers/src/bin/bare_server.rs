//! The benchmark contract (socketgate DESIGN.md §6) with no socket.io
//! library at all: just enough engine.io v4 / socket.io v5 over a direct
//! WebSocket (`GET /socket.io/?EIO=4&transport=websocket`) on tokio and
//! tokio-tungstenite. It is the practical upper limit a socket.io server
//! can reach on one core, not a server to use: no polling, no upgrade, no
//! other namespace, no acks, no binary packets.
//!
//! ```text
//! bare-server [--port P]
//! ```
//!
//! Wire behaviour: on connect it sends
//! `0{"sid":…,"upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
//! answers `40` with `40{"sid":…}`, pings (`2`) 25 s after the open or the
//! last pong and closes when no `3` comes within 20 s. `42["echo",…]` is
//! sent back as is; `42["broadcast",…]` becomes `42["bcast",…]` for every
//! socket that sent `40`, the sender included.
//!
//! Design, for one core:
//! - a `current_thread` runtime: pinned to one core, a multi-thread runtime
//!   only adds a blocked main thread, atomics in the scheduler and wake-ups
//!   through the injection queue; here every wake-up is a push onto one
//!   local queue;
//! - one task per connection that reads, writes and keeps its own heartbeat
//!   timer (a single `Sleep`, reset only when the deadline moves);
//! - fan-out through one `tokio::sync::broadcast` channel of `Utf8Bytes`:
//!   the frame is built once and every receiver clones a reference to it; a
//!   receiver costs a few words, where a per-connection queue would cost a
//!   block of slots for every idle connection. Each woken connection drains
//!   what is queued and flushes once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socketgate_peers::cli;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const PING_INTERVAL: Duration = Duration::from_millis(25_000);
const PING_TIMEOUT: Duration = Duration::from_millis(20_000);
const MAX_PAYLOAD: usize = 1_000_000;
/// Broadcasts a receiver may fall behind before it loses the oldest ones
/// (the load tool then reports them as missing).
const FANOUT_CAPACITY: usize = 1 << 14;
/// Broadcast frames written before one flush.
const MAX_BATCH: usize = 256;
/// Small read buffer, as socketgate and socketioxide use: idle connections
/// stay cheap, a larger frame still gets a buffer of its own size.
const WS_READ_BUFFER: usize = 4 * 1024;

const ECHO: &[u8] = br#"42["echo""#;
const BROADCAST: &[u8] = br#"42["broadcast""#;
const BCAST: &str = r#"42["bcast""#;

/// Source of session ids: unique within the process is all a benchmark
/// needs (these are not secrets).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn main() -> std::io::Result<()> {
    let addr = cli::listen_addr("bare-server");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let listener = TcpListener::bind(addr).await?;
            eprintln!("bare-server on http://{}", listener.local_addr()?);
            let (hub, _) = broadcast::channel::<Utf8Bytes>(FANOUT_CAPACITY);
            loop {
                let (tcp, _) = match listener.accept().await {
                    Ok(c) => c,
                    // Out of file descriptors and the like: wait and go on.
                    Err(e) => {
                        eprintln!("bare-server: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                tokio::spawn(connection(tcp, hub.clone()));
            }
        })
}

/// Accepts only the direct WebSocket handshake of engine.io v4.
#[allow(
    clippy::result_large_err,
    reason = "the signature of tungstenite's handshake callback"
)]
fn check_request(req: &Request, resp: Response) -> Result<Response, ErrorResponse> {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    let has = |pair: &str| query.split('&').any(|p| p == pair);
    if (path == "/socket.io/" || path == "/socket.io") && has("EIO=4") && has("transport=websocket")
    {
        return Ok(resp);
    }
    let mut err = ErrorResponse::new(Some(
        "bare-server: only GET /socket.io/?EIO=4&transport=websocket\n".into(),
    ));
    *err.status_mut() = StatusCode::BAD_REQUEST;
    Err(err)
}

/// Heartbeat state: the next ping, or the deadline of the pong awaited.
enum Heartbeat {
    PingAt(Instant),
    PongBy(Instant),
}

impl Heartbeat {
    fn deadline(&self) -> Instant {
        match self {
            Heartbeat::PingAt(t) | Heartbeat::PongBy(t) => *t,
        }
    }
}

async fn connection(tcp: TcpStream, hub: broadcast::Sender<Utf8Bytes>) {
    let config = WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(Some(MAX_PAYLOAD))
        .max_frame_size(Some(MAX_PAYLOAD));
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(tcp, check_request, Some(config)).await
    else {
        return;
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let open = format!(
        r#"0{{"sid":"e{id:015x}","upgrades":[],"pingInterval":{},"pingTimeout":{},"maxPayload":{MAX_PAYLOAD}}}"#,
        PING_INTERVAL.as_millis(),
        PING_TIMEOUT.as_millis()
    );
    if ws.send(Message::text(open)).await.is_err() {
        return;
    }
    let _ = serve(&mut ws, &hub, id).await;
    let _ = ws.close(None).await;
}

/// Runs one session until the peer leaves, misses a pong or errs.
async fn serve(
    ws: &mut WebSocketStream<TcpStream>,
    hub: &broadcast::Sender<Utf8Bytes>,
    id: u64,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    // Subscribed to the hub once the client joined namespace `/` (`40`).
    let mut joined: Option<broadcast::Receiver<Utf8Bytes>> = None;
    let mut heartbeat = Heartbeat::PingAt(Instant::now() + PING_INTERVAL);
    // One timer for the connection's life, moved only when the deadline
    // does: a fresh `sleep` per loop turn would re-register a timer on
    // every message.
    let timer = tokio::time::sleep_until(heartbeat.deadline());
    tokio::pin!(timer);
    loop {
        tokio::select! {
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Err(e)) => return Err(e),
                    // Binary and control frames: not part of this subset.
                    Some(Ok(_)) => continue,
                };
                let b = text.as_bytes();
                if event_is(b, ECHO) {
                    ws.send(Message::Text(text)).await?;
                } else if event_is(b, BROADCAST) {
                    if joined.is_some() {
                        let mut out = String::with_capacity(b.len() - BROADCAST.len() + BCAST.len());
                        out.push_str(BCAST);
                        out.push_str(&text.as_str()[BROADCAST.len()..]);
                        // No receiver at all is not an error here.
                        let _ = hub.send(Utf8Bytes::from(out));
                    }
                } else if b == b"3" {
                    if let Heartbeat::PongBy(_) = heartbeat {
                        heartbeat = Heartbeat::PingAt(Instant::now() + PING_INTERVAL);
                        timer.as_mut().reset(heartbeat.deadline());
                    }
                } else if b.starts_with(b"40") {
                    if joined.is_none() {
                        joined = Some(hub.subscribe());
                    }
                    ws.send(Message::text(format!(r#"40{{"sid":"s{id:015x}"}}"#))).await?;
                } else if b == b"41" {
                    joined = None;
                } else if b == b"1" {
                    return Ok(());
                }
            }
            r = next_broadcast(&mut joined) => {
                match r {
                    Ok(frame) => {
                        ws.feed(Message::Text(frame)).await?;
                        if let Some(rx) = joined.as_mut() {
                            drain(ws, rx, id).await?;
                        }
                        ws.flush().await?;
                    }
                    Err(RecvError::Lagged(n)) => lagged(id, n),
                    Err(RecvError::Closed) => return Ok(()),
                }
            }
            () = &mut timer => {
                match heartbeat {
                    Heartbeat::PingAt(_) => {
                        ws.send(Message::text("2")).await?;
                        heartbeat = Heartbeat::PongBy(Instant::now() + PING_TIMEOUT);
                        timer.as_mut().reset(heartbeat.deadline());
                    }
                    Heartbeat::PongBy(_) => return Ok(()),
                }
            }
        }
    }
}

/// Whether `b` is the event `name` (given as `42["name"`), i.e. followed by
/// its arguments or the end of the array.
fn event_is(b: &[u8], name: &[u8]) -> bool {
    b.starts_with(name) && matches!(b.get(name.len()), Some(b',' | b']'))
}

/// The next broadcast frame, or never when not joined.
async fn next_broadcast(
    rx: &mut Option<broadcast::Receiver<Utf8Bytes>>,
) -> Result<Utf8Bytes, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes (without flushing) the frames already queued, up to a batch.
async fn drain(
    ws: &mut WebSocketStream<TcpStream>,
    rx: &mut broadcast::Receiver<Utf8Bytes>,
    id: u64,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    for _ in 0..MAX_BATCH {
        match rx.try_recv() {
            Ok(frame) => ws.feed(Message::Text(frame)).await?,
            Err(TryRecvError::Lagged(n)) => lagged(id, n),
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        }
    }
    Ok(())
}

/// A receiver that fell more than `FANOUT_CAPACITY` frames behind lost the
/// oldest ones; say so (the load tool counts them as missing).
fn lagged(id: u64, n: u64) {
    eprintln!("bare-server: session {id} fell {n} broadcasts behind; they are lost");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_match_exactly() {
        assert!(event_is(br#"42["echo",1,2]"#, ECHO));
        assert!(event_is(br#"42["echo"]"#, ECHO));
        assert!(!event_is(br#"42["echoes",1]"#, ECHO));
        assert!(!event_is(br#"42["echo""#, ECHO));
        assert!(event_is(br#"42["broadcast",7,9]"#, BROADCAST));
        assert!(!event_is(br#"421["broadcast",7]"#, BROADCAST));
    }
}
