//! The session state machine, free of I/O: events in (packets, polls,
//! upgrade steps, ticks at an `Instant`), decisions out. The session driver
//! and the transports hold it behind a mutex and act on what it says.
//!
//! ```text
//!  Open ──ws attaches──▶ Upgrading{probed:false} ──2probe──▶ Upgrading{probed:true}
//!   ▲                            │ other packet / timeout            │ 5
//!   └──────────abort─────────────┘◀──────────────────────────────────┘──▶ Open (over WebSocket)
//!  Open/Upgrading ──close(graceful)──▶ Closing ──queue flushed / deadline──▶ Closed
//!  Open/Upgrading/Closing ──close(forced)──▶ Closed
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

use super::packet::{Frame, Message, Packet};
use super::payload;

/// The transport a session currently uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl TransportKind {
    /// The name used in URLs and handshakes.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::WebSocket => "websocket",
        }
    }
}

/// The engine.io protocol revision a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// engine.io v3 (`EIO=3`, socket.io-client 2.x): the client pings.
    V3,
    /// engine.io v4 (`EIO=4`): the server pings.
    V4,
}

/// Why a session closed, as told to [`EngineHandler::on_close`].
///
/// [`EngineHandler::on_close`]: crate::engine::EngineHandler::on_close
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed it: a close packet, or the WebSocket closed.
    TransportClose,
    /// The transport failed or the client broke the protocol (a second
    /// concurrent poll, a heartbeat in the wrong direction, a wrong
    /// content type…).
    TransportError,
    /// The client sent something that does not decode.
    ParseError,
    /// The client sent more than `max_payload` at once.
    PayloadTooLarge,
    /// No pong within `ping_timeout` of a ping.
    PingTimeout,
    /// The server closed it ([`Session::close`](crate::engine::Session::close)).
    ServerClose,
    /// The server is shutting down.
    ServerShutdown,
    /// The outbound queue was full when a message that may not be dropped
    /// had to be queued: the client does not keep up.
    SlowConsumer,
}

impl CloseReason {
    /// Every reason.
    pub const ALL: [CloseReason; 8] = [
        CloseReason::TransportClose,
        CloseReason::TransportError,
        CloseReason::ParseError,
        CloseReason::PayloadTooLarge,
        CloseReason::PingTimeout,
        CloseReason::ServerClose,
        CloseReason::ServerShutdown,
        CloseReason::SlowConsumer,
    ];

    /// This reason's place in [`ALL`](Self::ALL).
    pub fn index(self) -> usize {
        match self {
            CloseReason::TransportClose => 0,
            CloseReason::TransportError => 1,
            CloseReason::ParseError => 2,
            CloseReason::PayloadTooLarge => 3,
            CloseReason::PingTimeout => 4,
            CloseReason::ServerClose => 5,
            CloseReason::ServerShutdown => 6,
            CloseReason::SlowConsumer => 7,
        }
    }

    /// The reason as engine.io names it.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::ParseError => "parse error",
            CloseReason::PayloadTooLarge => "payload too large",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ServerClose => "forced close",
            CloseReason::ServerShutdown => "server shutting down",
            CloseReason::SlowConsumer => "slow consumer",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session is closing or closed.
    #[error("session closed")]
    Closed,
    /// The outbound queue would pass `max_queue_bytes`; nothing was queued.
    #[error("outbound queue full")]
    QueueFull,
    /// The message alone is larger than `max_queue_bytes`: no queue, even
    /// an empty one, can hold it. The client is not at fault.
    #[error("message larger than the outbound queue bound")]
    MessageTooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Upgrading { probed: bool },
    Closing,
    Closed,
}

/// Limits and intervals the machine enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub max_queue_bytes: usize,
}

/// Why a polling request is refused before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PollRefusal {
    /// The session no longer exists.
    Gone,
    /// The session is not on polling (it was upgraded or opened over WebSocket).
    WrongTransport,
    /// A second GET (or POST) while one is in progress: the session closes.
    Overlap,
}

/// What a pending poll should do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PollStep {
    /// Nothing to send yet: wait for a change.
    Wait,
    /// Answer with these frames. `finished` says that the answer carries the
    /// close packet of a graceful close, so the session is now closed.
    Send { frames: Vec<Frame>, finished: bool },
}

/// What a WebSocket writer should do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WsStep {
    /// Nothing to write: wait for a change.
    Wait,
    /// Write these frames.
    Send(Vec<Frame>),
    /// The session is closed or has flushed its graceful close: send a close
    /// frame and stop.
    Close,
}

/// The result of a close request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed {
    /// This call decided the close (the handler is to be told, once).
    pub first: bool,
    /// The session has reached `Closed` (it is to leave the registry).
    pub finished: bool,
}

/// What a tick decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tick {
    /// A ping was queued.
    pub pinged: bool,
    /// The pong did not come in time: the session is to close.
    pub timed_out: bool,
    /// A graceful close ran out of time and is now finished.
    pub finished: bool,
}

#[derive(Debug)]
pub(crate) struct Machine {
    state: State,
    protocol: Protocol,
    transport: TransportKind,
    timing: Timing,
    queue: VecDeque<Frame>,
    /// Bytes of every frame in `queue`, control packets included.
    queued_bytes: usize,
    /// Bytes the WebSocket writer took from the queue and has not written
    /// yet: they count against `max_queue_bytes` too, so the bound covers
    /// everything the session holds.
    in_flight: usize,
    /// The most `queued_bytes + in_flight` ever reached.
    held_peak: usize,
    /// v4: when the server pings next (while no pong is awaited).
    next_ping: Instant,
    /// v4: the pong for the last ping is due by then. v3: the client's next
    /// ping is due by then.
    pong_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
    poll: Option<u64>,
    polls_started: u64,
    /// A graceful close came while the client was switching to WebSocket
    /// (probed): its `5` still completes the upgrade, and the close goes on
    /// over the WebSocket, where the client now listens.
    closing_mid_upgrade: bool,
    post_pending: bool,
    reason: Option<CloseReason>,
}

impl Machine {
    pub(crate) fn new(
        protocol: Protocol,
        transport: TransportKind,
        timing: Timing,
        now: Instant,
    ) -> Self {
        Machine {
            state: State::Open,
            protocol,
            transport,
            timing,
            queue: VecDeque::new(),
            queued_bytes: 0,
            in_flight: 0,
            held_peak: 0,
            next_ping: now + timing.ping_interval,
            pong_deadline: match protocol {
                Protocol::V3 => Some(now + timing.ping_interval + timing.ping_timeout),
                Protocol::V4 => None,
            },
            close_deadline: None,
            poll: None,
            polls_started: 0,
            closing_mid_upgrade: false,
            post_pending: false,
            reason: None,
        }
    }

    pub(crate) fn transport(&self) -> TransportKind {
        self.transport
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self.state, State::Open | State::Upgrading { .. })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.reason
    }

    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Bytes queued plus bytes the writer holds.
    pub(crate) fn held_bytes(&self) -> usize {
        self.queued_bytes + self.in_flight
    }

    pub(crate) fn max_queue_bytes(&self) -> usize {
        self.timing.max_queue_bytes
    }

    /// The most [`held_bytes`](Self::held_bytes) ever reached.
    pub(crate) fn held_peak(&self) -> usize {
        self.held_peak
    }

    /// Whether `len` more bytes fit within the bound.
    fn admit(&self, len: usize) -> Result<(), SendError> {
        if len > self.timing.max_queue_bytes {
            Err(SendError::MessageTooLarge)
        } else if self.held_bytes() + len > self.timing.max_queue_bytes {
            Err(SendError::QueueFull)
        } else {
            Ok(())
        }
    }

    fn note_held(&mut self) {
        self.held_peak = self.held_peak.max(self.held_bytes());
    }

    /// The frames waiting to be sent, in order (for the fuzz invariants).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn queued_frames(&self) -> impl Iterator<Item = &Frame> {
        self.queue.iter()
    }

    // ---- outbound ------------------------------------------------------

    /// Queues an application message, within the byte bound.
    pub(crate) fn push(&mut self, frame: Frame) -> Result<(), SendError> {
        if !self.is_open() {
            return Err(SendError::Closed);
        }
        let len = frame.len();
        self.admit(len)?;
        self.queued_bytes += len;
        self.queue.push_back(frame);
        self.note_held();
        Ok(())
    }

    /// Queues several frames together (a binary socket.io packet and its
    /// attachments must not be interleaved with other messages): all of
    /// them, or none when they would pass the byte bound.
    pub(crate) fn push_all<'a>(
        &mut self,
        frames: impl IntoIterator<Item = &'a Frame, IntoIter: Clone>,
    ) -> Result<(), SendError> {
        if !self.is_open() {
            return Err(SendError::Closed);
        }
        let frames = frames.into_iter();
        let len: usize = frames.clone().map(Frame::len).sum();
        self.admit(len)?;
        self.queued_bytes += len;
        self.queue.extend(frames.cloned());
        self.note_held();
        Ok(())
    }

    /// Queues frames that may be dropped: only when the session is open, on
    /// its final transport, and has nothing else waiting or being written
    /// (the client is keeping up). Returns whether they were queued.
    pub(crate) fn push_volatile<'a>(
        &mut self,
        frames: impl IntoIterator<Item = &'a Frame, IntoIter: Clone>,
    ) -> bool {
        // Nothing queued and nothing being written: as the reference server,
        // whose transport is not writable while a write is under way.
        self.state == State::Open
            && self.queue.is_empty()
            && self.in_flight == 0
            && self.push_all(frames).is_ok()
    }

    /// Queues a control packet, even past the bound, so a full queue never
    /// stops the heartbeat. The same packet twice in a row is queued once:
    /// one answer serves a client that pings again and again without
    /// polling, whose pongs would otherwise pile up without end.
    fn push_control(&mut self, packet: &Packet) {
        let frame = packet.to_frame();
        if self.queue.back() != Some(&frame) {
            self.queued_bytes += frame.len();
            self.queue.push_back(frame);
            self.note_held();
        }
    }

    fn pop(&mut self) -> Option<Frame> {
        let frame = self.queue.pop_front()?;
        self.queued_bytes = self.queued_bytes.saturating_sub(frame.len());
        Some(frame)
    }

    // ---- inbound -------------------------------------------------------

    /// A packet from the client on the session's transport. `Ok(Some)` is a
    /// message for the handler; `Err` says the session is to close and why.
    pub(crate) fn on_packet(
        &mut self,
        packet: Packet,
        now: Instant,
    ) -> Result<Option<Message>, CloseReason> {
        if !self.is_open() {
            // Late packets of a closing session are dropped.
            return Ok(None);
        }
        match packet {
            Packet::Message(m) => Ok(Some(m)),
            Packet::Pong if self.protocol == Protocol::V4 => {
                if self.pong_deadline.take().is_some() {
                    self.next_ping = now + self.timing.ping_interval;
                }
                Ok(None)
            }
            // v3: the client pings, the server answers at once and expects
            // the next ping within interval + timeout.
            Packet::Ping if self.protocol == Protocol::V3 => {
                self.push_control(&Packet::Pong);
                self.pong_deadline =
                    Some(now + self.timing.ping_interval + self.timing.ping_timeout);
                Ok(None)
            }
            Packet::Close => Err(CloseReason::TransportClose),
            // A heartbeat in the wrong direction for the protocol; probes
            // and the upgrade packet belong on the upgrading WebSocket only.
            Packet::Ping
            | Packet::Pong
            | Packet::PingProbe
            | Packet::PongProbe
            | Packet::Upgrade
            | Packet::Open(_)
            | Packet::Noop => Err(CloseReason::TransportError),
        }
    }

    // ---- heartbeat -----------------------------------------------------

    /// When [`tick`](Self::tick) next has something to do.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Open | State::Upgrading { .. } => {
                Some(self.pong_deadline.unwrap_or(self.next_ping))
            }
            State::Closing => self.close_deadline,
            State::Closed => None,
        }
    }

    pub(crate) fn tick(&mut self, now: Instant) -> Tick {
        let mut tick = Tick::default();
        match self.state {
            State::Open | State::Upgrading { .. } => match self.pong_deadline {
                Some(deadline) if now >= deadline => tick.timed_out = true,
                Some(_) => {}
                None if now >= self.next_ping && self.protocol == Protocol::V4 => {
                    self.push_control(&Packet::Ping);
                    // Due pingTimeout after the ping was planned, not after
                    // our timer happened to fire: a client may count on
                    // pingInterval + pingTimeout from the handshake. A ping
                    // sent late still leaves the client half the timeout.
                    let planned = self.next_ping + self.timing.ping_timeout;
                    let deadline = planned.max(now + self.timing.ping_timeout / 2);
                    self.pong_deadline = Some(deadline);
                    tick.pinged = true;
                    tick.timed_out = now >= deadline;
                }
                None => {}
            },
            State::Closing => {
                if self.close_deadline.is_some_and(|d| now >= d) {
                    tick.finished = self.finish();
                }
            }
            State::Closed => {}
        }
        tick
    }

    // ---- close ---------------------------------------------------------

    /// Closes the session. A graceful close first delivers what is queued
    /// (and, on polling, a close packet) within `ping_timeout`; a forced one
    /// drops the queue at once.
    pub(crate) fn close(&mut self, reason: CloseReason, graceful: bool, now: Instant) -> Closed {
        match self.state {
            State::Closed => Closed {
                first: false,
                finished: false,
            },
            State::Closing if graceful => Closed {
                first: false,
                finished: false,
            },
            State::Closing => Closed {
                first: false,
                finished: self.finish_now(),
            },
            State::Open | State::Upgrading { .. } => {
                self.reason = Some(reason);
                if graceful {
                    // Before the probe, an upgrade in flight is abandoned and
                    // the client learns of the close on polling; after it,
                    // the client has paused polling and waits for the
                    // upgrade to finish (see `upgrade_complete`).
                    self.closing_mid_upgrade = self.state == (State::Upgrading { probed: true });
                    if self.transport == TransportKind::Polling {
                        self.push_control(&Packet::Close);
                    }
                    self.state = State::Closing;
                    self.close_deadline = Some(now + self.timing.ping_timeout);
                    Closed {
                        first: true,
                        finished: false,
                    }
                } else {
                    Closed {
                        first: true,
                        finished: self.finish_now(),
                    }
                }
            }
        }
    }

    /// Ends a graceful close once its last frame is out.
    pub(crate) fn finish(&mut self) -> bool {
        self.state == State::Closing && self.finish_now()
    }

    fn finish_now(&mut self) -> bool {
        self.state = State::Closed;
        self.queue.clear();
        self.queued_bytes = 0;
        true
    }

    // ---- polling -------------------------------------------------------

    pub(crate) fn poll_begin(&mut self) -> Result<u64, PollRefusal> {
        self.check_polling()?;
        if self.poll.is_some() {
            return Err(PollRefusal::Overlap);
        }
        self.polls_started += 1;
        self.poll = Some(self.polls_started);
        Ok(self.polls_started)
    }

    /// The frames a pending poll answers with now, batching what fits in
    /// `max_payload` bytes (always at least one packet).
    pub(crate) fn poll_step(&mut self, poll: u64, max_payload: usize) -> PollStep {
        let stale = self.poll != Some(poll);
        let single = |p: Packet| PollStep::Send {
            frames: vec![p.to_frame()],
            finished: false,
        };
        match self.state {
            // A client that closed gets a noop so its pending poll just ends;
            // any other close is announced with a close packet.
            State::Closed if self.reason == Some(CloseReason::TransportClose) => {
                single(Packet::Noop)
            }
            State::Closed => single(Packet::Close),
            _ if stale => single(Packet::Close),
            // Upgraded, or the client is pausing polling for the upgrade:
            // end the poll without data; the queue flushes on the WebSocket.
            _ if self.transport != TransportKind::Polling => single(Packet::Noop),
            State::Upgrading { probed: true } => single(Packet::Noop),
            State::Open | State::Upgrading { probed: false } | State::Closing => {
                if self.queue.is_empty() {
                    return PollStep::Wait;
                }
                let mut frames = Vec::new();
                let mut size = 0;
                let close = Packet::Close.to_frame();
                while let Some(next) = self.queue.front() {
                    let len = payload::encoded_len(next) + usize::from(!frames.is_empty());
                    if !frames.is_empty() && (size + len > max_payload || *next == close) {
                        // The close packet of a graceful close travels alone,
                        // in the next poll: clients finish handling the data
                        // before they learn of the close.
                        break;
                    }
                    size += len;
                    frames.extend(self.pop());
                }
                let finished =
                    self.state == State::Closing && self.queue.is_empty() && self.finish();
                PollStep::Send { frames, finished }
            }
        }
    }

    pub(crate) fn poll_end(&mut self, poll: u64) {
        if self.poll == Some(poll) {
            self.poll = None;
        }
    }

    pub(crate) fn post_begin(&mut self) -> Result<(), PollRefusal> {
        self.check_polling()?;
        if self.post_pending {
            return Err(PollRefusal::Overlap);
        }
        self.post_pending = true;
        Ok(())
    }

    /// Whether a GET and a POST are in progress.
    pub(crate) fn pending_requests(&self) -> (bool, bool) {
        (self.poll.is_some(), self.post_pending)
    }

    pub(crate) fn post_end(&mut self) {
        self.post_pending = false;
    }

    fn check_polling(&self) -> Result<(), PollRefusal> {
        if self.state == State::Closed {
            Err(PollRefusal::Gone)
        } else if self.transport != TransportKind::Polling {
            Err(PollRefusal::WrongTransport)
        } else {
            Ok(())
        }
    }

    // ---- WebSocket -----------------------------------------------------

    pub(crate) fn ws_step(&mut self) -> WsStep {
        match self.state {
            State::Closed => WsStep::Close,
            State::Closing if self.queue.is_empty() => {
                self.finish();
                WsStep::Close
            }
            _ if self.queue.is_empty() => WsStep::Wait,
            _ => {
                // Still held until written: see `in_flight`.
                self.in_flight += self.queued_bytes;
                self.queued_bytes = 0;
                WsStep::Send(self.queue.drain(..).collect())
            }
        }
    }

    /// [`ws_step`](Self::ws_step) once the writer wrote (flushed) `written`
    /// bytes it had taken.
    pub(crate) fn ws_step_after(&mut self, written: usize) -> WsStep {
        self.written(written);
        self.ws_step()
    }

    /// The WebSocket writer wrote (flushed) `bytes` it had taken.
    pub(crate) fn written(&mut self, bytes: usize) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
    }

    // ---- upgrade -------------------------------------------------------

    /// A WebSocket arrived for this polling session.
    pub(crate) fn upgrade_begin(&mut self) -> bool {
        if self.state == State::Open && self.transport == TransportKind::Polling {
            self.state = State::Upgrading { probed: false };
            true
        } else {
            false
        }
    }

    /// `2probe` arrived on the new WebSocket: from now on polls end with a
    /// noop so the client can pause polling.
    pub(crate) fn upgrade_probe(&mut self) -> bool {
        if matches!(self.state, State::Upgrading { .. }) {
            self.state = State::Upgrading { probed: true };
            true
        } else {
            false
        }
    }

    /// Whether a WebSocket is attached for an upgrade that has not settled
    /// (probed or not).
    pub(crate) fn is_upgrading(&self) -> bool {
        matches!(self.state, State::Upgrading { .. })
    }

    /// `5` arrived: the WebSocket becomes the session's transport.
    pub(crate) fn upgrade_complete(&mut self) -> bool {
        if self.state == (State::Upgrading { probed: true }) {
            self.state = State::Open;
            self.transport = TransportKind::WebSocket;
            true
        } else if self.state == State::Closing && self.closing_mid_upgrade {
            // The close packet was meant for polling; on WebSocket the
            // close frame says it.
            if self.queue.back() == Some(&Packet::Close.to_frame()) {
                let close = self.queue.pop_back().map_or(0, |f| f.len());
                self.queued_bytes -= close;
            }
            self.closing_mid_upgrade = false;
            self.transport = TransportKind::WebSocket;
            true
        } else {
            false
        }
    }

    /// The upgrade failed; polling goes on.
    pub(crate) fn upgrade_abort(&mut self) {
        if matches!(self.state, State::Upgrading { .. }) {
            self.state = State::Open;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::packet::Str;

    const INTERVAL: Duration = Duration::from_millis(300);
    const TIMEOUT: Duration = Duration::from_millis(200);

    fn machine(transport: TransportKind) -> (Machine, Instant) {
        let now = Instant::now();
        let timing = Timing {
            ping_interval: INTERVAL,
            ping_timeout: TIMEOUT,
            max_queue_bytes: 100,
        };
        (Machine::new(Protocol::V4, transport, timing, now), now)
    }

    fn text(s: &'static str) -> Frame {
        Frame::Text(Str::from_static(s))
    }

    fn sent(frames: &[&'static str]) -> PollStep {
        PollStep::Send {
            frames: frames.iter().map(|s| text(s)).collect(),
            finished: false,
        }
    }

    #[test]
    fn pings_every_interval_and_times_out_without_pong() {
        let (mut m, t0) = machine(TransportKind::Polling);
        assert_eq!(m.next_deadline(), Some(t0 + INTERVAL));
        assert_eq!(m.tick(t0 + INTERVAL / 2), Tick::default());
        let t1 = t0 + INTERVAL;
        assert!(m.tick(t1).pinged);
        assert_eq!(m.next_deadline(), Some(t1 + TIMEOUT));
        // pong in time: next ping one interval after the pong
        let t2 = t1 + TIMEOUT / 2;
        assert_eq!(m.on_packet(Packet::Pong, t2), Ok(None));
        assert_eq!(m.next_deadline(), Some(t2 + INTERVAL));
        let t3 = t2 + INTERVAL;
        assert!(m.tick(t3).pinged);
        // no pong this time
        assert!(!m.tick(t3 + TIMEOUT / 2).timed_out);
        assert!(m.tick(t3 + TIMEOUT).timed_out);
    }

    #[test]
    fn the_pong_deadline_counts_from_the_planned_ping() {
        // The timer fires 10 ms late: the pong is still due interval +
        // timeout after the handshake, as a client may count.
        let (mut m, t0) = machine(TransportKind::Polling);
        assert!(m.tick(t0 + INTERVAL + Duration::from_millis(10)).pinged);
        assert_eq!(m.next_deadline(), Some(t0 + INTERVAL + TIMEOUT));
        // So late that the planned deadline passed: the ping goes out with
        // half the timeout for the answer, not a close at once.
        let (mut m, t0) = machine(TransportKind::Polling);
        let very_late = t0 + INTERVAL + TIMEOUT;
        let tick = m.tick(very_late);
        assert!(tick.pinged && !tick.timed_out);
        assert_eq!(m.next_deadline(), Some(very_late + TIMEOUT / 2));
    }

    #[test]
    fn v3_client_pings_and_the_server_answers() {
        let now = Instant::now();
        let timing = Timing {
            ping_interval: INTERVAL,
            ping_timeout: TIMEOUT,
            max_queue_bytes: 100,
        };
        let mut m = Machine::new(Protocol::V3, TransportKind::WebSocket, timing, now);
        assert_eq!(m.next_deadline(), Some(now + INTERVAL + TIMEOUT));
        assert!(
            !m.tick(now + INTERVAL).pinged,
            "the server never pings in v3"
        );
        let t1 = now + INTERVAL;
        assert_eq!(m.on_packet(Packet::Ping, t1), Ok(None));
        assert_eq!(m.ws_step(), WsStep::Send(vec![text("3")]));
        assert_eq!(m.next_deadline(), Some(t1 + INTERVAL + TIMEOUT));
        assert!(!m.tick(t1 + INTERVAL).timed_out);
        assert!(m.tick(t1 + INTERVAL + TIMEOUT).timed_out);
        // a pong from a v3 client is the wrong direction
        let mut m = Machine::new(Protocol::V3, TransportKind::Polling, timing, now);
        assert_eq!(
            m.on_packet(Packet::Pong, now),
            Err(CloseReason::TransportError)
        );
    }

    #[test]
    fn a_ping_flood_without_polls_queues_one_pong() {
        // Found by the `session` fuzz target: a v3 client posting `1:2`
        // over and over, and never polling, grew the queue by one pong per
        // ping, past any bound.
        let now = Instant::now();
        let timing = Timing {
            ping_interval: INTERVAL,
            ping_timeout: TIMEOUT,
            max_queue_bytes: 100,
        };
        let mut m = Machine::new(Protocol::V3, TransportKind::Polling, timing, now);
        for _ in 0..1_000 {
            assert_eq!(m.on_packet(Packet::Ping, now), Ok(None));
        }
        m.push(text("4a")).unwrap();
        assert_eq!(m.on_packet(Packet::Ping, now), Ok(None));
        let id = m.poll_begin().unwrap();
        assert_eq!(m.poll_step(id, 100), sent(&["3", "4a", "3"]));
    }

    #[test]
    fn sending_a_ping_frees_no_room_for_messages() {
        // Found by the `session` fuzz target: control packets were not
        // counted when queued but were when sent, so each ping answered
        // while messages waited let one more byte past the bound.
        let (mut m, t0) = machine(TransportKind::Polling);
        assert!(m.tick(t0 + INTERVAL).pinged);
        m.push(text("4aaaa")).unwrap();
        assert_eq!(m.queued_bytes(), 6);
        let id = m.poll_begin().unwrap();
        assert_eq!(m.poll_step(id, 1), sent(&["2"]));
        assert_eq!(m.queued_bytes(), 5);
        let big = Frame::Text(Str::from("4".repeat(95)));
        assert_eq!(m.push(big.clone()), Ok(()));
        assert_eq!(m.push(text("4")), Err(SendError::QueueFull));
        assert_eq!(m.queued_bytes(), 100);
    }

    #[test]
    fn heartbeat_bypasses_a_full_queue() {
        let (mut m, t0) = machine(TransportKind::WebSocket);
        let big = Frame::Text(Str::from("4".repeat(100)));
        assert_eq!(m.push(big.clone()), Ok(()));
        assert_eq!(m.push(text("4x")), Err(SendError::QueueFull));
        assert!(m.tick(t0 + INTERVAL).pinged);
        assert_eq!(m.ws_step(), WsStep::Send(vec![big, text("2")]));
        assert_eq!(m.queued_bytes(), 0);
        // The writer holds them until written: still no room.
        assert_eq!(m.held_bytes(), 101);
        assert_eq!(m.push(text("4x")), Err(SendError::QueueFull));
        m.written(101);
        assert_eq!(m.push(text("4x")), Ok(()));
        assert_eq!(m.held_peak(), 101);
        assert_eq!(
            m.push(Frame::Text(Str::from("4".repeat(101)))),
            Err(SendError::MessageTooLarge),
            "larger than the whole bound, even with room left"
        );
    }

    #[test]
    fn push_all_is_all_or_nothing_and_volatile_needs_an_idle_queue() {
        let (mut m, _) = machine(TransportKind::WebSocket);
        let frames = [
            text("51-[]"),
            Message::binary(vec![0u8; 50]).frame().clone(),
        ];
        assert_eq!(m.push_all(&frames), Ok(()));
        assert_eq!(m.push_all(&frames), Err(SendError::QueueFull));
        assert_eq!(m.queued_bytes(), 55);
        assert!(!m.push_volatile(&[text("4v")]), "queue not idle: dropped");
        assert_eq!(m.ws_step(), WsStep::Send(frames.to_vec()));
        assert!(
            !m.push_volatile(&[text("4v")]),
            "still being written: dropped"
        );
        m.written(55);
        assert!(m.push_volatile(&[text("4v")]));
        let (mut m, _) = machine(TransportKind::Polling);
        assert!(m.upgrade_begin());
        assert!(!m.push_volatile(&[text("4v")]), "upgrading: dropped");
    }

    #[test]
    fn client_ping_and_upgrade_packets_on_the_main_transport_are_errors() {
        for p in [
            Packet::Ping,
            Packet::PingProbe,
            Packet::Upgrade,
            Packet::Noop,
        ] {
            let (mut m, t0) = machine(TransportKind::Polling);
            assert_eq!(m.on_packet(p, t0), Err(CloseReason::TransportError));
        }
        let (mut m, t0) = machine(TransportKind::Polling);
        assert_eq!(
            m.on_packet(Packet::Close, t0),
            Err(CloseReason::TransportClose)
        );
    }

    #[test]
    fn poll_batches_within_max_payload() {
        let (mut m, _) = machine(TransportKind::Polling);
        for s in ["4aaaa", "4bbbb", "4cccc"] {
            m.push(text(s)).unwrap();
        }
        let id = m.poll_begin().unwrap();
        // 5 + 1 + 5 = 11 fits in 11, the third does not
        assert_eq!(m.poll_step(id, 11), sent(&["4aaaa", "4bbbb"]));
        assert_eq!(m.poll_step(id, 1), sent(&["4cccc"]), "always at least one");
        assert_eq!(m.poll_step(id, 11), PollStep::Wait);
    }

    #[test]
    fn overlapping_polls_and_posts_are_refused() {
        let (mut m, t0) = machine(TransportKind::Polling);
        let id = m.poll_begin().unwrap();
        assert_eq!(m.poll_begin(), Err(PollRefusal::Overlap));
        m.close(CloseReason::TransportError, false, t0);
        // the pending poll learns of the close
        assert_eq!(m.poll_step(id, 100), sent(&["1"]));
        assert_eq!(m.poll_begin(), Err(PollRefusal::Gone));

        let (mut m, _) = machine(TransportKind::Polling);
        m.post_begin().unwrap();
        assert_eq!(m.post_begin(), Err(PollRefusal::Overlap));
        m.post_end();
        assert_eq!(m.post_begin(), Ok(()));
    }

    #[test]
    fn client_close_ends_the_pending_poll_with_noop() {
        let (mut m, t0) = machine(TransportKind::Polling);
        let id = m.poll_begin().unwrap();
        let reason = m.on_packet(Packet::Close, t0).unwrap_err();
        assert_eq!(
            m.close(reason, false, t0),
            Closed {
                first: true,
                finished: true
            }
        );
        assert_eq!(m.poll_step(id, 100), sent(&["6"]));
        assert_eq!(m.close_reason(), Some(CloseReason::TransportClose));
    }

    #[test]
    fn graceful_close_flushes_then_sends_close_packet() {
        let (mut m, t0) = machine(TransportKind::Polling);
        m.push(text("4last")).unwrap();
        assert!(m.close(CloseReason::ServerClose, true, t0).first);
        assert_eq!(m.push(text("4late")), Err(SendError::Closed));
        let id = m.poll_begin().unwrap();
        assert_eq!(m.poll_step(id, 100), sent(&["4last"]), "data first, alone");
        assert_eq!(
            m.poll_step(id, 100),
            PollStep::Send {
                frames: vec![text("1")],
                finished: true
            }
        );
        assert!(m.is_closed());
    }

    #[test]
    fn graceful_close_gives_up_after_the_deadline() {
        let (mut m, t0) = machine(TransportKind::Polling);
        m.close(CloseReason::ServerClose, true, t0);
        assert_eq!(m.next_deadline(), Some(t0 + TIMEOUT));
        assert!(!m.tick(t0).finished);
        assert!(m.tick(t0 + TIMEOUT).finished);
        assert!(m.is_closed());
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn websocket_graceful_close_flushes_then_closes() {
        let (mut m, t0) = machine(TransportKind::WebSocket);
        m.push(text("4bye")).unwrap();
        m.close(CloseReason::ServerClose, true, t0);
        assert_eq!(m.ws_step(), WsStep::Send(vec![text("4bye")]));
        assert_eq!(m.ws_step(), WsStep::Close);
        assert!(m.is_closed());
    }

    #[test]
    fn upgrade_sequence_keeps_the_queue_for_the_websocket() {
        let (mut m, _) = machine(TransportKind::Polling);
        let id = m.poll_begin().unwrap();
        assert!(m.upgrade_begin());
        assert!(!m.upgrade_begin(), "one upgrade at a time");
        m.push(text("4during")).unwrap();
        // before the probe, polling still carries data
        assert_eq!(m.poll_step(id, 100), sent(&["4during"]));
        m.poll_end(id);
        m.push(text("4queued")).unwrap();
        assert!(m.is_upgrading(), "attached, not probed yet");
        assert!(m.upgrade_probe());
        assert!(m.is_upgrading());
        let id = m.poll_begin().unwrap();
        assert_eq!(
            m.poll_step(id, 100),
            sent(&["6"]),
            "probed: polls end with noop"
        );
        m.poll_end(id);
        assert!(m.upgrade_complete());
        assert!(!m.is_upgrading());
        assert_eq!(m.transport(), TransportKind::WebSocket);
        assert_eq!(m.poll_begin(), Err(PollRefusal::WrongTransport));
        assert_eq!(m.post_begin(), Err(PollRefusal::WrongTransport));
        assert_eq!(m.ws_step(), WsStep::Send(vec![text("4queued")]));
        assert!(!m.upgrade_begin(), "no second upgrade");
    }

    #[test]
    fn a_graceful_close_during_a_probed_upgrade_finishes_on_the_websocket() {
        let (mut m, t0) = machine(TransportKind::Polling);
        assert!(m.upgrade_begin());
        assert!(m.upgrade_probe());
        m.push(text("4data")).unwrap();
        m.close(CloseReason::ServerShutdown, true, t0);
        assert!(m.upgrade_complete(), "the client's 5 still counts");
        assert_eq!(m.transport(), TransportKind::WebSocket);
        assert_eq!(
            m.ws_step(),
            WsStep::Send(vec![text("4data")]),
            "no polling close packet"
        );
        assert_eq!(m.ws_step(), WsStep::Close);
        // before the probe the upgrade is abandoned instead
        let (mut m, t0) = machine(TransportKind::Polling);
        assert!(m.upgrade_begin());
        m.close(CloseReason::ServerShutdown, true, t0);
        assert!(!m.upgrade_probe());
        assert!(!m.upgrade_complete());
    }

    #[test]
    fn upgrade_needs_probe_before_upgrade_and_can_abort() {
        let (mut m, _) = machine(TransportKind::Polling);
        assert!(!m.upgrade_probe(), "no probe without a WebSocket");
        assert!(m.upgrade_begin());
        assert!(!m.upgrade_complete(), "5 before 2probe");
        m.upgrade_abort();
        assert_eq!(m.transport(), TransportKind::Polling);
        assert!(m.upgrade_begin(), "a later upgrade may try again");
    }

    #[test]
    fn websocket_sessions_cannot_upgrade_or_poll() {
        let (mut m, _) = machine(TransportKind::WebSocket);
        assert!(!m.upgrade_begin());
        assert_eq!(m.poll_begin(), Err(PollRefusal::WrongTransport));
    }
}
