//! WebSocket: tokio-tungstenite over the hyper upgrade. One task per
//! connection reads client frames and writes the session's queue.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures_util::stream::FusedStream;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};

use crate::engine::{
    CloseReason, EngineError, EngineInner, Packet, Protocol, RequestInfo, Session, Str,
    TransportKind, WsStep, packet::Frame,
};

use super::deflate::{self, InflateError};
use super::ws_io::WsIo;

type Ws = WebSocketStream<WsIo<TokioIo<hyper::upgrade::Upgraded>>>;

/// permessage-deflate as negotiated for one connection: messages of at
/// least `threshold` bytes are sent compressed.
#[derive(Debug, Clone, Copy)]
struct Deflate {
    threshold: usize,
}

/// Whether the request asks for a WebSocket (`Upgrade: websocket`).
pub(crate) fn is_upgrade_request(headers: &HeaderMap) -> bool {
    header_has_token(headers, header::UPGRADE, "websocket")
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Checks the WebSocket handshake headers and prepares the 101 answer,
/// accepting permessage-deflate when it is on and the client offers it.
fn accept<B>(
    engine: &EngineInner,
    req: &mut Request<B>,
) -> Result<(Response<Body>, OnUpgrade, Option<Deflate>), EngineError> {
    let headers = req.headers();
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(EngineError::BadRequest)?;
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    if !version_ok
        || !is_upgrade_request(headers)
        || !header_has_token(headers, header::CONNECTION, "upgrade")
    {
        return Err(EngineError::BadRequest);
    }
    let accept = derive_accept_key(key.as_bytes());
    let deflate =
        (engine.config.ws_compression && deflate::accepts_offer(headers)).then_some(Deflate {
            threshold: engine.config.compression_threshold,
        });
    let on_upgrade = hyper::upgrade::on(req);
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).map_err(|_| EngineError::BadRequest)?,
    );
    if deflate.is_some() {
        h.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(deflate::RESPONSE),
        );
    }
    Ok((res, on_upgrade, deflate))
}

/// Bytes read from the socket at a time. tungstenite's default (128 KiB,
/// zero-filled on the first read) would make each idle connection cost
/// that much; socket.io traffic is mostly small frames, and a larger frame
/// still gets a buffer of its own size (read 2 KiB at a time). Idle memory
/// per WebSocket connection: 12.0 KiB with 4 KiB, 10.0 KiB with 2 KiB.
const WS_READ_BUFFER: usize = 2 * 1024;

fn ws_config(engine: &EngineInner) -> WebSocketConfig {
    let max = engine.config.max_payload;
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

async fn into_ws(
    on_upgrade: OnUpgrade,
    config: WebSocketConfig,
    deflate: Option<Deflate>,
) -> Option<Ws> {
    match on_upgrade.await {
        Ok(upgraded) => {
            let max = config.max_message_size.unwrap_or(usize::MAX);
            let io = WsIo::new(TokioIo::new(upgraded), deflate.is_some(), max);
            Some(WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await)
        }
        Err(e) => {
            tracing::debug!(error = %e, "WebSocket upgrade failed");
            None
        }
    }
}

/// A session opened directly over WebSocket: the open packet is the first
/// frame.
pub(crate) fn open<B>(
    engine: &Arc<EngineInner>,
    protocol: Protocol,
    mut req: Request<B>,
    request: RequestInfo,
) -> Response<Body> {
    let (res, on_upgrade, deflate) = match accept(engine, &mut req) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let session = match engine.open_session(protocol, TransportKind::WebSocket, request) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let open = engine.open_packet(&session).to_frame();
    let config = ws_config(engine);
    engine.handler.on_open(&session);
    tokio::spawn(async move {
        let Some(mut ws) = into_ws(on_upgrade, config, deflate).await else {
            session.close_with(CloseReason::TransportError, false);
            return;
        };
        if ws.send(to_ws(open, protocol, deflate)).await.is_err() {
            session.close_with(CloseReason::TransportError, false);
            return;
        }
        run(session, ws, deflate).await;
    });
    res
}

/// A WebSocket for an existing polling session: probe, then upgrade.
pub(crate) fn upgrade<B>(
    engine: &Arc<EngineInner>,
    session: Session,
    mut req: Request<B>,
) -> Response<Body> {
    let (res, on_upgrade, deflate) = match accept(engine, &mut req) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let config = ws_config(engine);
    // One upgrade per session. A second WebSocket, or one for a session
    // that already is on WebSocket, gets what the reference server gives
    // it: the handshake completes, then the new WebSocket is closed with
    // a close frame without a status code. Clients and proxies that meet
    // it see a WebSocket that closed, not a failed handshake; the session
    // and its transport are left alone.
    let began = session.machine().upgrade_begin();
    if !began {
        tracing::debug!(sid = %session.sid(), "WebSocket for a session that cannot upgrade: closed");
        tokio::spawn(async move {
            if let Some(mut ws) = into_ws(on_upgrade, config, deflate).await {
                let _ = tokio::time::timeout(GOODBYE, async {
                    let _ = ws.close(None).await;
                    drain(&mut ws).await;
                })
                .await;
            }
        });
        return res;
    }
    let timeout = engine.config.upgrade_timeout;
    tokio::spawn(async move {
        let Some(ws) = into_ws(on_upgrade, config, deflate).await else {
            abort_upgrade(&session);
            return;
        };
        if let Some(ws) = probe(&session, ws, Instant::now() + timeout).await {
            run(session, ws, deflate).await;
        }
    });
    res
}

fn abort_upgrade(session: &Session) {
    session.machine().upgrade_abort();
    session.wake_outbound();
}

/// The upgrade handshake on the new WebSocket: `2probe` → `3probe`, then
/// `5`. Anything else, or the deadline, abandons the upgrade (closing only
/// the new WebSocket); polling goes on.
async fn probe(session: &Session, mut ws: Ws, deadline: Instant) -> Option<Ws> {
    // The close code for a frame tungstenite refused; none otherwise.
    let mut code = None;
    let upgraded = loop {
        let next = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break false,
            _ = session.terminated().cancelled() => break false,
            next = ws.next() => next,
        };
        match next {
            Some(Ok(WsMessage::Text(t))) if t == "2probe" => {
                let probed = session.machine().upgrade_probe();
                let pong = to_ws(Packet::PongProbe.to_frame(), Protocol::V4, None);
                if !probed || ws.send(pong).await.is_err() {
                    break false;
                }
                // A pending poll now ends with a noop so the client can pause.
                session.wake_outbound();
            }
            Some(Ok(WsMessage::Text(t))) if t == "5" => break session.machine().upgrade_complete(),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            Some(Err(e)) => {
                code = read_failure(&e).code;
                break false;
            }
            _ => break false,
        }
    };
    if upgraded {
        tracing::debug!(sid = %session.sid(), "upgraded to WebSocket");
        session.upgraded();
        session.wake_outbound();
        Some(ws)
    } else {
        abort_upgrade(session);
        let frame = code.map(|code| CloseFrame {
            code,
            reason: Utf8Bytes::default(),
        });
        let _ = tokio::time::timeout(GOODBYE, async {
            let _ = ws.close(frame).await;
            drain(&mut ws).await;
        })
        .await;
        None
    }
}

/// The session's transport loop: writes what is queued, reads what comes.
async fn run(session: Session, mut ws: Ws, deflate: Option<Deflate>) {
    let protocol = session.protocol();
    // Registered before looking at the queue, so no wake-up is missed. A
    // registration that has not fired yet still covers the next look, so a
    // write does not renew it; a wait does.
    let notified = session.outbound_notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    // The close code a refused client frame calls for; when unset, the
    // session's close reason decides.
    let mut failure_code = None;
    // Bytes written since the last look at the queue: released with that
    // look (one lock, not two, per write), then senders waiting for room
    // are woken.
    let mut written_bytes = 0;
    loop {
        let step = session.machine().ws_step_after(written_bytes);
        if std::mem::take(&mut written_bytes) > 0 {
            session.wake_drained();
        }
        match step {
            WsStep::Send(frames) => {
                let bytes: usize = frames.iter().map(Frame::len).sum();
                session.count_sent(frames.len(), bytes);
                let write = async {
                    for frame in frames {
                        ws.feed(to_ws(frame, protocol, deflate)).await?;
                    }
                    ws.flush().await
                };
                // A forced close must not wait on a peer that stopped reading.
                let written = tokio::select! {
                    r = write => r,
                    _ = session.terminated().cancelled() => break,
                };
                // Written to the socket: no longer ours to hold (counted
                // off at the next look at the queue, just below).
                written_bytes = bytes;
                if let Err(e) = written {
                    tracing::debug!(sid = %session.sid(), error = %e, "WebSocket write failed");
                    session.close_with(CloseReason::TransportError, false);
                }
            }
            WsStep::Close => {
                let code = failure_code.unwrap_or(match session.machine().close_reason() {
                    Some(CloseReason::PayloadTooLarge) => CloseCode::Size,
                    _ => CloseCode::Normal,
                });
                let frame = CloseFrame {
                    code,
                    reason: Utf8Bytes::default(),
                };
                let graceful = matches!(
                    session.machine().close_reason(),
                    Some(CloseReason::ServerClose | CloseReason::ServerShutdown)
                );
                // The session is over; what follows only ends the transport.
                session.finished();
                let goodbye = async {
                    if graceful {
                        // Clients hand decoded packets on asynchronously: a
                        // close frame read together with the last data would
                        // be seen first. A ping answered means the data was
                        // read; the close then arrives on its own.
                        if ws.send(WsMessage::Ping(Default::default())).await.is_ok() {
                            while let Some(Ok(m)) = ws.next().await {
                                if matches!(m, WsMessage::Pong(_) | WsMessage::Close(_)) {
                                    break;
                                }
                            }
                        }
                    }
                    // When the client closed first, tungstenite has queued
                    // the close reply: a flush sends it (and the close below
                    // then fails harmlessly, the handshake being done).
                    let _ = ws.flush().await;
                    let _ = ws.close(Some(frame)).await;
                    drain(&mut ws).await;
                };
                let _ = tokio::time::timeout(GOODBYE, goodbye).await;
                return;
            }
            WsStep::Wait => {
                tokio::select! {
                    next = ws.next() => {
                        if let Err(failure) = on_frame(&session, protocol, next) {
                            failure_code = failure.code;
                            session.close_with(failure.reason, false);
                        }
                    }
                    _ = &mut notified => {}
                }
                // Renewed after a frame too: its handler has most likely
                // queued a reply, which fired the old registration (and
                // the new one is in place before the queue is looked at).
                notified.set(session.outbound_notified());
                notified.as_mut().enable();
            }
        }
    }
    session.finished();
}

/// How long the end of a WebSocket may take: the close handshake, and
/// reading what the client still sends (see [`drain`]).
const GOODBYE: std::time::Duration = std::time::Duration::from_secs(1);

/// After our close frame: reads and discards what the client still sends,
/// until its close frame or the end of the stream (bounded by the caller).
/// Dropping a TCP connection with unread data in it makes the kernel send
/// a reset, and a reset can destroy our close frame before the client has
/// read it (the client then sees 1006 instead of our code). The reference
/// server's `ws` does the same (it resumes reading after a protocol error).
async fn drain(ws: &mut Ws) {
    // While tungstenite can still read, it finds the client's close frame.
    while !ws.is_terminated() {
        match ws.next().await {
            Some(Ok(WsMessage::Close(_))) | None => return,
            Some(Ok(_)) => {}
            Some(Err(_)) => break,
        }
    }
    // After a read error tungstenite reads no more, and the stream may be
    // in the middle of a frame: raw bytes, until the client hangs up.
    let mut buf = [0u8; 2048];
    let io = ws.get_mut().get_mut();
    while let Ok(1..) = io.read(&mut buf).await {}
}

/// Why the transport ends the session, and the close code the client is to
/// read (`None`: the one the close reason calls for).
struct Failure {
    reason: CloseReason,
    code: Option<CloseCode>,
}

impl From<CloseReason> for Failure {
    fn from(reason: CloseReason) -> Self {
        Failure { reason, code: None }
    }
}

/// The one place where a frame tungstenite refused becomes a close reason
/// and a close code (RFC 6455 §7.4.1).
fn read_failure(e: &tungstenite::Error) -> Failure {
    use tungstenite::error::ProtocolError;
    let (reason, code) = match e {
        // A connection that just went away (network lost, tab closed) is a
        // close, as socket.io users know it, not an error; nothing can be
        // sent on it any more.
        tungstenite::Error::ConnectionClosed
        | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            (CloseReason::TransportClose, None)
        }
        tungstenite::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            (CloseReason::TransportClose, None)
        }
        // A frame or message over max_payload: 1009 "message too big".
        tungstenite::Error::Capacity(_) => (CloseReason::PayloadTooLarge, Some(CloseCode::Size)),
        // A compressed message that would inflate past max_payload: 1009
        // too; one that cannot be inflated, or compressed frames out of
        // order: 1002.
        tungstenite::Error::Io(e) if inflate_error(e).is_some() => match inflate_error(e) {
            Some(InflateError::TooLarge) => (CloseReason::PayloadTooLarge, Some(CloseCode::Size)),
            _ => (CloseReason::TransportError, Some(CloseCode::Protocol)),
        },
        // A text message that is not UTF-8: 1007 "invalid frame payload data".
        tungstenite::Error::Utf8(_) => (CloseReason::TransportError, Some(CloseCode::Invalid)),
        // Reserved bits or opcodes, an unmasked client frame, a bad
        // fragment or control frame: 1002 "protocol error".
        tungstenite::Error::Protocol(_) => (CloseReason::TransportError, Some(CloseCode::Protocol)),
        _ => (CloseReason::TransportError, None),
    };
    Failure { reason, code }
}

/// Handles one frame from the client; `Err` closes the session.
fn on_frame(
    session: &Session,
    protocol: Protocol,
    next: Option<Result<WsMessage, tungstenite::Error>>,
) -> Result<(), Failure> {
    let packet = match next {
        Some(Ok(WsMessage::Text(text))) => {
            Packet::decode_text(Str::from_ws(text)).map_err(|_| CloseReason::ParseError)?
        }
        Some(Ok(WsMessage::Binary(bytes))) => match protocol {
            Protocol::V4 => Packet::decode_binary(bytes),
            Protocol::V3 => Packet::decode_binary_v3(bytes).map_err(|_| CloseReason::ParseError)?,
        },
        // tungstenite answers pings itself.
        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => return Ok(()),
        Some(Ok(WsMessage::Close(_))) | None => return Err(CloseReason::TransportClose.into()),
        Some(Err(e)) => {
            tracing::debug!(sid = %session.sid(), error = %e, "WebSocket read failed");
            return Err(read_failure(&e));
        }
    };
    let heartbeat = matches!(packet, Packet::Ping | Packet::Pong);
    let step = session.machine().on_packet(packet, Instant::now());
    if let Some(message) = step? {
        session.deliver(message);
    }
    if heartbeat {
        // A pong moved the next ping; a (v3) ping queued a pong.
        session.wake_timers();
        session.wake_outbound();
    }
    Ok(())
}

fn inflate_error(e: &std::io::Error) -> Option<InflateError> {
    e.get_ref()?.downcast_ref::<InflateError>().copied()
}

fn to_ws(frame: Frame, protocol: Protocol, deflate: Option<Deflate>) -> WsMessage {
    let message = match frame {
        Frame::Text(s) => WsMessage::Text(s.into_ws()),
        Frame::Binary(b) => match protocol {
            Protocol::V4 => WsMessage::Binary(b.data().clone()),
            Protocol::V3 => WsMessage::Binary(b.typed()),
        },
    };
    match deflate {
        Some(d) => compressed(message, d.threshold),
        None => message,
    }
}

/// A data message of at least `threshold` bytes as one compressed frame
/// (RSV1 set), which tungstenite sends as it is.
fn compressed(message: WsMessage, threshold: usize) -> WsMessage {
    let (payload, data): (&Bytes, _) = match &message {
        WsMessage::Text(t) => (t.as_ref(), Data::Text),
        WsMessage::Binary(b) => (b, Data::Binary),
        _ => return message,
    };
    if payload.len() < threshold {
        return message;
    }
    let mut frame = WsFrame::message(deflate::compress_shared(payload), OpCode::Data(data), true);
    frame.header_mut().rsv1 = true;
    WsMessage::Frame(frame)
}
