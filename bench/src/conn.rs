//! A minimal engine.io v4 / socket.io v5 client connection over WebSocket
//! or HTTP long-polling. Pings (`2`) are answered with `3` inside `recv`;
//! `recv` hands back socket.io packets (the engine `4` stripped).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::ctx::{Ctx, Transport};
use crate::proto::{self, Handshake, lossy};

#[derive(Debug, Clone)]
pub enum Error {
    /// TCP connect, WebSocket upgrade or HTTP handshake failed.
    Connect(String),
    /// A step took longer than `--timeout`.
    Timeout(&'static str),
    /// The server closed the transport or the session.
    Closed(String),
    /// The server said something this client does not understand.
    Protocol(String),
    /// A polling request answered with a non-200 status.
    Http(u16, String),
    /// The namespace CONNECT was refused (`44`).
    Refused(String),
}

impl Error {
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Connect(_) => "connect",
            Error::Timeout(_) => "timeout",
            Error::Closed(_) => "closed",
            Error::Protocol(_) => "protocol",
            Error::Http(..) => "http_status",
            Error::Refused(_) => "ns_refused",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(s) => write!(f, "connect failed: {s}"),
            Error::Timeout(s) => write!(f, "timed out: {s}"),
            Error::Closed(s) => write!(f, "closed: {s}"),
            Error::Protocol(s) => write!(f, "protocol error: {s}"),
            Error::Http(st, body) => write!(f, "HTTP {st}: {body}"),
            Error::Refused(s) => write!(f, "namespace connect refused: {s}"),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Which server each HTTP request of a session goes to, among the nodes a
/// connection is given (one server: always that one).
#[derive(Clone, Debug)]
pub enum Route {
    /// Every request to the node of this index (modulo the node count): a
    /// single server, or a sticky load balancer.
    Node(usize),
    /// Each request to the next node in turn, the counter shared by every
    /// client holding a clone: a round-robin load balancer. A WebSocket
    /// takes the next node for its one upgrade request.
    RoundRobin(Arc<AtomicUsize>),
}

impl Route {
    fn pick(&self, nodes: usize) -> usize {
        match self {
            Route::Node(i) => i % nodes,
            Route::RoundRobin(next) => next.fetch_add(1, Ordering::Relaxed) % nodes,
        }
    }
}

pub struct Conn {
    inner: Inner,
    pub handshake: Handshake,
    /// Server pings answered so far.
    pub pings: u64,
    /// Packets that arrived on the polling transport while upgrading, read
    /// before anything from the WebSocket.
    leftover: VecDeque<Bytes>,
}

enum Inner {
    Ws(Box<WebSocketStream<TcpStream>>),
    Poll(Box<Poll>),
}

impl Conn {
    /// Engine handshake plus namespace `/` CONNECT, bounded by `--timeout`
    /// and by the connect gate (`--connect-concurrency`).
    pub async fn connect(ctx: &Arc<Ctx>, transport: Transport) -> Result<Conn> {
        Conn::connect_routed(std::slice::from_ref(ctx), &Route::Node(0), transport).await
    }

    /// `connect` over the nodes of a cluster: every HTTP request goes to
    /// the node `route` picks (the handshake included). The connect gate
    /// and the timeout are the first node's.
    pub async fn connect_routed(
        nodes: &[Arc<Ctx>],
        route: &Route,
        transport: Transport,
    ) -> Result<Conn> {
        let ctx = &nodes[0];
        let _permit = ctx
            .connect_gate
            .acquire()
            .await
            .map_err(|_| Error::Connect("gate closed".into()))?;
        tokio::time::timeout(ctx.timeout, async {
            let mut conn = Conn::open_routed(nodes, route, transport).await?;
            conn.connect_ns().await?;
            Ok(conn)
        })
        .await
        .map_err(|_| Error::Timeout("connect"))?
    }

    /// Engine.io handshake only, on the node `route` picks.
    async fn open_routed(nodes: &[Arc<Ctx>], route: &Route, transport: Transport) -> Result<Conn> {
        let (inner, handshake) = match transport {
            Transport::Websocket => {
                let ctx = &nodes[route.pick(nodes.len())];
                let tcp = ctx.tcp_connect().await?;
                let (mut ws, _) = tokio_tungstenite::client_async_with_config(
                    ctx.target.ws_url(),
                    tcp,
                    Some(ctx.ws_config),
                )
                .await
                .map_err(|e| Error::Connect(format!("websocket upgrade: {e}")))?;
                let first = ws_next_text(&mut ws).await?;
                let handshake = proto::parse_open(&first).map_err(Error::Protocol)?;
                (Inner::Ws(Box::new(ws)), handshake)
            }
            Transport::Polling => {
                let (poll, handshake) = Poll::open(nodes.to_vec(), route.clone()).await?;
                (Inner::Poll(Box::new(poll)), handshake)
            }
        };
        Ok(Conn {
            inner,
            handshake,
            pings: 0,
            leftover: VecDeque::new(),
        })
    }

    /// Upgrades a polling session to WebSocket as the JS client does:
    /// `2probe` / `3probe` over a new WebSocket carrying the sid, then the
    /// GET pending on polling is let finish (the server answers it once the
    /// probe is through) and what it carries is kept, then `5`. Nothing sent
    /// during the upgrade is lost. Bounded by `--timeout`. A session already
    /// on WebSocket is left as is.
    pub async fn upgrade(&mut self, ctx: &Arc<Ctx>) -> Result<()> {
        let Inner::Poll(poll) = &mut self.inner else {
            return Ok(());
        };
        let url = format!("{}&sid={}", ctx.target.ws_url(), self.handshake.sid);
        let ws = tokio::time::timeout(ctx.timeout, async {
            let tcp = ctx.tcp_connect().await?;
            let (mut ws, _) =
                tokio_tungstenite::client_async_with_config(url, tcp, Some(ctx.ws_config))
                    .await
                    .map_err(|e| Error::Connect(format!("websocket upgrade: {e}")))?;
            ws.send(Message::text("2probe"))
                .await
                .map_err(|e| Error::Closed(format!("websocket send: {e}")))?;
            let answer = ws_next_text(&mut ws).await?;
            if answer.as_ref() != b"3probe" {
                return Err(Error::Protocol(format!(
                    "expected 3probe, got {}",
                    lossy(&answer)
                )));
            }
            // Pause polling before `5`, as the JS client does: the server
            // answers the pending GET (a noop at least) once the probe is
            // through; keep whatever it carries. A GET still on its way
            // when `5` lands would be refused, the session being on
            // WebSocket by then.
            poll.finish_pending().await?;
            ws.send(Message::text("5"))
                .await
                .map_err(|e| Error::Closed(format!("websocket send: {e}")))?;
            Ok(ws)
        })
        .await
        .map_err(|_| Error::Timeout("upgrade"))??;
        self.leftover.extend(poll.queue.drain(..));
        self.inner = Inner::Ws(Box::new(ws));
        Ok(())
    }

    /// Sends `40` and waits for `40{…}` (or fails on `44…`).
    pub async fn connect_ns(&mut self) -> Result<()> {
        self.send("40").await?;
        loop {
            let p = self.recv().await?;
            match p.first() {
                Some(b'0') => return Ok(()),
                Some(b'4') => return Err(Error::Refused(lossy(&p))),
                _ => {}
            }
        }
    }

    /// Sends one engine.io text packet (e.g. `42["echo",1]`).
    pub async fn send(&mut self, text: impl Into<Utf8Bytes>) -> Result<()> {
        match &mut self.inner {
            Inner::Ws(ws) => ws
                .send(Message::Text(text.into()))
                .await
                .map_err(|e| Error::Closed(format!("websocket send: {e}"))),
            Inner::Poll(p) => p.post(Bytes::from(text.into())).await,
        }
    }

    /// The next raw engine.io packet. Cancel-safe: usable in `select!`,
    /// with `handle` called on the result in the branch body.
    pub async fn next_engine(&mut self) -> Result<Bytes> {
        if let Some(p) = self.leftover.pop_front() {
            return Ok(p);
        }
        match &mut self.inner {
            Inner::Ws(ws) => ws_next_text(ws).await,
            Inner::Poll(p) => p.next_packet().await,
        }
    }

    /// Handles one engine packet: answers a ping, skips noops, fails on a
    /// close, and returns the socket.io packet of a message.
    pub async fn handle(&mut self, pkt: Bytes) -> Result<Option<Bytes>> {
        match pkt.first().copied() {
            Some(b'4') => Ok(Some(pkt.slice(1..))),
            Some(b'2') => {
                self.pings += 1;
                self.send("3").await?;
                Ok(None)
            }
            Some(b'1') => Err(Error::Closed("server sent engine.io close".into())),
            // noop, pong, open, upgrade, base64 binary: nothing to do here
            Some(b'6' | b'3' | b'0' | b'5' | b'b') => Ok(None),
            _ => Err(Error::Protocol(format!(
                "unexpected engine packet {}",
                lossy(&pkt)
            ))),
        }
    }

    /// The next socket.io packet, answering pings and skipping noops on the
    /// way.
    pub async fn recv(&mut self) -> Result<Bytes> {
        loop {
            let pkt = self.next_engine().await?;
            if let Some(m) = self.handle(pkt).await? {
                return Ok(m);
            }
        }
    }

    /// Socket.io DISCONNECT then engine close, best effort, bounded in time.
    pub async fn close(self) -> Result<()> {
        let res = tokio::time::timeout(Duration::from_secs(2), async {
            match self.inner {
                Inner::Ws(mut ws) => {
                    ws.send(Message::text("41"))
                        .await
                        .map_err(|e| Error::Closed(format!("websocket send: {e}")))?;
                    let _ = ws.close(None).await;
                    // Wait for the server's close frame / EOF, bounded.
                    for _ in 0..1000 {
                        match ws.next().await {
                            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                            Some(Ok(_)) => {}
                        }
                    }
                    Ok(())
                }
                Inner::Poll(mut p) => p.post(Bytes::from_static(b"41\x1e1")).await,
            }
        })
        .await;
        res.unwrap_or(Err(Error::Timeout("close")))
    }
}

async fn ws_next_text(ws: &mut WebSocketStream<TcpStream>) -> Result<Bytes> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(Bytes::from(t)),
            // Binary attachments, control frames: not used by these scenarios.
            Some(Ok(
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_),
            )) => {}
            Some(Ok(Message::Close(frame))) => {
                return Err(Error::Closed(match frame {
                    Some(f) => format!("websocket close {} {}", u16::from(f.code), f.reason),
                    None => "websocket close".into(),
                }));
            }
            Some(Err(e)) => return Err(Error::Closed(format!("websocket: {e}"))),
            None => return Err(Error::Closed("websocket eof".into())),
        }
    }
}

/// One GET on a fresh connection to the target (e.g. a health route),
/// bounded by `--timeout`: status and body.
pub async fn http_get(ctx: &Ctx, path: &str) -> Result<(u16, Bytes)> {
    tokio::time::timeout(ctx.timeout, async {
        let mut c = HttpConn::open(ctx).await?;
        c.ready(ctx).await?;
        c.send(request(ctx, Method::GET, path, Bytes::new())).await
    })
    .await
    .map_err(|_| Error::Timeout("http get"))?
}

type Sender = SendRequest<Full<Bytes>>;
type Pending = Pin<Box<dyn Future<Output = Result<(u16, Bytes)>> + Send>>;

/// One HTTP/1.1 keep-alive connection (hyper's low-level client).
struct HttpConn {
    tx: Sender,
    task: JoinHandle<()>,
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpConn {
    async fn open(ctx: &Ctx) -> Result<HttpConn> {
        let tcp = ctx.tcp_connect().await?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| Error::Connect(format!("http handshake: {e}")))?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(HttpConn { tx, task })
    }

    /// Waits until a request can be sent; reopens the connection once if
    /// the server closed it (a polling session is not tied to one TCP
    /// connection).
    async fn ready(&mut self, ctx: &Ctx) -> Result<()> {
        if self.tx.ready().await.is_err() {
            *self = HttpConn::open(ctx).await?;
            self.tx
                .ready()
                .await
                .map_err(|e| Error::Closed(format!("http: {e}")))?;
        }
        Ok(())
    }

    /// Dispatches the request now; the returned future yields status and body.
    fn send(&mut self, req: Request<Full<Bytes>>) -> Pending {
        let fut = self.tx.send_request(req);
        Box::pin(async move {
            let resp = fut.await.map_err(|e| Error::Closed(format!("http: {e}")))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| Error::Closed(format!("http body: {e}")))?
                .to_bytes();
            Ok((status, body))
        })
    }
}

fn request(ctx: &Ctx, method: Method, uri: &str, body: Bytes) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header(header::HOST, &ctx.target.host);
    if method == Method::POST {
        b = b.header(header::CONTENT_TYPE, "text/plain;charset=UTF-8");
    }
    b.body(Full::new(body)).expect("request from valid parts")
}

/// A polling session: one connection for GETs (one always in flight, as
/// the JS client does) and one for POSTs, per node it talks to (opened on
/// first use; a single server is one node).
struct Poll {
    nodes: Vec<Arc<Ctx>>,
    route: Route,
    /// Per node: the GET connection and the POST connection.
    get: Vec<Option<HttpConn>>,
    post: Vec<Option<HttpConn>>,
    /// Per node: the polling URI with the session id.
    uris: Vec<String>,
    inflight: Option<Pending>,
    queue: VecDeque<Bytes>,
    closed: bool,
}

/// The connection in `slot`, opened when there is none (or reopened when
/// the server closed it), ready for a request.
async fn ready_conn<'a>(slot: &'a mut Option<HttpConn>, ctx: &Ctx) -> Result<&'a mut HttpConn> {
    match slot {
        Some(c) => c.ready(ctx).await?,
        None => {
            let mut c = HttpConn::open(ctx).await?;
            c.ready(ctx).await?;
            *slot = Some(c);
        }
    }
    Ok(slot.as_mut().expect("set above"))
}

impl Poll {
    async fn open(nodes: Vec<Arc<Ctx>>, route: Route) -> Result<(Poll, Handshake)> {
        let k = nodes.len();
        let first = route.pick(k);
        let mut get: Vec<Option<HttpConn>> = (0..k).map(|_| None).collect();
        let ctx = &nodes[first];
        ctx.http_requests.fetch_add(1, Ordering::Relaxed);
        let (status, body) = ready_conn(&mut get[first], ctx)
            .await?
            .send(request(
                ctx,
                Method::GET,
                &ctx.target.polling_uri(None),
                Bytes::new(),
            ))
            .await?;
        if status != 200 {
            return Err(Error::Http(
                status,
                format!("handshake GET: {}", lossy(&body)),
            ));
        }
        let mut packets: VecDeque<Bytes> = proto::split_payload(&body).into();
        let open = packets
            .pop_front()
            .ok_or_else(|| Error::Protocol("empty handshake".into()))?;
        let handshake = proto::parse_open(&open).map_err(Error::Protocol)?;
        let uris = nodes
            .iter()
            .map(|n| n.target.polling_uri(Some(&handshake.sid)))
            .collect();
        let mut post: Vec<Option<HttpConn>> = (0..k).map(|_| None).collect();
        // The POST connection of the handshake's node is opened now, as
        // before routing existed (one server: the session's two
        // connections are both open once connected).
        let c = HttpConn::open(&nodes[first]).await?;
        post[first] = Some(c);
        let mut poll = Poll {
            nodes,
            route,
            get,
            post,
            uris,
            inflight: None,
            queue: packets,
            closed: false,
        };
        poll.start_get().await?;
        Ok((poll, handshake))
    }

    async fn start_get(&mut self) -> Result<()> {
        let i = self.route.pick(self.nodes.len());
        let ctx = &self.nodes[i];
        let conn = ready_conn(&mut self.get[i], ctx).await?;
        ctx.http_requests.fetch_add(1, Ordering::Relaxed);
        let req = request(ctx, Method::GET, &self.uris[i], Bytes::new());
        self.inflight = Some(conn.send(req));
        Ok(())
    }

    async fn next_packet(&mut self) -> Result<Bytes> {
        loop {
            if let Some(p) = self.queue.pop_front() {
                return Ok(p);
            }
            if self.closed {
                return Err(Error::Closed("polling session closed".into()));
            }
            if self.inflight.is_none() {
                self.start_get().await?;
            }
            let res = match self.inflight.as_mut() {
                Some(fut) => fut.await,
                None => unreachable!("a GET was just started"),
            };
            self.inflight = None;
            let (status, body) = match res {
                Ok(r) => r,
                Err(e) => {
                    self.closed = true;
                    return Err(e);
                }
            };
            if status != 200 {
                self.closed = true;
                return Err(Error::Http(status, format!("GET: {}", lossy(&body))));
            }
            let packets = proto::split_payload(&body);
            let got_close = packets.iter().any(|p| p.as_ref() == b"1");
            self.queue.extend(packets);
            if got_close {
                self.closed = true;
            } else {
                // Keep a GET pending while the packets are handled.
                self.start_get().await?;
            }
        }
    }

    /// Waits for the GET in flight, if any, and queues its packets
    /// without starting another one (the upgrade's last step).
    async fn finish_pending(&mut self) -> Result<()> {
        let Some(fut) = self.inflight.take() else {
            return Ok(());
        };
        let (status, body) = fut.await?;
        if status != 200 {
            return Err(Error::Http(
                status,
                format!("GET (upgrade): {}", lossy(&body)),
            ));
        }
        self.queue.extend(proto::split_payload(&body));
        Ok(())
    }

    async fn post(&mut self, body: Bytes) -> Result<()> {
        let i = self.route.pick(self.nodes.len());
        let ctx = &self.nodes[i];
        let conn = ready_conn(&mut self.post[i], ctx).await?;
        ctx.http_requests.fetch_add(1, Ordering::Relaxed);
        let req = request(ctx, Method::POST, &self.uris[i], body);
        let (status, resp) = conn.send(req).await?;
        if status != 200 {
            return Err(Error::Http(status, format!("POST: {}", lossy(&resp))));
        }
        Ok(())
    }
}
