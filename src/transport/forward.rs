//! Requests for a session another node owns: forwarded to that node over a
//! direct HTTP/1.1 hop, so a cluster needs no sticky load balancer.
//!
//! The owner's id is in the session id ([`Sid::node`]); a [`SessionRouter`]
//! says where that node serves. A polling GET or POST (JSONP included) is
//! sent on as it came, its answer streamed back. A WebSocket upgrade is
//! relayed: the owner answers the handshake, and from then both upgraded
//! connections are joined byte for byte, so the owner handles the
//! WebSocket exactly as a local one (probe, single-upgrade rule, limits,
//! close codes). A forwarded request carries the cluster secret and the
//! client's address; the owner trusts that address only with the secret,
//! and never forwards a forwarded request again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body::Body as HttpBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::engine::{EngineError, EngineInner, Sid};
use crate::transport::BoxError;

/// The header that carries the cluster secret on a forwarded request.
pub const SECRET_HEADER: &str = "x-socketgate-secret";
/// The header that carries the client's own address on a forwarded
/// request (trusted only with a valid secret).
pub const FORWARDED_FOR_HEADER: &str = "x-socketgate-forwarded-for";

/// Where the nodes of a cluster serve: consulted when a request names a
/// session this node does not have and whose id names another node.
pub trait SessionRouter: Send + Sync + 'static {
    /// The address node `node` serves on, when it is alive; `None` when it
    /// is unknown or dead (the client then gets "Session ID unknown", and
    /// re-handshakes).
    fn locate(&self, node: u16) -> BoxFuture<'static, Option<SocketAddr>>;
    /// The secret every node of the cluster shares.
    fn secret(&self) -> &str;
    /// A forward to `node` at `addr` failed to connect: the node is likely
    /// dead, and can be treated so until it is heard from again.
    fn unreachable(&self, node: u16, addr: SocketAddr);
}

/// The router and the connection pool of forwarded requests.
pub(crate) struct Routing {
    router: Arc<dyn SessionRouter>,
    client: Client<HttpConnector, Body>,
}

impl Routing {
    pub(crate) fn new(router: Arc<dyn SessionRouter>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(connector);
        Routing { router, client }
    }

    /// Whether `headers` carry this cluster's secret. Compared in constant
    /// time: the answer must not tell how much of a guess was right.
    fn authentic(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers.get(SECRET_HEADER) else {
            return false;
        };
        constant_time_eq(given.as_bytes(), self.router.secret().as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who sent a request, as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A client, directly.
    Client,
    /// Another node of the cluster, on behalf of the client at this
    /// address (when it knew it).
    Node(Option<SocketAddr>),
}

/// Tells a request forwarded by another node from a client's. A request
/// that claims to be forwarded (it carries either header) without the
/// cluster's secret is refused: its forwarded-for address would otherwise
/// be believed.
pub(crate) fn origin(engine: &EngineInner, headers: &HeaderMap) -> Result<Origin, EngineError> {
    let claims = headers.contains_key(SECRET_HEADER) || headers.contains_key(FORWARDED_FOR_HEADER);
    if !claims {
        return Ok(Origin::Client);
    }
    match engine.routing.get() {
        Some(routing) if routing.authentic(headers) => {
            let addr = headers
                .get(FORWARDED_FOR_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            Ok(Origin::Node(addr))
        }
        _ => {
            engine
                .counters
                .refused_forwards
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "refused a forwarded request without a valid cluster secret: every node needs the same --cluster-secret"
            );
            Err(EngineError::Forbidden)
        }
    }
}

/// Headers that belong to one connection and are not sent on.
fn hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::PROXY_AUTHORIZATION
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
        || name.as_str() == SECRET_HEADER
        || name.as_str() == FORWARDED_FOR_HEADER
}

/// Sends `req` (for session `sid`, owned by another node) to its owner and
/// answers with the owner's answer. `client` is the client's address;
/// `websocket` is set for an upgrade request. When the owner is unknown,
/// dead or does not answer, the client gets "Session ID unknown" and
/// re-handshakes, as it would had its session ended.
pub(crate) async fn forward<B>(
    engine: &EngineInner,
    sid: Sid,
    mut req: Request<B>,
    client: Option<SocketAddr>,
    websocket: bool,
) -> Result<Response<Body>, EngineError>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Some(routing) = engine.routing.get() else {
        return Err(EngineError::UnknownSid);
    };
    let node = sid.node();
    let Some(owner) = routing.router.locate(node).await else {
        engine
            .counters
            .owner_unknown
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%sid, node, "no live node owns this session");
        return Err(EngineError::UnknownSid);
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri =
        Uri::try_from(format!("http://{owner}{path}")).map_err(|_| EngineError::BadRequest)?;
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
    let mut out = Request::builder()
        .method(req.method().clone())
        .uri(uri)
        .body(Body::empty())
        .map_err(|_| EngineError::BadRequest)?;
    let headers = out.headers_mut();
    for (name, value) in req.headers() {
        if !hop_by_hop(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    let secret =
        HeaderValue::from_str(routing.router.secret()).map_err(|_| EngineError::BadRequest)?;
    headers.insert(SECRET_HEADER, secret);
    if let Some(addr) = client
        && let Ok(value) = HeaderValue::from_str(&addr.to_string())
    {
        headers.insert(FORWARDED_FOR_HEADER, value);
    }
    *out.body_mut() = Body::new(req.into_body());

    let mut res = match routing.client.request(out).await {
        Ok(res) => res,
        Err(e) => {
            engine
                .counters
                .forward_failures
                .fetch_add(1, Ordering::Relaxed);
            if e.is_connect() {
                routing.router.unreachable(node, owner);
            }
            tracing::debug!(%sid, node, %owner, error = %e, "forwarding failed");
            return Err(EngineError::UnknownSid);
        }
    };
    engine.counters.forwarded.fetch_add(1, Ordering::Relaxed);
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(EngineError::BadRequest);
        };
        let owner_upgrade = hyper::upgrade::on(&mut res);
        engine.counters.relayed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%sid, node, %owner, "relaying a WebSocket to the owner of its session");
        tokio::spawn(async move {
            let (client_io, owner_io) = match tokio::join!(client_upgrade, owner_upgrade) {
                (Ok(c), Ok(o)) => (c, o),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::debug!(error = %e, "a relayed WebSocket upgrade did not complete");
                    return;
                }
            };
            relay(TokioIo::new(client_io), TokioIo::new(owner_io)).await;
        });
        let mut answer = Response::new(Body::empty());
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        for (name, value) in res.headers() {
            if name != header::CONNECTION && name != header::UPGRADE {
                answer.headers_mut().append(name.clone(), value.clone());
            }
        }
        let headers = answer.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return Ok(answer);
    }
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// Joins a client's upgraded connection to its owner's, byte for byte,
/// until either side is done: then both are dropped (closed). Waiting for
/// both directions would keep a relay whose client vanished without a word
/// alive for good, after its owner closed the session.
async fn relay<C, O>(client: C, owner: O)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    O: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut owner_read, mut owner_write) = tokio::io::split(owner);
    tokio::select! {
        _ = tokio::io::copy(&mut client_read, &mut owner_write) => {}
        _ = tokio::io::copy(&mut owner_read, &mut client_write) => {}
    }
    use tokio::io::AsyncWriteExt;
    let _ = client_write.shutdown().await;
    let _ = owner_write.shutdown().await;
}

/// Drops the headers of the hop from the owner.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers.keys().filter(|n| hop_by_hop(n)).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay ends when either side ends, and passes bytes both ways.
    #[tokio::test]
    async fn a_relay_ends_with_either_side() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (owner, mut owner_peer) = tokio::io::duplex(64);
        let relay = tokio::spawn(relay(client, owner));
        client_peer.write_all(b"2probe").await.unwrap();
        let mut buf = [0u8; 6];
        owner_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"2probe");
        owner_peer.write_all(b"3probe").await.unwrap();
        client_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"3probe");
        // The owner goes; the client side, silent, is closed too.
        drop(owner_peer);
        tokio::time::timeout(std::time::Duration::from_secs(5), relay)
            .await
            .expect("the relay ends")
            .unwrap();
        assert_eq!(client_peer.read(&mut buf).await.unwrap(), 0, "closed");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret!"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn connection_headers_are_not_sent_on() {
        for name in [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
            SECRET_HEADER,
            FORWARDED_FOR_HEADER,
        ] {
            assert!(hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
        for name in [
            "origin",
            "host",
            "content-type",
            "cookie",
            "sec-websocket-key",
        ] {
            assert!(!hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
    }
}
