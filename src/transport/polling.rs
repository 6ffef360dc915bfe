//! HTTP long-polling: the handshake GET, the data GET that waits for
//! packets, and the POST that carries the client's packets.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body as HttpBody;
use http_body_util::{BodyExt, Limited};

use crate::engine::packet::Frame;
use crate::engine::{
    CloseReason, DecodeError, EngineError, EngineInner, Packet, PollRefusal, PollStep, Protocol,
    RequestInfo, Session, TransportKind, jsonp, payload, payload_v3,
};
use crate::transport::{BoxError, Framing};

/// The handshake over polling: the answer is the open packet.
pub(crate) fn open(
    engine: &Arc<EngineInner>,
    protocol: Protocol,
    request: RequestInfo,
    framing: Framing,
) -> Response<Body> {
    let session = match engine.open_session(protocol, TransportKind::Polling, request) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let open = engine.open_packet(&session).to_frame();
    engine.handler.on_open(&session);
    answer(protocol, framing, &[open])
}

/// A data GET: waits until something is queued, then answers with as many
/// packets as fit in `max_payload`.
pub(crate) async fn poll(
    engine: &EngineInner,
    session: Session,
    framing: Framing,
    t: Option<&str>,
    coding: Coding,
) -> Response<Body> {
    if let Some(frames) = t.and_then(|t| session.replay_poll(t)) {
        tracing::debug!(sid = %session.sid(), "a poll resent by a proxy gets its answer again");
        return compress(engine, coding, answer(session.protocol(), framing, &frames));
    }
    settle_upgrade(&session).await;
    // Bound first: the guard must be released before `refuse` locks again.
    let begun = session.machine().poll_begin();
    let id = match begun {
        Ok(id) => id,
        // The client's POST closed the session a moment ago, and it is not
        // out of the registry yet: this is the GET it had in flight.
        Err(PollRefusal::Gone) if engine.take_client_close(&session.sid()).is_some() => {
            return noop(session.protocol(), framing);
        }
        Err(refusal) => return refuse(&session, refusal),
    };
    // Clears the pending-poll mark however this future ends, including when
    // the client goes away and the server drops it mid-wait.
    let _guard = PollGuard {
        session: &session,
        id,
    };
    let max_payload = engine.config.max_payload;
    let (frames, finished) = session
        .wait_outbound(|m| match m.poll_step(id, max_payload) {
            PollStep::Wait => None,
            PollStep::Send { frames, finished } => Some((frames, finished)),
        })
        .await;
    session.wake_drained();
    engine.count_sent(frames.len(), frames.iter().map(Frame::len).sum());
    if finished {
        session.finished();
    }
    // This GET was pending when its client's POST closed the session: it
    // is the GET in flight the close left a note for, and it has had its
    // noop. A later GET must learn the session is gone.
    if session.machine().close_reason() == Some(CloseReason::TransportClose) {
        engine.take_client_close(&session.sid());
    }
    let res = compress(engine, coding, answer(session.protocol(), framing, &frames));
    session.remember_poll(t, frames);
    res
}

/// A content coding a client accepts for polling answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Identity,
    Gzip,
    Deflate,
}

impl Coding {
    /// The coding to answer a request with these headers in: gzip when
    /// accepted, else deflate, else none (a `q=0` refuses one).
    pub(crate) fn accepted(headers: &http::HeaderMap) -> Coding {
        let mut gzip = false;
        let mut deflate = false;
        for value in headers.get_all(header::ACCEPT_ENCODING) {
            let Ok(value) = value.to_str() else { continue };
            for item in value.split(',') {
                let mut parts = item.split(';').map(str::trim);
                let name = parts.next().unwrap_or_default().to_ascii_lowercase();
                let refused = parts.any(|p| {
                    p.strip_prefix("q=")
                        .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
                });
                match name.as_str() {
                    "gzip" | "x-gzip" => gzip = !refused,
                    "deflate" => deflate = !refused,
                    "*" if !refused => gzip = true,
                    _ => {}
                }
            }
        }
        if gzip {
            Coding::Gzip
        } else if deflate {
            Coding::Deflate
        } else {
            Coding::Identity
        }
    }
}

/// Compresses an answer whose body is at least the engine's threshold, in
/// the coding the client accepts (and says so, and that it varies).
fn compress(engine: &EngineInner, coding: Coding, mut res: Response<Body>) -> Response<Body> {
    use std::io::Write;
    let config = &engine.config;
    res.headers_mut()
        .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if !config.http_compression || coding == Coding::Identity {
        return res;
    }
    let Some(len) = http_body::Body::size_hint(res.body()).exact() else {
        return res;
    };
    if (len as usize) < config.compression_threshold {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // A polling answer is one full body: this never waits.
    let Some(bytes) = futures_util::FutureExt::now_or_never(body.collect())
        .and_then(Result::ok)
        .map(|c| c.to_bytes())
    else {
        return Response::from_parts(parts, Body::empty());
    };
    // Level 1: most of the size gain for a fraction of the CPU, which is
    // what a realtime path wants.
    let level = flate2::Compression::fast();
    let (name, encoded) = match coding {
        Coding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 2), level);
            ("gzip", e.write_all(&bytes).and_then(|()| e.finish()))
        }
        Coding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::with_capacity(bytes.len() / 2), level);
            ("deflate", e.write_all(&bytes).and_then(|()| e.finish()))
        }
        Coding::Identity => unreachable!("returned above"),
    };
    let Ok(encoded) = encoded else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    engine
        .counters
        .compressed
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(encoded))
}

/// The answer to the one GET a client had in flight when its POST closed
/// the session (see `EngineInner::remember_client_close`): the noop.
pub(crate) fn noop(protocol: Protocol, framing: Framing) -> Response<Body> {
    answer(protocol, framing, &[Packet::Noop.to_frame()])
}

/// How long a polling request that arrives during a probed upgrade waits
/// for the upgrade to settle: the reference server's noop check interval
/// while probed (a GET that arrives then is answered on its next tick).
const UPGRADE_SETTLE: Duration = Duration::from_millis(100);

/// A polling request that arrives after the probe races the client's `5`
/// on the WebSocket, sent just before it (the engine.io-protocol suite
/// sends `2probe`, `5` and then a GET at once). Read first, it would get
/// 200 where it gets 400 once the upgrade completed. So it waits, without
/// the machine's lock, woken by the session's notifications (`5`, abort
/// and close all wake the outbound side), until the upgrade settles: then
/// it gets the answer it gets afterwards (400 code 3 when completed,
/// normal polling when abandoned).
///
/// Only briefly, not until upgradeTimeout: a client that has a GET or a
/// POST in flight when `3probe` reaches it waits for it to end before it
/// sends `5` (engine.io-client's `pause`); holding that request for the
/// `5` would stall every such upgrade until it timed out. After the hold,
/// a GET ends with the noop (the client is pausing) and a POST is read,
/// as before.
///
/// The same holds for a request that arrives after the WebSocket was
/// attached and before its `2probe` was read: the three may have been sent
/// together, and which connection's task runs first must not decide the
/// answer. Real clients rarely poll in that window (they are waiting for
/// `3probe`), so the hold costs them nothing in the common case.
async fn settle_upgrade(session: &Session) {
    if !session.machine().is_upgrading() {
        return;
    }
    let settled = session.wait_outbound(|m| (!m.is_upgrading()).then_some(()));
    let _ = tokio::time::timeout(UPGRADE_SETTLE, settled).await;
}

struct PollGuard<'a> {
    session: &'a Session,
    id: u64,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.session.machine().poll_end(self.id);
    }
}

/// A data POST: reads at most `max_payload` bytes, decodes them and hands
/// each message to the handler in order.
pub(crate) async fn post<B>(
    engine: &EngineInner,
    session: Session,
    req: Request<B>,
    framing: Framing,
) -> Response<Body>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    settle_upgrade(&session).await;
    let begun = session.machine().post_begin();
    if let Err(refusal) = begun {
        return refuse(&session, refusal);
    }
    let _guard = PostGuard(&session);

    let protocol = session.protocol();
    let octet = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream"));
    // Binary payloads belong to engine.io v3; a v4 client never sends them.
    if octet && protocol == Protocol::V4 {
        session.close_with(CloseReason::TransportError, false);
        return EngineError::BadRequest.into_response();
    }

    // A body that trickles in would hold the connection and the session's
    // POST slot: it has `post_timeout` to arrive.
    let collect = Limited::new(req.into_body(), engine.config.max_payload).collect();
    let body = match tokio::time::timeout(engine.config.post_timeout, collect).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) => {
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return if too_large {
                session.close_with(CloseReason::PayloadTooLarge, false);
                EngineError::PayloadTooLarge.into_response()
            } else {
                // The client went away mid-body.
                session.close_with(CloseReason::TransportError, false);
                EngineError::BadRequest.into_response()
            };
        }
        Err(_) => {
            session.close_with(CloseReason::TransportError, false);
            return EngineError::BodyTimeout.into_response();
        }
    };

    let packets = match decode_body(protocol, framing, octet, body) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(sid = %session.sid(), error = %e, "undecodable payload");
            session.close_with(CloseReason::ParseError, false);
            return EngineError::BadRequest.into_response();
        }
    };
    for packet in packets {
        let step = session
            .machine()
            .on_packet(packet, tokio::time::Instant::now());
        match step {
            Ok(Some(message)) => session.deliver(message),
            Ok(None) => {}
            Err(reason) => {
                // A client close is a normal end; a violation is an error.
                if reason == CloseReason::TransportClose {
                    // Remembered before the close, so that a GET arriving
                    // during it finds the note too.
                    if !session.pending_requests().0 {
                        engine.remember_client_close(session.sid(), protocol);
                    }
                    session.close_with(reason, false);
                    break;
                }
                session.close_with(reason, false);
                return EngineError::BadRequest.into_response();
            }
        }
    }
    // A pong may have moved the next ping; a (v3) ping queued a pong.
    session.wake_timers();
    session.wake_outbound();
    ok_response()
}

struct PostGuard<'a>(&'a Session);

impl Drop for PostGuard<'_> {
    fn drop(&mut self) {
        self.0.machine().post_end();
    }
}

fn refuse(session: &Session, refusal: PollRefusal) -> Response<Body> {
    tracing::debug!(sid = %session.sid(), ?refusal, "polling request refused");
    match refusal {
        PollRefusal::Gone => EngineError::UnknownSid.into_response(),
        PollRefusal::WrongTransport => EngineError::BadRequest.into_response(),
        PollRefusal::Overlap => {
            session.close_with(CloseReason::TransportError, false);
            EngineError::BadRequest.into_response()
        }
    }
}

/// Decodes a POST body by the session's protocol and the request's framing.
fn decode_body(
    protocol: Protocol,
    framing: Framing,
    octet: bool,
    body: Bytes,
) -> Result<Vec<Packet>, DecodeError> {
    match (framing, protocol) {
        (Framing::Jsonp { .. }, Protocol::V4) => {
            payload::decode(Bytes::from(jsonp::decode_post(&body)?))
        }
        (Framing::Jsonp { .. }, Protocol::V3) => {
            payload_v3::decode_text(&jsonp::decode_post(&body)?)
        }
        (Framing::Plain { .. }, Protocol::V4) => payload::decode(body),
        (Framing::Plain { .. }, Protocol::V3) if octet => payload_v3::decode_binary(&body),
        (Framing::Plain { .. }, Protocol::V3) => payload_v3::decode_text(
            std::str::from_utf8(&body).map_err(|_| DecodeError::InvalidUtf8)?,
        ),
    }
}

/// A poll's (or the handshake's) answer: the frames encoded for the
/// session's protocol and the request's framing.
fn answer(protocol: Protocol, framing: Framing, frames: &[Frame]) -> Response<Body> {
    const TEXT: &str = "text/plain; charset=UTF-8";
    let text = |frames: &[Frame]| -> String {
        match protocol {
            Protocol::V4 => String::from_utf8(payload::encode(frames).to_vec())
                .expect("a v4 payload is text: binary goes base64"),
            Protocol::V3 => payload_v3::encode_text(frames),
        }
    };
    match framing {
        Framing::Jsonp { index } => response(
            Bytes::from(jsonp::wrap(&index.to_string(), &text(frames))),
            "text/javascript; charset=UTF-8",
        ),
        Framing::Plain { .. } if protocol == Protocol::V4 => {
            response(payload::encode(frames), TEXT)
        }
        // v3 clients that take binary get a binary payload when binary is
        // in it; base64 clients (`b64=1`) always get text.
        Framing::Plain { b64: false } if frames.iter().any(|f| matches!(f, Frame::Binary(_))) => {
            response(
                payload_v3::encode_binary(frames),
                "application/octet-stream",
            )
        }
        Framing::Plain { .. } => response(Bytes::from(text(frames)), TEXT),
    }
}

fn response(body: Bytes, content_type: &'static str) -> Response<Body> {
    let mut res = Response::new(Body::from(body));
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn ok_response() -> Response<Body> {
    let mut res = Response::new(Body::from("ok"));
    *res.status_mut() = StatusCode::OK;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
