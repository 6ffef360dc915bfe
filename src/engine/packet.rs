//! engine.io v4 packets: the single-packet text and binary codec.
//!
//! A text packet is one type digit followed by its data (`4hello`, `2probe`);
//! a binary packet is a message whose bytes travel as they are (a binary
//! WebSocket frame, or `b` + base64 inside a polling payload).
//!
//! Outgoing packets are kept *encoded* ([`Frame`]) so that one message can be
//! queued for many sessions without being serialised again.

use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;
use std::sync::{Arc, OnceLock};

use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::error::DecodeError;

/// UTF-8 text held in shared, reference-counted bytes.
///
/// Cloning is cheap (a reference count), which lets one encoded message be
/// handed to many sessions. The text is checked once, when it is made, and
/// WebSocket frames (already checked by the WebSocket library) pass through
/// without being checked again.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Str(Utf8Bytes);

impl Str {
    /// Wraps bytes after checking that they are UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, DecodeError> {
        Utf8Bytes::try_from(bytes)
            .map(Self)
            .map_err(|_| DecodeError::InvalidUtf8)
    }

    /// A WebSocket text frame, checked by the WebSocket library.
    pub(crate) fn from_ws(text: Utf8Bytes) -> Self {
        Self(text)
    }

    /// The text as a WebSocket text frame, without copying.
    pub(crate) fn into_ws(self) -> Utf8Bytes {
        self.0
    }

    /// A static string, without copying.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Utf8Bytes::from_static(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The underlying shared bytes.
    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_ref()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text from byte `at` onwards (copied; used for the rare open
    /// packet). `at` must be a char boundary (callers skip ASCII digits).
    fn tail(&self, at: usize) -> Self {
        Self::from(&self.as_str()[at..])
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        Self(Utf8Bytes::from(s))
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Self(Utf8Bytes::from(s))
    }
}

impl From<Str> for Bytes {
    fn from(s: Str) -> Self {
        Bytes::from(s.0)
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The seven engine.io packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// `0`: handshake, sent by the server.
    Open,
    /// `1`: the transport is to be closed.
    Close,
    /// `2`: heartbeat request (and upgrade probe with data `probe`).
    Ping,
    /// `3`: heartbeat answer (and probe answer).
    Pong,
    /// `4`: application data.
    Message,
    /// `5`: completes an upgrade to WebSocket.
    Upgrade,
    /// `6`: nothing; ends a pending poll.
    Noop,
}

impl PacketType {
    fn from_digit(b: u8) -> Option<Self> {
        Some(match b {
            b'0' => Self::Open,
            b'1' => Self::Close,
            b'2' => Self::Ping,
            b'3' => Self::Pong,
            b'4' => Self::Message,
            b'5' => Self::Upgrade,
            b'6' => Self::Noop,
            _ => return None,
        })
    }
}

/// One engine.io packet, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Handshake data (JSON), sent by the server only.
    Open(Str),
    /// Close the session.
    Close,
    /// Heartbeat ping.
    Ping,
    /// Heartbeat pong.
    Pong,
    /// Upgrade probe (`2probe`).
    PingProbe,
    /// Upgrade probe answer (`3probe`).
    PongProbe,
    /// Application message, text or binary.
    Message(Message),
    /// Upgrade completed.
    Upgrade,
    /// No operation.
    Noop,
}

impl Packet {
    /// Decodes one text packet (a WebSocket text frame, or one element of a
    /// polling payload).
    pub fn decode_text(text: Str) -> Result<Self, DecodeError> {
        let first = *text.as_bytes().first().ok_or(DecodeError::Empty)?;
        let ty = PacketType::from_digit(first).ok_or(DecodeError::UnknownType)?;
        let data = &text.as_str()[1..];
        Ok(match ty {
            PacketType::Open => Packet::Open(text.tail(1)),
            PacketType::Message => Packet::Message(Message(Frame::Text(text))),
            PacketType::Ping | PacketType::Pong => {
                let probe = match data {
                    "" => false,
                    "probe" => true,
                    _ => return Err(DecodeError::UnexpectedData),
                };
                match (ty, probe) {
                    (PacketType::Ping, false) => Packet::Ping,
                    (PacketType::Ping, true) => Packet::PingProbe,
                    (_, false) => Packet::Pong,
                    (_, true) => Packet::PongProbe,
                }
            }
            PacketType::Close | PacketType::Upgrade | PacketType::Noop => {
                if !data.is_empty() {
                    return Err(DecodeError::UnexpectedData);
                }
                match ty {
                    PacketType::Close => Packet::Close,
                    PacketType::Upgrade => Packet::Upgrade,
                    _ => Packet::Noop,
                }
            }
        })
    }

    /// A binary packet is always a message.
    pub fn decode_binary(bytes: Bytes) -> Self {
        Packet::Message(Message(Frame::Binary(Binary::new(bytes))))
    }

    /// A v3 binary frame: the message type byte, then the data.
    pub fn decode_binary_v3(frame: Bytes) -> Result<Self, DecodeError> {
        match frame.first() {
            None => Err(DecodeError::Empty),
            Some(4) => Ok(Packet::Message(Message(Frame::Binary(Binary::from_typed(
                frame,
            ))))),
            Some(_) => Err(DecodeError::UnknownType),
        }
    }

    /// The packet encoded for the wire.
    pub fn to_frame(&self) -> Frame {
        match self {
            Packet::Open(data) => {
                let mut s = String::with_capacity(data.len() + 1);
                s.push('0');
                s.push_str(data.as_str());
                Frame::Text(s.into())
            }
            Packet::Close => Frame::Text(Str::from_static("1")),
            Packet::Ping => Frame::Text(Str::from_static("2")),
            Packet::Pong => Frame::Text(Str::from_static("3")),
            Packet::PingProbe => Frame::Text(Str::from_static("2probe")),
            Packet::PongProbe => Frame::Text(Str::from_static("3probe")),
            Packet::Message(m) => m.0.clone(),
            Packet::Upgrade => Frame::Text(Str::from_static("5")),
            Packet::Noop => Frame::Text(Str::from_static("6")),
        }
    }
}

/// The bytes of a binary message.
///
/// engine.io v3 puts the message type byte (`4`) in front of binary
/// frames, v4 does not. The v3 form is made once, on first need, and shared
/// by every clone, so a broadcast is encoded at most once per protocol
/// revision.
#[derive(Clone)]
pub struct Binary {
    data: Bytes,
    typed: Arc<OnceLock<Bytes>>,
}

impl Binary {
    /// Binary data as it is.
    pub fn new(data: Bytes) -> Self {
        Binary {
            data,
            typed: Arc::new(OnceLock::new()),
        }
    }

    /// A v3 binary frame: the caller checked that its first byte is the
    /// message type byte.
    pub(crate) fn from_typed(frame: Bytes) -> Self {
        Binary {
            data: frame.slice(1..),
            typed: Arc::new(OnceLock::from(frame)),
        }
    }

    /// The data.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The data with the v3 message type byte in front.
    pub fn typed(&self) -> Bytes {
        self.typed
            .get_or_init(|| {
                let mut b = BytesMut::with_capacity(self.data.len() + 1);
                b.put_u8(b'4' - b'0');
                b.put_slice(&self.data);
                b.freeze()
            })
            .clone()
    }
}

impl PartialEq for Binary {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data
    }
}

impl Eq for Binary {}

impl fmt::Debug for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.data, f)
    }
}

/// An encoded packet, ready for any transport: a text packet including its
/// type digit, or the bytes of a binary message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text packet (`4hello`, `2`, `0{…}`).
    Text(Str),
    /// A binary message.
    Binary(Binary),
}

impl Frame {
    /// Size in bytes as queued (text with its type digit, or raw binary).
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(s) => s.len(),
            Frame::Binary(b) => b.data.len(),
        }
    }

    /// Whether the frame holds no bytes at all (never true for a packet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An engine.io message (packet type `4`), text or binary.
///
/// Build it once with [`Message::text`] or [`Message::binary`] and send clones
/// to as many sessions as needed: the encoded bytes are shared.
#[derive(Clone, PartialEq, Eq)]
pub struct Message(Frame);

impl Message {
    /// A text message.
    pub fn text(text: impl AsRef<str>) -> Self {
        let text = text.as_ref();
        let mut s = String::with_capacity(text.len() + 1);
        s.push('4');
        s.push_str(text);
        Message(Frame::Text(s.into()))
    }

    /// A text message from an already encoded packet: `frame` starts with
    /// the message type digit `4`.
    pub(crate) fn from_text_frame(frame: String) -> Self {
        debug_assert!(frame.starts_with('4'));
        Message(Frame::Text(frame.into()))
    }

    /// A binary message.
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Message(Frame::Binary(Binary::new(bytes.into())))
    }

    /// The text of a text message (without the packet type digit).
    pub fn as_text(&self) -> Option<&str> {
        match &self.0 {
            Frame::Text(s) => Some(&s.as_str()[1..]),
            Frame::Binary(_) => None,
        }
    }

    /// The bytes of a binary message.
    pub fn as_binary(&self) -> Option<&Bytes> {
        match &self.0 {
            Frame::Binary(b) => Some(&b.data),
            Frame::Text(_) => None,
        }
    }

    /// Whether this is a binary message.
    pub fn is_binary(&self) -> bool {
        matches!(self.0, Frame::Binary(_))
    }

    /// The encoded packet.
    pub fn frame(&self) -> &Frame {
        &self.0
    }

    /// Payload size in bytes (text without its type digit, or binary).
    pub fn len(&self) -> usize {
        match &self.0 {
            Frame::Text(s) => s.len() - 1,
            Frame::Binary(b) => b.data.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Frame::Text(_) => f
                .debug_tuple("Message::Text")
                .field(&self.as_text().unwrap_or_default())
                .finish(),
            Frame::Binary(b) => f.debug_tuple("Message::Binary").field(&b.data).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &'static str) -> Result<Packet, DecodeError> {
        Packet::decode_text(Str::from_static(s))
    }

    #[test]
    fn decodes_every_text_type() {
        assert_eq!(
            decode("0{\"sid\":\"x\"}").unwrap(),
            Packet::Open("{\"sid\":\"x\"}".into())
        );
        assert_eq!(decode("1").unwrap(), Packet::Close);
        assert_eq!(decode("2").unwrap(), Packet::Ping);
        assert_eq!(decode("3").unwrap(), Packet::Pong);
        assert_eq!(decode("2probe").unwrap(), Packet::PingProbe);
        assert_eq!(decode("3probe").unwrap(), Packet::PongProbe);
        assert_eq!(decode("5").unwrap(), Packet::Upgrade);
        assert_eq!(decode("6").unwrap(), Packet::Noop);
        match decode("4hello").unwrap() {
            Packet::Message(m) => assert_eq!(m.as_text(), Some("hello")),
            p => panic!("unexpected {p:?}"),
        }
    }

    #[test]
    fn message_may_be_empty_or_multibyte() {
        match decode("4").unwrap() {
            Packet::Message(m) => assert_eq!(m.as_text(), Some("")),
            p => panic!("unexpected {p:?}"),
        }
        let p = Packet::decode_text(Str::from("4héllo ✓ 🎉")).unwrap();
        assert_eq!(p, Packet::Message(Message::text("héllo ✓ 🎉")));
    }

    #[test]
    fn rejects_bad_text_packets() {
        assert_eq!(decode(""), Err(DecodeError::Empty));
        assert_eq!(decode("7"), Err(DecodeError::UnknownType));
        assert_eq!(decode("abc"), Err(DecodeError::UnknownType));
        assert_eq!(decode("b4AQI="), Err(DecodeError::UnknownType));
        assert_eq!(decode("2ping"), Err(DecodeError::UnexpectedData));
        assert_eq!(decode("1x"), Err(DecodeError::UnexpectedData));
        assert_eq!(decode("5probe"), Err(DecodeError::UnexpectedData));
        assert_eq!(
            Str::from_utf8(Bytes::from_static(b"4\xff")),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn encodes_every_type() {
        let cases = [
            (Packet::Open("{}".into()), "0{}"),
            (Packet::Close, "1"),
            (Packet::Ping, "2"),
            (Packet::Pong, "3"),
            (Packet::PingProbe, "2probe"),
            (Packet::PongProbe, "3probe"),
            (Packet::Message(Message::text("hi")), "4hi"),
            (Packet::Upgrade, "5"),
            (Packet::Noop, "6"),
        ];
        for (packet, wire) in cases {
            assert_eq!(packet.to_frame(), Frame::Text(Str::from(wire)));
            // and back again
            assert_eq!(Packet::decode_text(Str::from(wire)).unwrap(), packet);
        }
    }

    #[test]
    fn binary_round_trip_shares_bytes() {
        let bytes = Bytes::from_static(&[0, 1, 2, 255]);
        let p = Packet::decode_binary(bytes.clone());
        assert_eq!(p.to_frame(), Frame::Binary(Binary::new(bytes.clone())));
        let m = Message::binary(bytes.clone());
        assert_eq!(m.as_binary(), Some(&bytes));
        assert_eq!(m.len(), 4);
        assert!(m.as_text().is_none());
    }

    #[test]
    fn v3_binary_frames_carry_the_type_byte() {
        let frame = Bytes::from_static(&[4, 1, 2, 3]);
        let Packet::Message(m) = Packet::decode_binary_v3(frame.clone()).unwrap() else {
            panic!("a message")
        };
        assert_eq!(&m.as_binary().unwrap()[..], &[1, 2, 3]);
        let Frame::Binary(b) = m.frame() else {
            panic!("binary")
        };
        assert_eq!(b.typed(), frame, "the received frame is reused as is");
        assert_eq!(
            Message::binary(vec![9u8]).frame(),
            &Frame::Binary(Binary::new(Bytes::from(vec![9u8])))
        );
        let Frame::Binary(b) = Message::binary(vec![9u8]).frame().clone() else {
            panic!()
        };
        assert_eq!(&b.typed()[..], &[4, 9]);
        // one message sent to many v3 sessions is prefixed once
        let shared = Message::binary(vec![7u8; 64]);
        let copy = shared.clone();
        let (Frame::Binary(a), Frame::Binary(b)) = (shared.frame(), copy.frame()) else {
            panic!("binary")
        };
        assert_eq!(a.typed().as_ptr(), b.typed().as_ptr());
        assert_eq!(
            Packet::decode_binary_v3(Bytes::new()),
            Err(DecodeError::Empty)
        );
        assert_eq!(
            Packet::decode_binary_v3(Bytes::from_static(&[3, 1])),
            Err(DecodeError::UnknownType)
        );
    }
}
