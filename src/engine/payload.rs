//! engine.io v4 polling payloads: packets joined by the record separator
//! `0x1e`, binary messages as `b` followed by base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{BufMut, Bytes, BytesMut};

use super::error::DecodeError;
use super::packet::{Frame, Packet, Str};

/// The byte between two packets of a v4 payload.
pub const SEPARATOR: u8 = 0x1e;

/// Decodes a whole polling payload into its packets, in order.
///
/// The text parts share the body's allocation. An empty body, or any part
/// that does not decode, is an error for the whole payload.
pub fn decode(body: Bytes) -> Result<Vec<Packet>, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut packets = Vec::new();
    let mut start = 0;
    loop {
        let end = body[start..]
            .iter()
            .position(|&b| b == SEPARATOR)
            .map_or(body.len(), |i| start + i);
        packets.push(decode_one(body.slice(start..end))?);
        if end == body.len() {
            return Ok(packets);
        }
        start = end + 1;
    }
}

fn decode_one(part: Bytes) -> Result<Packet, DecodeError> {
    match part.first() {
        Some(b'b') => {
            let bin = BASE64
                .decode(&part[1..])
                .map_err(|_| DecodeError::InvalidBase64)?;
            Ok(Packet::decode_binary(Bytes::from(bin)))
        }
        _ => Packet::decode_text(Str::from_utf8(part)?),
    }
}

/// Bytes that `frame` takes in a v4 payload (without separator).
pub fn encoded_len(frame: &Frame) -> usize {
    match frame {
        Frame::Text(s) => s.len(),
        Frame::Binary(b) => 1 + base64::encoded_len(b.data().len(), true).unwrap_or(usize::MAX),
    }
}

/// Encodes frames as one payload.
pub fn encode<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Bytes {
    let mut out = BytesMut::new();
    for (i, frame) in frames.into_iter().enumerate() {
        if i > 0 {
            out.put_u8(SEPARATOR);
        }
        match frame {
            Frame::Text(s) => out.put_slice(s.as_bytes()),
            Frame::Binary(b) => {
                out.put_u8(b'b');
                out.put_slice(BASE64.encode(b.data()).as_bytes());
            }
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::packet::Message;

    fn frames(payload: &'static [u8]) -> Result<Vec<Packet>, DecodeError> {
        decode(Bytes::from_static(payload))
    }

    #[test]
    fn decodes_one_and_several_packets() {
        assert_eq!(
            frames(b"4hello").unwrap(),
            vec![Packet::Message(Message::text("hello"))]
        );
        assert_eq!(
            frames(b"4hello\x1e4world\x1e3").unwrap(),
            vec![
                Packet::Message(Message::text("hello")),
                Packet::Message(Message::text("world")),
                Packet::Pong,
            ]
        );
    }

    #[test]
    fn decodes_base64_binary() {
        assert_eq!(
            frames(b"4hello\x1ebAQIDBA==").unwrap(),
            vec![
                Packet::Message(Message::text("hello")),
                Packet::Message(Message::binary(vec![1u8, 2, 3, 4])),
            ]
        );
    }

    #[test]
    fn rejects_bad_payloads() {
        assert_eq!(frames(b""), Err(DecodeError::Empty));
        assert_eq!(frames(b"abc"), Err(DecodeError::UnknownType));
        assert_eq!(frames(b"4a\x1e"), Err(DecodeError::Empty));
        assert_eq!(frames(b"\x1e4a"), Err(DecodeError::Empty));
        assert_eq!(frames(b"b!!"), Err(DecodeError::InvalidBase64));
        // a multi-byte character cut in half
        assert_eq!(frames(b"4\xc3"), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn encodes_with_separator_and_base64() {
        let out = encode(&[
            Message::text("hello").frame().clone(),
            Message::binary(vec![1u8, 2, 3, 4]).frame().clone(),
            Packet::Ping.to_frame(),
        ]);
        assert_eq!(&out[..], b"4hello\x1ebAQIDBA==\x1e2");
        assert_eq!(encoded_len(Message::binary(vec![1u8, 2, 3, 4]).frame()), 9);
        assert_eq!(encoded_len(Message::text("hello").frame()), 6);
    }

    #[test]
    fn round_trips_multibyte_text() {
        let msgs = [
            Message::text("héllo ✓ 🎉"),
            Message::text(""),
            Message::binary(vec![255u8]),
        ];
        let wire = encode(msgs.iter().map(Message::frame));
        let back = decode(wire).unwrap();
        let want: Vec<Packet> = msgs.into_iter().map(Packet::Message).collect();
        assert_eq!(back, want);
    }
}
