//! engine.io v3 polling payloads (`EIO=3`), in their text and binary forms.
//!
//! *Text* (`text/plain`; always used under `b64=1` and for JSONP): each
//! packet as `<length>:<packet>`, the length counting UTF-16 code units the
//! way JavaScript's `String.length` does (`é` and `✓` count 1, `🎉` counts 2).
//! A binary message is `b4` followed by base64, so the bytes `01 02 03 04`
//! travel as `10:b4AQIDBA==`.
//!
//! *Binary* (`application/octet-stream`): each packet as a marker byte (0 for
//! text, 1 for binary), its length in decimal written one byte per digit
//! (values 0–9, not ASCII), the byte `0xFF`, then the packet. A text packet is
//! its UTF-8 bytes and the length counts bytes; a binary packet is the type
//! byte 4 followed by the data, and the length counts that type byte:
//! `4hello` and `01 02 03 04` travel as
//! `00 06 ff 34 68 65 6c 6c 6f 01 05 ff 04 01 02 03 04`.
//!
//! These rules are those of engine.io-parser 2.x, the parser of engine.io 3
//! servers and clients. The v3 protocol document's binary example leaves the
//! type byte out of a binary packet; the parser and the v3 test suite put it
//! in, and so does this module.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{BufMut, Bytes, BytesMut};

use super::error::DecodeError;
use super::packet::{Frame, Packet, Str};

/// Most digits a length prefix may have: lengths up to 9 999 999 999.
const MAX_LENGTH_DIGITS: usize = 10;
/// Ends a text payload's length prefix.
const TEXT_LENGTH_END: u8 = b':';
/// Ends a binary payload's length prefix.
const BINARY_LENGTH_END: u8 = 0xFF;
/// Binary payload marker of a text packet.
const TEXT_MARKER: u8 = 0;
/// Binary payload marker of a binary packet.
const BINARY_MARKER: u8 = 1;
/// The message packet type, as the byte in front of binary data.
const MESSAGE_TYPE: u8 = 4;

/// Decodes a text payload into its packets, in order.
///
/// An empty body, a malformed or overlong length prefix, a length that runs
/// past the end or ends inside a character (between the two UTF-16 halves
/// of `🎉`), trailing bytes that are not a whole `<length>:<packet>`, or any
/// packet that does not decode is an error for the whole payload. A
/// zero-length entry (`0:`, what a v3 peer sends for "no packets") is
/// skipped, as the reference parser does.
pub fn decode_text(body: &str) -> Result<Vec<Packet>, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut packets = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let sep = rest
            .bytes()
            .take(MAX_LENGTH_DIGITS + 1)
            .position(|b| b == TEXT_LENGTH_END)
            .ok_or(DecodeError::InvalidLength)?;
        let units = parse_length(&rest.as_bytes()[..sep], b'0')?;
        // The separator is ASCII, so `sep + 1` is a char boundary.
        let data = &rest[sep + 1..];
        let end = utf16_end(data, units)?;
        let (packet, next) = data.split_at(end);
        if !packet.is_empty() {
            packets.push(decode_packet(packet)?);
        }
        rest = next;
    }
    Ok(packets)
}

/// Encodes frames as one text payload: each text frame as
/// `<UTF-16 length>:<text>`, each binary frame as `<length>:b4<base64>`.
///
/// No frames at all give `0:`, the reference encoding of an empty payload
/// (an empty body would be a parse error for the client).
pub fn encode_text<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> String {
    let mut out = String::new();
    for frame in frames {
        match frame {
            Frame::Text(s) => {
                let s = s.as_str();
                let units: usize = s.chars().map(char::len_utf16).sum();
                out.extend(decimal_digits(units).map(|d| char::from(b'0' + d)));
                out.push(char::from(TEXT_LENGTH_END));
                out.push_str(s);
            }
            Frame::Binary(b) => {
                let b = b.data();
                // `b4` plus padded base64, all ASCII: one UTF-16 unit each.
                let units = 2 + 4 * b.len().div_ceil(3);
                out.extend(decimal_digits(units).map(|d| char::from(b'0' + d)));
                out.push(char::from(TEXT_LENGTH_END));
                out.push_str("b4");
                BASE64.encode_string(b, &mut out);
            }
        }
    }
    if out.is_empty() {
        out.push_str("0:");
    }
    out
}

/// Decodes a binary payload (`application/octet-stream`) into its packets,
/// in order.
///
/// An empty body, a marker other than 0 or 1, a length that is not 1 to 10
/// digit bytes (values 0–9) closed by `0xFF`, a length past the end, a text
/// packet that is not UTF-8 (including a length that ends inside a
/// character), a binary packet that is not a message (type byte 4), or any
/// packet that does not decode is an error for the whole payload.
pub fn decode_binary(body: &[u8]) -> Result<Vec<Packet>, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut packets = Vec::new();
    let mut rest = body;
    while let Some((&marker, after)) = rest.split_first() {
        if marker != TEXT_MARKER && marker != BINARY_MARKER {
            return Err(DecodeError::InvalidMarker);
        }
        let sep = after
            .iter()
            .take(MAX_LENGTH_DIGITS + 1)
            .position(|&b| b == BINARY_LENGTH_END)
            .ok_or(DecodeError::InvalidLength)?;
        let len = parse_length(&after[..sep], 0)?;
        let data = &after[sep + 1..];
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= data.len())
            .ok_or(DecodeError::Truncated)?;
        let (packet, next) = data.split_at(len);
        packets.push(if marker == TEXT_MARKER {
            let text = std::str::from_utf8(packet).map_err(|_| DecodeError::InvalidUtf8)?;
            decode_packet(text)?
        } else {
            match packet.split_first() {
                Some((&MESSAGE_TYPE, bin)) => Packet::decode_binary(Bytes::copy_from_slice(bin)),
                Some(_) => return Err(DecodeError::BinaryNotMessage),
                None => return Err(DecodeError::Empty),
            }
        });
        rest = next;
    }
    Ok(packets)
}

/// Encodes frames as one binary payload: text frames with marker 0 and their
/// UTF-8 byte length, binary frames with marker 1, the type byte 4 in front
/// of the data, and a length that counts it.
///
/// No frames at all give an empty body, as the reference encoder does.
pub fn encode_binary<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Bytes {
    let mut out = BytesMut::new();
    for frame in frames {
        match frame {
            Frame::Text(s) => {
                out.put_u8(TEXT_MARKER);
                out.extend(decimal_digits(s.len()));
                out.put_u8(BINARY_LENGTH_END);
                out.put_slice(s.as_bytes());
            }
            Frame::Binary(b) => {
                let b = b.data();
                out.put_u8(BINARY_MARKER);
                out.extend(decimal_digits(b.len() + 1));
                out.put_u8(BINARY_LENGTH_END);
                out.put_u8(MESSAGE_TYPE);
                out.put_slice(b);
            }
        }
    }
    out.freeze()
}

/// One packet of either payload form given as text: `b<type><base64>` for a
/// binary message, otherwise a text packet.
fn decode_packet(text: &str) -> Result<Packet, DecodeError> {
    let Some(encoded) = text.strip_prefix('b') else {
        return Packet::decode_text(Str::from(text));
    };
    match encoded.as_bytes().first() {
        Some(&b) if b == b'0' + MESSAGE_TYPE => {}
        Some(b'0'..=b'6') => return Err(DecodeError::BinaryNotMessage),
        _ => return Err(DecodeError::UnknownType),
    }
    let bin = BASE64
        .decode(&encoded[1..])
        .map_err(|_| DecodeError::InvalidBase64)?;
    Ok(Packet::decode_binary(Bytes::from(bin)))
}

/// The value of a length prefix: 1 to [`MAX_LENGTH_DIGITS`] digits, each
/// byte being `zero` plus the digit's value.
fn parse_length(digits: &[u8], zero: u8) -> Result<u64, DecodeError> {
    if digits.is_empty() || digits.len() > MAX_LENGTH_DIGITS {
        return Err(DecodeError::InvalidLength);
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = b.wrapping_sub(zero);
        if d > 9 {
            return Err(DecodeError::InvalidLength);
        }
        // At most ten digits: cannot overflow a u64.
        Ok(n * 10 + u64::from(d))
    })
}

/// The byte offset in `s` after its first `units` UTF-16 code units.
fn utf16_end(s: &str, units: u64) -> Result<usize, DecodeError> {
    // Every code unit takes at least one byte.
    if units > s.len() as u64 {
        return Err(DecodeError::Truncated);
    }
    let mut left = units;
    for (i, c) in s.char_indices() {
        if left == 0 {
            return Ok(i);
        }
        let width = c.len_utf16() as u64;
        if width > left {
            return Err(DecodeError::SplitCharacter);
        }
        left -= width;
    }
    if left == 0 {
        Ok(s.len())
    } else {
        Err(DecodeError::Truncated)
    }
}

/// The decimal digits of `n`, most significant first, as values 0–9.
fn decimal_digits(mut n: usize) -> impl Iterator<Item = u8> {
    let mut buf = [0u8; 20]; // u64::MAX has 20 digits
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.into_iter().skip(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::packet::Message;

    fn text(s: &str) -> Packet {
        Packet::Message(Message::text(s))
    }

    fn binary(b: &[u8]) -> Packet {
        Packet::Message(Message::binary(b.to_vec()))
    }

    fn frames(packets: &[Packet]) -> Vec<Frame> {
        packets.iter().map(Packet::to_frame).collect()
    }

    use crate::test_rng::Rng;

    #[test]
    fn decodes_the_v3_test_suite_text_payloads() {
        assert_eq!(decode_text("6:4hello").unwrap(), vec![text("hello")]);
        assert_eq!(
            decode_text("6:4test16:4test26:4test3").unwrap(),
            vec![text("test1"), text("test2"), text("test3")]
        );
        assert_eq!(
            decode_text("6:4hello10:b4AQIDBA==").unwrap(),
            vec![text("hello"), binary(&[1, 2, 3, 4])]
        );
        assert_eq!(decode_text("1:2").unwrap(), vec![Packet::Ping]);
        assert_eq!(decode_text("1:1").unwrap(), vec![Packet::Close]);
        assert_eq!(decode_text("6:2probe").unwrap(), vec![Packet::PingProbe]);
    }

    #[test]
    fn binary_in_a_text_payload_carries_its_type_digit() {
        // v3 writes `b4<base64>` (v4 writes `b<base64>`): 4 bytes take 10 units.
        assert_eq!(
            decode_text("2:4€10:b4AQIDBA==").unwrap(),
            vec![text("€"), binary(&[1, 2, 3, 4])]
        );
        // the v4 form is not a v3 packet, with its length or with v3's
        assert_eq!(
            decode_text("6:4hello9:bAQIDBA=="),
            Err(DecodeError::UnknownType)
        );
        assert_eq!(decode_text("10:bAQIDBA=="), Err(DecodeError::Truncated));
        // a binary packet of another type than message
        assert_eq!(
            decode_text("10:b2AQIDBA=="),
            Err(DecodeError::BinaryNotMessage)
        );
        assert_eq!(decode_text("5:b4!!!"), Err(DecodeError::InvalidBase64));
        assert_eq!(decode_text("2:b4").unwrap(), vec![binary(&[])]);
    }

    #[test]
    fn text_lengths_count_utf16_code_units() {
        // é: 2 UTF-8 bytes, 1 unit; ✓: 3 bytes, 1 unit; 🎉: 4 bytes, 2 units
        assert_eq!(decode_text("2:4é").unwrap(), vec![text("é")]);
        assert_eq!(decode_text("2:4✓").unwrap(), vec![text("✓")]);
        assert_eq!(decode_text("3:4🎉").unwrap(), vec![text("🎉")]);
        assert_eq!(
            decode_text("6:4hello4:4€€€").unwrap(),
            vec![text("hello"), text("€€€")]
        );
        assert_eq!(
            decode_text("11:4héllo ✓ 🎉1:3").unwrap(),
            vec![text("héllo ✓ 🎉"), Packet::Pong]
        );
        // counting bytes or chars instead is an error, not a silent cut
        assert_eq!(decode_text("3:4é"), Err(DecodeError::Truncated));
        assert_eq!(decode_text("5:4🎉"), Err(DecodeError::Truncated));
        assert_eq!(decode_text("2:4🎉"), Err(DecodeError::SplitCharacter));
        assert_eq!(decode_text("3:4a🎉"), Err(DecodeError::SplitCharacter));
    }

    #[test]
    fn zero_length_entries_are_skipped() {
        assert_eq!(decode_text("0:").unwrap(), vec![]);
        assert_eq!(decode_text("0:1:30:").unwrap(), vec![Packet::Pong]);
    }

    #[test]
    fn rejects_bad_text_payloads() {
        let cases = [
            ("", DecodeError::Empty),
            // from the engine.io-parser 2 test suite
            ("1!", DecodeError::InvalidLength),
            ("))", DecodeError::InvalidLength),
            ("1:", DecodeError::Truncated),
            ("3:99:", DecodeError::UnknownType),
            ("1:aa", DecodeError::UnknownType),
            ("1:a2:b", DecodeError::UnknownType),
            // lengths that are not plain decimal digits
            (":4", DecodeError::InvalidLength),
            ("-1:4", DecodeError::InvalidLength),
            ("+6:4hello", DecodeError::InvalidLength),
            (" 6:4hello", DecodeError::InvalidLength),
            ("1e1:4123456789", DecodeError::InvalidLength),
            ("٦:4hello", DecodeError::InvalidLength),
            ("12345678901:4", DecodeError::InvalidLength),
            ("99999999999999999999:4", DecodeError::InvalidLength),
            ("abc", DecodeError::InvalidLength),
            // a length past the end, even a huge one
            ("7:4hello", DecodeError::Truncated),
            ("9999999999:4", DecodeError::Truncated),
            // trailing bytes after the last packet
            ("6:4hello!", DecodeError::InvalidLength),
            ("6:4hello6", DecodeError::InvalidLength),
            ("6:4hello6:", DecodeError::Truncated),
            // packets that do not decode
            ("1:7", DecodeError::UnknownType),
            ("2:1x", DecodeError::UnexpectedData),
            ("5:2ping", DecodeError::UnexpectedData),
        ];
        for (wire, err) in cases {
            assert_eq!(decode_text(wire), Err(err), "{wire:?}");
        }
    }

    #[test]
    fn encodes_text_payloads() {
        let packets = [text("hello"), binary(&[1, 2, 3, 4])];
        assert_eq!(encode_text(&frames(&packets)), "6:4hello10:b4AQIDBA==");
        let packets = [text("€"), binary(&[1, 2, 3, 4])];
        assert_eq!(encode_text(&frames(&packets)), "2:4€10:b4AQIDBA==");
        let packets = [text("é"), text("✓"), text("🎉"), text("héllo ✓ 🎉")];
        assert_eq!(
            encode_text(&frames(&packets)),
            "2:4é2:4✓3:4🎉11:4héllo ✓ 🎉"
        );
        let packets = [Packet::Pong, Packet::Noop, Packet::PongProbe, text("")];
        assert_eq!(encode_text(&frames(&packets)), "1:31:66:3probe1:4");
        // base64 lengths around the padding
        let packets = [binary(&[]), binary(&[1]), binary(&[1, 2, 3])];
        assert_eq!(encode_text(&frames(&packets)), "2:b46:b4AQ==6:b4AQID");
        assert_eq!(encode_text(&[]), "0:");
    }

    #[test]
    fn encodes_lengths_of_several_digits() {
        let long = "x".repeat(123);
        let wire = encode_text(&frames(&[text(&long)]));
        assert_eq!(wire, format!("124:4{long}"));
        assert_eq!(decode_text(&wire).unwrap(), vec![text(&long)]);
    }

    #[test]
    fn decodes_the_v3_test_suite_binary_payload() {
        let wire = [
            0, 6, 255, 52, 104, 101, 108, 108, 111, 1, 5, 255, 4, 1, 2, 3, 4,
        ];
        let packets = vec![text("hello"), binary(&[1, 2, 3, 4])];
        assert_eq!(decode_binary(&wire).unwrap(), packets);
        assert_eq!(&encode_binary(&frames(&packets))[..], &wire);
    }

    #[test]
    fn binary_payload_lengths_count_bytes_and_the_type_byte() {
        // engine.io-parser 4's changelog example of a v3 payload
        let wire = [
            0x00, 0x06, 0xff, 0x34, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x01, 0x04, 0xff, 0x04, 0x01,
            0x02, 0x03,
        ];
        let packets = vec![text("hello"), binary(&[1, 2, 3])];
        assert_eq!(decode_binary(&wire).unwrap(), packets);
        assert_eq!(&encode_binary(&frames(&packets))[..], &wire);
        // a text packet's length is its UTF-8 byte length
        let wire = [
            0, 3, 255, b'4', 0xc3, 0xa9, 0, 5, 255, b'4', 0xf0, 0x9f, 0x8e, 0x89,
        ];
        let packets = vec![text("é"), text("🎉")];
        assert_eq!(decode_binary(&wire).unwrap(), packets);
        assert_eq!(&encode_binary(&frames(&packets))[..], &wire);
        // control packets and an empty binary message
        let wire = [0, 1, 255, b'3', 1, 1, 255, 4];
        let packets = vec![Packet::Pong, binary(&[])];
        assert_eq!(decode_binary(&wire).unwrap(), packets);
        assert_eq!(&encode_binary(&frames(&packets))[..], &wire);
        assert!(encode_binary(&[]).is_empty());
    }

    #[test]
    fn binary_payload_lengths_of_two_digits() {
        // "4hello world": 12 bytes; 9 data bytes + the type byte: 10
        let data: Vec<u8> = (1..=9).collect();
        let packets = vec![text("hello world"), binary(&data)];
        let mut wire = vec![0, 1, 2, 255];
        wire.extend_from_slice(b"4hello world");
        wire.extend_from_slice(&[1, 1, 0, 255, 4]);
        wire.extend_from_slice(&data);
        assert_eq!(&encode_binary(&frames(&packets))[..], &wire[..]);
        assert_eq!(decode_binary(&wire).unwrap(), packets);
    }

    #[test]
    fn string_packets_of_a_binary_payload_may_be_base64() {
        // the reference decodes every string packet alike, `b4…` included
        let mut wire = vec![0, 1, 0, 255];
        wire.extend_from_slice(b"b4AQIDBA==");
        assert_eq!(decode_binary(&wire).unwrap(), vec![binary(&[1, 2, 3, 4])]);
    }

    #[test]
    fn rejects_bad_binary_payloads() {
        let cases: &[(&[u8], DecodeError)] = &[
            (&[], DecodeError::Empty),
            (&[2, 1, 255, b'4'], DecodeError::InvalidMarker),
            (&[b'0', 1, 255, b'4'], DecodeError::InvalidMarker),
            // digits are byte values 0–9, not ASCII, and there is one at least
            (&[0, b'1', 255, b'4'], DecodeError::InvalidLength),
            (&[0, 10, 255, b'4'], DecodeError::InvalidLength),
            (&[0, 255, b'4'], DecodeError::InvalidLength),
            (&[0, 1], DecodeError::InvalidLength),
            (&[0], DecodeError::InvalidLength),
            (
                &[0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 255],
                DecodeError::InvalidLength,
            ),
            (
                &[0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 255],
                DecodeError::Truncated,
            ),
            (&[0, 6, 255, b'4', b'h'], DecodeError::Truncated),
            // a length that ends inside a UTF-8 character
            (&[0, 2, 255, b'4', 0xc3, 0xa9], DecodeError::InvalidUtf8),
            (&[0, 2, 255, b'4', 0xff], DecodeError::InvalidUtf8),
            // binary packets: type byte 4 and nothing else
            (&[1, 2, 255, 2, 1], DecodeError::BinaryNotMessage),
            (&[1, 2, 255, b'4', 1], DecodeError::BinaryNotMessage),
            (&[1, 0, 255], DecodeError::Empty),
            // string packets that do not decode
            (&[0, 0, 255], DecodeError::Empty),
            (&[0, 1, 255, b'7'], DecodeError::UnknownType),
            (&[0, 2, 255, b'b', b'2'], DecodeError::BinaryNotMessage),
            // a good packet followed by garbage
            (&[0, 1, 255, b'3', 0], DecodeError::InvalidLength),
            (&[0, 1, 255, b'3', 7], DecodeError::InvalidMarker),
        ];
        for &(wire, err) in cases {
            assert_eq!(decode_binary(wire), Err(err), "{wire:?}");
        }
    }

    fn random_packets(rng: &mut Rng) -> Vec<Packet> {
        let pieces = ["a", "hello", "é", "✓", "🎉", ":", "b4", "\u{1e}", "0", "\n"];
        (0..rng.below(6))
            .map(|_| match rng.below(4) {
                0 => [Packet::Ping, Packet::Pong, Packet::Noop, Packet::PongProbe][rng.below(4)]
                    .clone(),
                1 => {
                    let len = rng.below(40);
                    binary(&(0..len).map(|_| rng.next() as u8).collect::<Vec<_>>())
                }
                _ => text(
                    &(0..rng.below(30))
                        .map(|_| rng.pick(&pieces))
                        .collect::<String>(),
                ),
            })
            .collect()
    }

    #[test]
    fn random_frames_round_trip_through_both_forms() {
        let mut rng = Rng(0x5EED_0003);
        for _ in 0..2_000 {
            let packets = random_packets(&mut rng);
            let frames = frames(&packets);
            assert_eq!(decode_text(&encode_text(&frames)).unwrap(), packets);
            if !packets.is_empty() {
                assert_eq!(decode_binary(&encode_binary(&frames)).unwrap(), packets);
            }
        }
    }

    #[test]
    fn decoders_never_panic() {
        let mut rng = Rng(0xF0F0_1234_5678_9ABC);
        let chars = [
            '0', '1', '2', '4', '6', '9', ':', 'b', 'A', '=', 'h', 'é', '✓', '🎉', '\u{1e}',
        ];
        let bytes = [
            0u8, 1, 2, 4, 9, 10, 255, b'4', b':', b'b', 0xc3, 0xa9, 0xf0, 0x9f,
        ];
        for _ in 0..20_000 {
            // made-up inputs from alphabets that reach every branch
            let s: String = (0..rng.below(40)).map(|_| rng.pick(&chars)).collect();
            let _ = decode_text(&s);
            let b: Vec<u8> = (0..rng.below(40)).map(|_| rng.pick(&bytes)).collect();
            let _ = decode_binary(&b);
            let b: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
            let _ = decode_binary(&b);
            let _ = decode_text(&String::from_utf8_lossy(&b));

            // valid payloads, damaged: one byte changed, or cut short
            let frames = frames(&random_packets(&mut rng));
            let mut wire = encode_binary(&frames).to_vec();
            let mut text = encode_text(&frames).into_bytes();
            for w in [&mut wire, &mut text] {
                if !w.is_empty() {
                    let at = rng.below(w.len());
                    if rng.below(2) == 0 {
                        w[at] = rng.pick(&bytes);
                    } else {
                        w.truncate(at);
                    }
                }
            }
            let _ = decode_binary(&wire);
            let _ = decode_text(&String::from_utf8_lossy(&text));
        }
    }
}
