//! The transports, and the routing of one engine.io request to them.

mod deflate;
pub(crate) mod forward;
mod polling;
mod websocket;
mod ws_io;

pub(crate) use forward::Routing;

/// Compresses as a WebSocket writer does (for the fuzzing tests).
#[cfg(all(feature = "fuzzing", test))]
pub(crate) fn fuzz_compress(data: &[u8]) -> Vec<u8> {
    deflate::compress(data)
}

/// The `inflate_ws` fuzz target's body (see [`crate::fuzzing`]).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_inflate_ws(input: &[u8], max: usize) {
    use futures_util::FutureExt;
    use tokio::io::AsyncReadExt;
    let mut io = ws_io::WsIo::new(input, true, max);
    let mut out = Vec::new();
    // A byte slice is always ready: the read ends at once.
    let read = io.read_to_end(&mut out).now_or_never();
    assert!(read.is_some(), "reading a slice finished");
    // Inflated frames only add their plain text; what passes through is
    // the input's own bytes.
    let compressed = deflate::compress(input);
    assert_eq!(
        deflate::inflate(&compressed, input.len()).as_deref(),
        Ok(input)
    );
}

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, header};
use http_body::Body as HttpBody;

use crate::engine::{EngineError, EngineInner, Protocol, RequestInfo, Sid};
use crate::origin::OriginCheck;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The engine.io query parameters.
#[derive(Debug, Default)]
struct Query<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
    /// `b64`: the client cannot take binary polling payloads (v3).
    b64: bool,
    /// `j`: JSONP, with the callback index.
    j: Option<&'a str>,
    /// `t`: the client's cache-buster, unique per request.
    t: Option<&'a str>,
}

impl<'a> Query<'a> {
    /// Reads the parameters the engine needs. Their values are plain ASCII,
    /// so they are taken as they are (a percent-encoded value is simply not
    /// a valid one).
    fn parse(query: Option<&'a str>) -> Self {
        let mut q = Query::default();
        for pair in query.unwrap_or_default().split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "EIO" => q.eio = Some(v),
                "transport" => q.transport = Some(v),
                "sid" => q.sid = Some(v),
                "b64" => q.b64 = true,
                "j" => q.j = Some(v),
                "t" => q.t = Some(v),
                _ => {}
            }
        }
        q
    }
}

/// How a polling request wants its payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// The protocol's text payload (v3: also binary payloads when binary
    /// is queued and the client did not ask for base64).
    Plain { b64: bool },
    /// JSONP with the callback index `___eio[N]`.
    Jsonp { index: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Polling,
    WebSocket,
}

/// Answers one request addressed to the engine's path.
pub(crate) async fn handle<B>(engine: Arc<EngineInner>, req: Request<B>) -> Response<Body>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    match route(&engine, req).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn route<B>(engine: &Arc<EngineInner>, req: Request<B>) -> Result<Response<Body>, EngineError>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let cfg = &engine.config;
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > cfg.max_url_bytes {
        return Err(EngineError::UriTooLong);
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > cfg.max_header_bytes {
        return Err(EngineError::HeadersTooLarge);
    }
    let query = Query::parse(req.uri().query());
    let transport = match query.transport {
        Some("polling") if cfg.transports.polling => Transport::Polling,
        Some("websocket") if cfg.transports.websocket => Transport::WebSocket,
        _ => return Err(EngineError::UnknownTransport),
    };

    let headers = req.headers();
    match cfg
        .allowed_origins
        .check(headers.get(header::ORIGIN), headers.get(header::HOST))
    {
        OriginCheck::Allowed => {}
        OriginCheck::Forbidden => {
            origin_refused(engine, headers);
            return Err(EngineError::Forbidden);
        }
        OriginCheck::Malformed => return Err(EngineError::BadRequest),
    }
    let wants_ws = websocket::is_upgrade_request(headers);
    let framing = match query.j {
        Some(j) => match j.parse::<u32>() {
            Ok(index) if !j.is_empty() && j.len() <= 9 && j.bytes().all(|b| b.is_ascii_digit()) => {
                Framing::Jsonp { index }
            }
            _ => return Err(EngineError::BadRequest),
        },
        None => Framing::Plain { b64: query.b64 },
    };

    // The client's address: the connection's peer, or what an authentic
    // forwarding node says; looked up only where it is used (a handshake,
    // a forward), not on every poll.
    let (from_node, forwarded_for) = match forward::origin(engine, headers)? {
        forward::Origin::Client => (false, None),
        forward::Origin::Node(addr) => {
            engine
                .counters
                .served_forwarded
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (true, addr)
        }
    };
    let client_addr = |req: &Request<B>| {
        forwarded_for.or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| *addr)
        })
    };

    if let Some(sid) = query.sid {
        let sid = Sid::parse(sid).ok_or(EngineError::UnknownSid)?;
        let Some(session) = engine.sessions.get(&sid).map(|s| s.clone()) else {
            if transport == Transport::Polling
                && req.method() == Method::GET
                && let Some(protocol) = engine.take_client_close(&sid)
            {
                return Ok(polling::noop(protocol, framing));
            }
            // Another node's session: its owner answers. A request another
            // node forwarded is never sent on again.
            if !from_node && sid.node() != cfg.node_id {
                let websocket = transport == Transport::WebSocket && wants_ws;
                let client = client_addr(&req);
                return forward::forward(engine, sid, req, client, websocket).await;
            }
            return Err(EngineError::UnknownSid);
        };
        if session.apply_deadlines() {
            return Err(EngineError::UnknownSid);
        }
        return Ok(match (transport, req.method()) {
            (Transport::WebSocket, _) if wants_ws => websocket::upgrade(engine, session, req),
            (Transport::WebSocket, _) => return Err(EngineError::BadRequest),
            (Transport::Polling, &Method::GET) => {
                let coding = polling::Coding::accepted(req.headers());
                polling::poll(engine, session, framing, query.t, coding).await
            }
            (Transport::Polling, &Method::POST) => {
                polling::post(engine, session, req, framing).await
            }
            (Transport::Polling, _) => return Err(EngineError::BadRequest),
        });
    }

    // A handshake.
    if req.method() != Method::GET {
        return Err(EngineError::BadHandshakeMethod);
    }
    if transport == Transport::WebSocket && !wants_ws {
        return Err(EngineError::BadRequest);
    }
    let protocol = match query.eio {
        Some("4") => Protocol::V4,
        Some("3") if cfg.allow_eio3 => Protocol::V3,
        _ => return Err(EngineError::UnsupportedProtocolVersion),
    };
    let request = RequestInfo {
        uri: detach_uri(req.uri()),
        headers: detach_headers(req.headers()),
        remote_addr: client_addr(&req),
    };
    Ok(match transport {
        Transport::Polling => polling::open(engine, protocol, request, framing),
        Transport::WebSocket => websocket::open(engine, protocol, req, request),
    })
}

/// Logs a refused origin: the first time as a warning (a proxy that drops
/// the port from `Host`, or a missing `--allowed-origins`, refuses every
/// browser), later ones at debug level.
fn origin_refused(engine: &EngineInner, headers: &HeaderMap) {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !engine
        .origin_warned
        .swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!(
            ?origin,
            ?host,
            "refused a request from an origin that is not allowed (403): allow it with allowed_origins (--allowed-origins), and behind a proxy pass the Host header with its port (nginx: proxy_set_header Host $http_host); further refusals are logged at debug level"
        );
    } else {
        tracing::debug!(?origin, ?host, "origin not allowed");
    }
}

/// A copy of the URI in its own allocation. hyper's parsed URI and header
/// values share the connection's read buffer (16 KiB or more); a session
/// keeping them would keep that whole buffer alive for its lifetime.
fn detach_uri(uri: &Uri) -> Uri {
    Uri::try_from(uri.to_string()).unwrap_or_else(|_| uri.clone())
}

/// A copy of the headers whose values own their bytes (see [`detach_uri`]).
fn detach_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        out.append(name.clone(), copy);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_reads_engine_parameters() {
        let q = Query::parse(Some("EIO=4&transport=polling&t=N8hyd6w&sid=abc&b64=1&j=3"));
        assert_eq!(q.eio, Some("4"));
        assert!(q.b64);
        assert_eq!(q.j, Some("3"));
        assert_eq!(q.transport, Some("polling"));
        assert_eq!(q.sid, Some("abc"));
        let q = Query::parse(None);
        assert!(q.eio.is_none() && q.transport.is_none() && q.sid.is_none());
        assert!(!q.b64 && q.j.is_none());
        let q = Query::parse(Some("EIO&transport="));
        assert_eq!(q.eio, Some(""));
        assert_eq!(q.transport, Some(""));
    }
}
