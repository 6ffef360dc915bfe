//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Not part of the API: the session state machine is crate-private, and this
//! module is the one door the `session` fuzz target needs. Violated
//! invariants panic, which is how libFuzzer learns of them.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::engine::packet::{Frame, Message, Packet, Str};
use crate::engine::{
    CloseReason, Machine, PollStep, Protocol, SendError, Timing, TransportKind, WsStep, payload,
    payload_v3,
};

/// Drives one session state machine with events read from `input` and
/// checks its invariants after every event; panics on a violation.
///
/// The first four bytes choose the protocol and initial transport (bit 0:
/// v3, bit 1: WebSocket), the queue bound (2 × byte) and the ping interval
/// and timeout (10 ms × (1 + byte % 100)). Each following byte, modulo 20,
/// is an event taking its arguments from the bytes after it:
///
/// | byte | event |
/// | --- | --- |
/// | 0, len, bytes | a packet as the WebSocket reader decodes it |
/// | 1, k | a well-formed packet (ping, pong, probes, close, upgrade, noop, open, messages) |
/// | 2, len, bytes | a POST body, decoded by the session's protocol |
/// | 3, ms / 4 | the fake clock moves on by `ms`, or to the next deadline; then a tick |
/// | 5 / 6, n / 7 | poll begins / steps (`max_payload` 1 + 2n) / is dropped by the client |
/// | 8 | an empty POST begins and ends |
/// | 9 / 10 / 11 / 12 | upgrade begins / `2probe` / `5` / aborts |
/// | 13, r / 14, r | graceful / forced close with reason `r` |
/// | 15, s / 16, n, s… / 17, s | the application queues a message / 1–3 together / a volatile one |
/// | 18 | the WebSocket writer asks for frames |
/// | 19, n | the pending poll answers and the client polls again, up to 4 times |
///
/// The transports' reactions (closing on a refusal or an error, ending a
/// poll once it answered) are mirrored, so the machine sees what it sees in
/// production.
pub fn drive_session(input: &[u8]) {
    let mut input = Input(input);
    let mut driver = Driver::new(&mut input);
    while let Some(op) = input.byte() {
        driver.step(op, &mut input);
        driver.check();
    }
}

/// The unread part of the fuzzer's input; reads past the end give zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn arg(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

struct Driver {
    machine: Machine,
    max_queue_bytes: usize,
    now: Instant,
    /// The pending GET, as the polling transport holds it.
    poll: Option<u64>,
    /// The application frames queued and not yet sent, in order.
    expected: VecDeque<Frame>,
    /// Makes every application frame distinct, so order can be checked.
    serial: u64,
    /// The session left `Open`/`Upgrading` (closing or closed).
    left_open: bool,
    /// The session reached `Closed`.
    closed: bool,
    /// The session is on WebSocket (opened there, or upgraded).
    upgraded: bool,
}

impl Driver {
    fn new(input: &mut Input<'_>) -> Self {
        let flags = input.arg();
        let protocol = if flags & 1 == 0 {
            Protocol::V4
        } else {
            Protocol::V3
        };
        let transport = if flags & 2 == 0 {
            TransportKind::Polling
        } else {
            TransportKind::WebSocket
        };
        let max_queue_bytes = usize::from(input.arg()) * 2;
        let timing = Timing {
            ping_interval: Duration::from_millis(10 * (1 + u64::from(input.arg() % 100))),
            ping_timeout: Duration::from_millis(10 * (1 + u64::from(input.arg() % 100))),
            max_queue_bytes,
        };
        let now = Instant::now();
        Driver {
            machine: Machine::new(protocol, transport, timing, now),
            max_queue_bytes,
            now,
            poll: None,
            expected: VecDeque::new(),
            serial: 0,
            left_open: false,
            closed: false,
            upgraded: transport == TransportKind::WebSocket,
        }
    }

    fn step(&mut self, op: u8, input: &mut Input<'_>) {
        match op % 20 {
            0 => {
                // One packet as the WebSocket reader gets it.
                let len = usize::from(input.arg() % 32);
                let raw = Bytes::copy_from_slice(input.take(len));
                let decoded = match (raw.first(), self.machine.protocol()) {
                    (Some(0..=9), Protocol::V4) => Ok(Packet::decode_binary(raw)),
                    (Some(0..=9), Protocol::V3) => Packet::decode_binary_v3(raw),
                    _ => Str::from_utf8(raw).and_then(Packet::decode_text),
                };
                match decoded {
                    Ok(packet) => {
                        self.packet(packet);
                    }
                    Err(_) => self.close(CloseReason::ParseError, false),
                }
            }
            1 => {
                // A well-formed packet, to reach deep states quickly.
                let packet = match input.arg() % 10 {
                    0 => Packet::Ping,
                    1 => Packet::Pong,
                    2 => Packet::PingProbe,
                    3 => Packet::PongProbe,
                    4 => Packet::Close,
                    5 => Packet::Upgrade,
                    6 => Packet::Noop,
                    7 => Packet::Open("{}".into()),
                    8 => Packet::Message(Message::text("hi")),
                    _ => Packet::Message(Message::binary(vec![1u8, 2])),
                };
                self.packet(packet);
            }
            2 => {
                // A POST: its body decoded by the session's protocol.
                let len = usize::from(input.arg() % 64);
                let body = input.take(len);
                if self.post_begin() {
                    let packets = match self.machine.protocol() {
                        Protocol::V4 => payload::decode(Bytes::copy_from_slice(body)),
                        Protocol::V3 => std::str::from_utf8(body)
                            .map_err(|_| crate::engine::DecodeError::InvalidUtf8)
                            .and_then(payload_v3::decode_text),
                    };
                    match packets {
                        Ok(packets) => {
                            for packet in packets {
                                if !self.packet(packet) {
                                    break;
                                }
                            }
                        }
                        Err(_) => self.close(CloseReason::ParseError, false),
                    }
                    self.machine.post_end();
                }
            }
            3 => {
                self.now += Duration::from_millis(u64::from(input.arg()));
                self.tick();
            }
            4 => {
                // Straight to the next deadline, as the heartbeat driver does.
                if let Some(deadline) = self.machine.next_deadline() {
                    self.now = self.now.max(deadline);
                }
                self.tick();
            }
            5 => self.poll_begin(),
            6 => {
                let max_payload = 1 + usize::from(input.arg()) * 2;
                self.poll_step(max_payload);
            }
            7 => {
                // The client went away mid-poll.
                if let Some(id) = self.poll.take() {
                    self.machine.poll_end(id);
                }
            }
            8 => {
                if self.post_begin() {
                    self.machine.post_end();
                }
            }
            9 => {
                self.machine.upgrade_begin();
            }
            10 => {
                self.machine.upgrade_probe();
            }
            11 => {
                if self.machine.upgrade_complete() {
                    self.upgraded = true;
                }
            }
            12 => self.machine.upgrade_abort(),
            13 => {
                let reason = reason(input.arg());
                self.close(reason, true);
            }
            14 => {
                let reason = reason(input.arg());
                self.close(reason, false);
            }
            15 => {
                let frame = self.frame(input.arg());
                self.push(&[frame], |m, f| m.push(f[0].clone()));
            }
            16 => {
                let frames: Vec<Frame> = (0..=input.arg() % 3)
                    .map(|_| self.frame(input.arg()))
                    .collect();
                self.push(&frames, |m, f| m.push_all(f));
            }
            17 => {
                let frames = [self.frame(input.arg())];
                let idle = self.machine.queued_frames().next().is_none();
                if self.machine.push_volatile(&frames) {
                    assert!(idle, "a volatile message queued behind others");
                    self.expected.extend(frames);
                }
            }
            18 => self.ws_step(),
            _ => {
                // A pending poll sees every change: step it until it waits.
                let max_payload = 1 + usize::from(input.arg()) * 8;
                for _ in 0..4 {
                    if self.poll.is_none() {
                        break;
                    }
                    self.poll_step(max_payload);
                    self.poll_begin();
                }
            }
        }
    }

    /// A packet from the client; returns whether the session stays open.
    fn packet(&mut self, packet: Packet) -> bool {
        match self.machine.on_packet(packet, self.now) {
            Ok(_) => true,
            Err(reason) => {
                self.close(reason, false);
                false
            }
        }
    }

    fn close(&mut self, reason: CloseReason, graceful: bool) {
        let was_open = self.machine.is_open();
        let closed = self.machine.close(reason, graceful, self.now);
        assert_eq!(closed.first, was_open, "the first close decides");
        if closed.finished {
            self.finished();
        }
    }

    fn tick(&mut self) {
        let tick = self.machine.tick(self.now);
        if tick.timed_out {
            assert!(self.machine.is_open(), "only an open session times out");
            self.close(CloseReason::PingTimeout, false);
        }
        if tick.finished {
            self.finished();
        }
    }

    /// The session reached `Closed`: what was not sent is dropped.
    fn finished(&mut self) {
        assert!(self.machine.is_closed(), "finished but not closed");
        self.expected.clear();
    }

    fn poll_begin(&mut self) {
        match self.machine.poll_begin() {
            Ok(id) => {
                assert!(self.poll.is_none(), "a second poll was accepted");
                assert!(!self.closed, "a poll on a closed session was accepted");
                self.poll = Some(id);
            }
            Err(crate::engine::PollRefusal::Overlap) => {
                self.close(CloseReason::TransportError, false);
            }
            Err(_) => {}
        }
    }

    fn post_begin(&mut self) -> bool {
        match self.machine.post_begin() {
            Ok(()) => {
                assert!(!self.closed, "a POST on a closed session was accepted");
                true
            }
            Err(crate::engine::PollRefusal::Overlap) => {
                unreachable!("the driver never overlaps its own POSTs")
            }
            Err(_) => false,
        }
    }

    fn poll_step(&mut self, max_payload: usize) {
        let Some(id) = self.poll else { return };
        let closed_before = self.machine.is_closed();
        match self.machine.poll_step(id, max_payload) {
            PollStep::Wait => {
                assert!(!closed_before, "a closed session keeps a poll waiting");
            }
            PollStep::Send { frames, finished } => {
                assert!(!frames.is_empty(), "a poll answered with nothing");
                if closed_before {
                    let alone = [Packet::Close.to_frame(), Packet::Noop.to_frame()];
                    assert!(
                        frames.len() == 1 && alone.contains(&frames[0]) && !finished,
                        "poll after the session finished answered {frames:?}"
                    );
                }
                if frames.len() > 1 {
                    let size: usize =
                        frames.iter().map(payload::encoded_len).sum::<usize>() + frames.len() - 1;
                    assert!(size <= max_payload, "a batch over max_payload");
                    assert!(
                        !frames.contains(&Packet::Close.to_frame()),
                        "the close packet travels alone"
                    );
                }
                self.sent(&frames);
                if finished {
                    assert!(self.expected.is_empty(), "a graceful close lost data");
                    self.finished();
                }
                // The polling transport answers and ends the request.
                self.machine.poll_end(id);
                self.poll = None;
            }
        }
    }

    fn ws_step(&mut self) {
        // Only the WebSocket transport's writer asks.
        if self.machine.transport() != TransportKind::WebSocket {
            return;
        }
        match self.machine.ws_step() {
            WsStep::Wait => assert!(
                self.machine.queued_frames().next().is_none(),
                "the WebSocket writer waits with frames queued"
            ),
            WsStep::Send(frames) => {
                assert!(!frames.is_empty(), "a WebSocket write of nothing");
                assert!(!self.closed, "frames written after the session finished");
                self.sent(&frames);
                // The writer here writes at once.
                self.machine.written(frames.iter().map(Frame::len).sum());
            }
            WsStep::Close => {
                if !self.closed {
                    assert!(self.expected.is_empty(), "a graceful close lost data");
                }
                self.finished();
            }
        }
    }

    /// Application frames leave in the order they were queued.
    fn sent(&mut self, frames: &[Frame]) {
        for frame in frames.iter().filter(|f| is_app(f)) {
            let want = self.expected.pop_front();
            assert_eq!(Some(frame), want.as_ref(), "application frame out of order");
        }
    }

    fn push(
        &mut self,
        frames: &[Frame],
        push: impl FnOnce(&mut Machine, &[Frame]) -> Result<(), SendError>,
    ) {
        let open = self.machine.is_open();
        let queued: usize = self.machine.queued_frames().map(Frame::len).sum();
        let len: usize = frames.iter().map(Frame::len).sum();
        match push(&mut self.machine, frames) {
            Ok(()) => {
                assert!(open, "queued on a closed session");
                self.expected.extend(frames.iter().cloned());
            }
            Err(SendError::Closed) => assert!(!open, "refused as closed while open"),
            Err(SendError::QueueFull) => {
                assert!(open, "refused as full while closed");
                assert!(
                    queued + len > self.max_queue_bytes,
                    "refused with room left"
                );
            }
            Err(SendError::MessageTooLarge) => {
                assert!(open, "refused as too large while closed");
                assert!(len > self.max_queue_bytes, "refused as too large but fits");
            }
        }
    }

    /// A distinct application message of about `size` bytes.
    fn frame(&mut self, size: u8) -> Frame {
        self.serial += 1;
        let mut data = self.serial.to_string();
        let size = usize::from(size % 64);
        if size > data.len() {
            data.push_str(&"x".repeat(size - data.len()));
        }
        if size % 2 == 0 {
            Message::text(data).frame().clone()
        } else {
            Message::binary(data.into_bytes()).frame().clone()
        }
    }

    fn app_frames(&self) -> impl Iterator<Item = &Frame> {
        self.machine.queued_frames().filter(|f| is_app(f))
    }

    /// The invariants that hold between any two events.
    fn check(&mut self) {
        let m = &self.machine;
        let app: Vec<&Frame> = self.app_frames().collect();
        let control = m.queued_frames().count() - app.len();
        let app_bytes: usize = app.iter().map(|f| f.len()).sum();
        assert!(
            app_bytes <= self.max_queue_bytes,
            "{app_bytes} application bytes queued past the bound {}",
            self.max_queue_bytes
        );
        assert!(
            control <= app.len() + 2,
            "{control} control packets queued with {} messages",
            app.len()
        );
        assert!(
            app.iter().copied().eq(self.expected.iter()),
            "the queue holds other messages than were pushed"
        );
        let total: usize = m.queued_frames().map(Frame::len).sum();
        assert_eq!(
            m.queued_bytes(),
            total,
            "queued_bytes() is not what is queued"
        );

        if self.left_open {
            assert!(!m.is_open(), "a closing session opened again");
        }
        self.left_open |= !m.is_open();
        if self.closed {
            assert!(m.is_closed(), "a closed session came back");
        }
        if m.is_closed() {
            self.closed = true;
            assert_eq!(
                m.queued_frames().count(),
                0,
                "a closed session keeps a queue"
            );
            assert_eq!(m.next_deadline(), None, "a closed session has a deadline");
            assert!(m.close_reason().is_some(), "closed without a reason");
        } else {
            assert!(m.next_deadline().is_some() || !m.is_open());
        }
        if self.upgraded {
            assert_eq!(m.transport(), TransportKind::WebSocket, "back to polling");
        }
    }
}

/// An application frame, as opposed to a control packet queued by the
/// machine: a message (`4…`) or binary data.
fn is_app(frame: &Frame) -> bool {
    match frame {
        Frame::Text(s) => s.as_bytes().first() == Some(&b'4'),
        Frame::Binary(_) => true,
    }
}

fn reason(b: u8) -> CloseReason {
    match b % 8 {
        0 => CloseReason::TransportClose,
        1 => CloseReason::TransportError,
        2 => CloseReason::ParseError,
        3 => CloseReason::PayloadTooLarge,
        4 => CloseReason::PingTimeout,
        5 => CloseReason::ServerClose,
        6 => CloseReason::ServerShutdown,
        _ => CloseReason::SlowConsumer,
    }
}

/// Runs every decoder of the cluster bus on `input` (a Redis message from
/// another node: msgpack, a broadcast, a request, a response) and checks
/// that what decodes encodes to bytes that decode to the same value;
/// panics otherwise.
pub fn decode_bus(input: &[u8]) {
    crate::cluster::wire::check_round_trips(input);
}

/// Decodes `input` as a socket.io packet of the msgpack parser (one binary
/// message from a client) with the default limits, and checks that what
/// decodes stays within them and encodes to bytes that decode to the same
/// packet; panics otherwise.
pub fn decode_msgpack_packet(input: &[u8]) {
    use crate::socketio::msgpack::{Data, Limits, decode, encode};
    use crate::socketio::packet::PacketType;
    let limits = Limits::default();
    let Ok(packet) = decode(&bytes::Bytes::copy_from_slice(input), &limits) else {
        return;
    };
    assert!(packet.attachments.len() <= limits.packet.max_attachments);
    let bytes: usize = packet.attachments.iter().map(|b| b.len()).sum();
    assert!(bytes <= limits.packet.max_attachment_bytes);
    if !packet.ty.is_binary() {
        assert!(packet.attachments.is_empty(), "{packet:?}");
    }
    let data = match (&packet.data, packet.ty) {
        (None, _) => Data::None,
        (
            Some(serde_json::Value::Array(args)),
            PacketType::Event | PacketType::Ack | PacketType::BinaryEvent | PacketType::BinaryAck,
        ) => Data::Args {
            event: None,
            args,
            bins: &packet.attachments,
            offset: None,
        },
        (Some(json), _) => Data::Json(json),
    };
    let again = encode(packet.ty, &packet.nsp, packet.id, data);
    let decoded = decode(&again, &limits).expect("an encoded packet decodes");
    assert_eq!(decoded, packet);
}

/// Reads `input` as client bytes on a WebSocket that negotiated
/// permessage-deflate (max_payload 4096): frames are parsed and compressed
/// messages inflated without panicking, to the end. The same bytes,
/// compressed as the server sends them, inflate back to themselves. (That
/// no message inflates past the bound is `deflate::inflate`'s own check,
/// tested by its unit tests and by `tests/ws_deflate.rs`'s deflate bomb;
/// this target does not assert it on the output.)
pub fn inflate_ws(input: &[u8]) {
    crate::transport::fuzz_inflate_ws(input, 4096);
}

#[cfg(test)]
mod tests {
    use super::drive_session;
    use crate::test_rng::Rng;

    /// The `ws_inflate` fuzz target's body holds on a few literal inputs.
    #[test]
    fn inflate_ws_holds_on_frames_and_noise() {
        // A compressed text frame (RSV1, masked with zeros), a bomb, a
        // truncated header, garbage flagged as compressed, and noise.
        let hello = [
            0xc1, 0x87, 0, 0, 0, 0, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00,
        ];
        let mut bomb = vec![0xc2, 0xfe, 0x01, 0x00, 0, 0, 0, 0];
        bomb.extend(
            crate::transport::fuzz_compress(&[0; 100_000])
                .iter()
                .take(256),
        );
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        for input in [
            &hello[..],
            &bomb,
            &[0xc1, 0xfe],
            &[0xc1, 0x83, 0, 0, 0, 0, 0xff, 0xff, 0xff],
            &noise,
        ] {
            super::inflate_ws(input);
        }
    }

    /// The committed seeds of the `session` fuzz target, and the reproducers
    /// kept beside them, still hold every invariant.
    #[test]
    fn session_seeds_hold_the_invariants() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/session");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("fuzz/seeds/session") {
            let input = std::fs::read(entry.unwrap().path()).unwrap();
            drive_session(&input);
            seen += 1;
        }
        assert!(seen > 0, "no seeds in {dir}");
    }

    /// The committed seeds of the `msgpack_packet` fuzz target decode
    /// (but the fake placeholder) and hold its properties, and so does
    /// every seed with any one byte changed.
    #[test]
    fn msgpack_packet_seeds_hold() {
        use crate::socketio::msgpack::{Limits, decode};
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/msgpack_packet");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("fuzz/seeds/msgpack_packet") {
            let entry = entry.unwrap();
            let input = std::fs::read(entry.path()).unwrap();
            let decodes = decode(&bytes::Bytes::from(input.clone()), &Limits::default()).is_ok();
            assert_eq!(
                decodes,
                entry.file_name() != "fake-placeholder",
                "{entry:?}"
            );
            super::decode_msgpack_packet(&input);
            for i in 0..input.len() {
                for byte in [0x00, 0x7f, 0x80, 0xc0, 0xc4, 0xd4, 0xdf, 0xff] {
                    let mut changed = input.clone();
                    changed[i] = byte;
                    super::decode_msgpack_packet(&changed);
                }
            }
            seen += 1;
        }
        assert!(seen > 0, "no seeds in {dir}");
    }

    /// Random scripts, the same on every run: the invariants are checked in
    /// the test suite too, not only when someone runs the fuzzer.
    #[test]
    fn random_session_scripts_hold_the_invariants() {
        let mut rng = Rng(0x5e55_10f5);
        for _ in 0..3_000 {
            let len = rng.below(400);
            let input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            drive_session(&input);
        }
    }
}
