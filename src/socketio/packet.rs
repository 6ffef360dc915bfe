//! socket.io v5 packets: `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`.
//!
//! Pure functions over one engine.io text message. A binary packet (types 5
//! and 6) announces how many binary engine.io messages follow it; [`decode`]
//! then returns a [`PartialPacket`] that collects them. Placeholders
//! (`{"_placeholder":true,"num":i}`) stay in [`Packet::data`]: the socket
//! layer pairs them with [`Packet::attachments`].

use std::fmt::Write as _;

use bytes::Bytes;
use serde::Deserialize as _;
use serde_json::Value;

/// Event names a client may not emit, because socket.io gives them a meaning
/// of its own. [`decode`] rejects an EVENT carrying one of them.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Whether `name` is one of the [`RESERVED_EVENTS`].
pub fn is_reserved_event(name: &str) -> bool {
    RESERVED_EVENTS.contains(&name)
}

/// The packet type, the first character of every packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: connect to a namespace (client) or accept the connection (server).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event, `["name", args…]`.
    Event,
    /// `3`: the answer to an event that carried an ack id.
    Ack,
    /// `4`: the server refused a namespace connection.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an ack with binary attachments.
    BinaryAck,
}

impl PacketType {
    /// The type for a wire digit (`b'0'`..=`b'6'`).
    pub const fn from_digit(byte: u8) -> Option<Self> {
        Some(match byte {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The wire digit for this type (`b'0'`..=`b'6'`).
    pub const fn digit(self) -> u8 {
        b'0' + self as u8
    }

    /// Whether packets of this type carry an attachment count.
    pub const fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }

    /// Whether packets of this type may carry an ack id.
    pub const fn takes_ack_id(self) -> bool {
        matches!(
            self,
            Self::Event | Self::Ack | Self::BinaryEvent | Self::BinaryAck
        )
    }

    const fn requires_ack_id(self) -> bool {
        matches!(self, Self::Ack | Self::BinaryAck)
    }
}

/// One socket.io packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The packet type.
    pub ty: PacketType,
    /// The namespace, `"/"` when the wire omits it.
    pub nsp: String,
    /// The ack id, on EVENT and ACK types only.
    pub id: Option<u64>,
    /// The JSON payload, placeholders included.
    pub data: Option<Value>,
    /// The binary attachments of a binary packet, in `num` order.
    pub attachments: Vec<Bytes>,
}

impl Packet {
    /// Appends the text part of the packet to `out`.
    ///
    /// For binary types the attachment count is `self.attachments.len()`;
    /// the caller sends each attachment afterwards as its own binary message.
    /// Other types ignore `attachments`. Fields are written as given, without
    /// validation.
    pub fn encode(&self, out: &mut String) {
        out.push(char::from(self.ty.digit()));
        // Writing into a String cannot fail, hence the ignored results.
        if self.ty.is_binary() {
            let _ = write!(out, "{}-", self.attachments.len());
        }
        // An empty namespace is the main one too, as in the reference encoder.
        if !self.nsp.is_empty() && self.nsp != "/" {
            out.push_str(&self.nsp);
            out.push(',');
        }
        if let Some(id) = self.id {
            let _ = write!(out, "{id}");
        }
        if let Some(data) = &self.data {
            let _ = write!(out, "{data}");
        }
    }

    /// The text part of the packet as a new string; see [`Packet::encode`].
    pub fn encode_to_string(&self) -> String {
        let mut out = String::new();
        self.encode(&mut out);
        out
    }
}

/// Decoding bounds, checked by [`decode`] and [`PartialPacket::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most attachments one packet may announce; default 10.
    pub max_attachments: usize,
    /// Most bytes all attachments of one packet may hold together;
    /// default 1 000 000 bytes.
    pub max_attachment_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attachments: 10,
            max_attachment_bytes: 1_000_000,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_attachments`].
    #[must_use]
    pub fn max_attachments(mut self, count: usize) -> Self {
        self.max_attachments = count;
        self
    }

    /// Sets [`Limits::max_attachment_bytes`].
    #[must_use]
    pub fn max_attachment_bytes(mut self, bytes: usize) -> Self {
        self.max_attachment_bytes = bytes;
        self
    }
}

/// What [`decode`] makes of one text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The packet is whole.
    Complete(Packet),
    /// The packet waits for binary attachments.
    Partial(PartialPacket),
}

/// A binary packet whose attachments are still arriving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialPacket {
    // `None` once the last attachment has handed the packet out.
    packet: Option<Packet>,
    expected: usize,
    bytes: usize,
}

impl PartialPacket {
    /// How many attachments are still expected; 0 once complete.
    pub fn expected(&self) -> usize {
        match &self.packet {
            Some(p) => self.expected - p.attachments.len(),
            None => 0,
        }
    }

    /// The packet collected so far; `None` once [`PartialPacket::push`] has
    /// returned it.
    pub fn packet(&self) -> Option<&Packet> {
        self.packet.as_ref()
    }

    /// Adds the next attachment; returns the packet once it is complete.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedAttachment`] once the packet is complete,
    /// [`DecodeError::AttachmentsTooLarge`] past
    /// [`Limits::max_attachment_bytes`]; the attachment is then dropped.
    pub fn push(&mut self, bin: Bytes, limits: &Limits) -> Result<Option<Packet>, DecodeError> {
        let packet = self
            .packet
            .as_mut()
            .ok_or(DecodeError::UnexpectedAttachment)?;
        let max = limits.max_attachment_bytes;
        self.bytes = self
            .bytes
            .checked_add(bin.len())
            .filter(|&total| total <= max)
            .ok_or(DecodeError::AttachmentsTooLarge { max })?;
        packet.attachments.push(bin);
        if packet.attachments.len() < self.expected {
            return Ok(None);
        }
        Ok(self.packet.take())
    }
}

/// Why a packet was rejected. Every variant is a protocol violation that
/// closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message is empty.
    #[error("empty packet")]
    Empty,
    /// The first byte is not a packet type.
    #[error("unknown packet type byte {0:#04x}")]
    UnknownType(u8),
    /// A binary packet lacks a well-formed `<digits>-` attachment count.
    #[error("malformed attachment count")]
    BadAttachmentCount,
    /// The attachment count exceeds [`Limits::max_attachments`].
    #[error("more than {max} attachments")]
    TooManyAttachments {
        /// The limit in force.
        max: usize,
    },
    /// The attachments exceed [`Limits::max_attachment_bytes`] together.
    #[error("attachments exceed {max} bytes")]
    AttachmentsTooLarge {
        /// The limit in force.
        max: usize,
    },
    /// The namespace holds a control character.
    #[error("malformed namespace")]
    BadNamespace,
    /// An ack id on a type that takes none.
    #[error("ack id on a {0:?} packet")]
    UnexpectedAckId(PacketType),
    /// The ack id does not fit in 64 bits.
    #[error("ack id out of range")]
    BadAckId,
    /// An ACK without an ack id.
    #[error("{0:?} packet without an ack id")]
    MissingAckId(PacketType),
    /// The payload is not JSON (or nests too deeply).
    #[error("invalid JSON payload")]
    InvalidJson,
    /// Something follows the JSON payload.
    #[error("trailing data after the JSON payload")]
    TrailingData,
    /// The payload is absent or present against the rules of its type, or
    /// has the wrong JSON shape.
    #[error("payload not allowed in a {0:?} packet")]
    InvalidPayload(PacketType),
    /// An EVENT names one of the [`RESERVED_EVENTS`].
    #[error("reserved event name")]
    ReservedEventName,
    /// A placeholder's `num` is missing or not a non-negative integer.
    #[error("malformed attachment placeholder")]
    BadPlaceholder,
    /// A placeholder's `num` is not below the attachment count.
    #[error("attachment placeholder out of range")]
    PlaceholderOutOfRange,
    /// A binary message arrived when no attachment was expected.
    #[error("unexpected binary attachment")]
    UnexpectedAttachment,
}

/// Decodes one engine.io text message as a socket.io packet.
///
/// A binary packet announcing attachments gives [`Decoded::Partial`]; feed
/// the following binary messages to [`PartialPacket::push`].
///
/// # Errors
///
/// Any [`DecodeError`] but `UnexpectedAttachment` and `AttachmentsTooLarge`;
/// the connection should then be closed.
pub fn decode(text: &str, limits: &Limits) -> Result<Decoded, DecodeError> {
    let bytes = text.as_bytes();
    let &first = bytes.first().ok_or(DecodeError::Empty)?;
    let ty = PacketType::from_digit(first).ok_or(DecodeError::UnknownType(first))?;
    // The cursor only ever steps over ASCII bytes, so it always sits on a
    // char boundary and slicing `text` at it cannot panic.
    let mut pos = 1;

    let mut count = 0;
    if ty.is_binary() {
        let digits = count_digits(&bytes[pos..]);
        if digits == 0 || bytes.get(pos + digits) != Some(&b'-') {
            return Err(DecodeError::BadAttachmentCount);
        }
        let max = limits.max_attachments;
        count = parse_decimal(&bytes[pos..pos + digits])
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= max)
            .ok_or(DecodeError::TooManyAttachments { max })?;
        pos += digits + 1;
    }

    let mut nsp = "/";
    if bytes.get(pos) == Some(&b'/') {
        // Like the reference decoders, a namespace without its comma runs to
        // the end of the message (`1/admin`).
        let (end, next) = match bytes[pos..].iter().position(|&b| b == b',') {
            Some(len) => (pos + len, pos + len + 1),
            None => (bytes.len(), bytes.len()),
        };
        nsp = &text[pos..end];
        if nsp.bytes().any(|b| b.is_ascii_control()) {
            return Err(DecodeError::BadNamespace);
        }
        pos = next;
    }

    let mut id = None;
    let digits = count_digits(&bytes[pos..]);
    if digits > 0 {
        if !ty.takes_ack_id() {
            return Err(DecodeError::UnexpectedAckId(ty));
        }
        id = Some(parse_decimal(&bytes[pos..pos + digits]).ok_or(DecodeError::BadAckId)?);
        pos += digits;
    }

    let data = match &text[pos..] {
        "" => None,
        json => Some(parse_json(json)?),
    };

    check_payload(ty, data.as_ref())?;
    if ty.requires_ack_id() && id.is_none() {
        return Err(DecodeError::MissingAckId(ty));
    }
    if let (true, Some(data)) = (ty.is_binary(), &data) {
        check_placeholders(data, count)?;
    }

    let packet = Packet {
        ty,
        nsp: nsp.to_owned(),
        id,
        data,
        attachments: Vec::with_capacity(count),
    };
    // Some clients label a packet binary yet send no attachment.
    if count == 0 {
        return Ok(Decoded::Complete(packet));
    }
    Ok(Decoded::Partial(PartialPacket {
        packet: Some(packet),
        expected: count,
        bytes: 0,
    }))
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// `None` on overflow. `digits` must be ASCII digits.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn parse_json(json: &str) -> Result<Value, DecodeError> {
    // serde_json's recursion limit (128) stays on, so deep nesting is an
    // error rather than a stack overflow; `check_placeholders` relies on it.
    let mut de = serde_json::Deserializer::from_str(json);
    let value = Value::deserialize(&mut de).map_err(|_| DecodeError::InvalidJson)?;
    de.end().map_err(|_| DecodeError::TrailingData)?;
    Ok(value)
}

pub(crate) fn check_payload(ty: PacketType, data: Option<&Value>) -> Result<(), DecodeError> {
    let ok = match ty {
        PacketType::Connect => matches!(data, None | Some(Value::Object(_))),
        PacketType::Disconnect => data.is_none(),
        PacketType::ConnectError => matches!(data, Some(Value::Object(_) | Value::String(_))),
        PacketType::Ack | PacketType::BinaryAck => matches!(data, Some(Value::Array(_))),
        PacketType::Event | PacketType::BinaryEvent => {
            let Some(Value::Array(args)) = data else {
                return Err(DecodeError::InvalidPayload(ty));
            };
            let Some(Value::String(name)) = args.first() else {
                return Err(DecodeError::InvalidPayload(ty));
            };
            if is_reserved_event(name) {
                return Err(DecodeError::ReservedEventName);
            }
            true
        }
    };
    if ok {
        Ok(())
    } else {
        Err(DecodeError::InvalidPayload(ty))
    }
}

fn check_placeholders(value: &Value, count: usize) -> Result<(), DecodeError> {
    match value {
        Value::Array(items) => items.iter().try_for_each(|v| check_placeholders(v, count)),
        Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)) => {
            let num = map
                .get("num")
                .and_then(Value::as_u64)
                .ok_or(DecodeError::BadPlaceholder)?;
            if usize::try_from(num).is_ok_and(|n| n < count) {
                Ok(())
            } else {
                Err(DecodeError::PlaceholderOutOfRange)
            }
        }
        Value::Object(map) => map.values().try_for_each(|v| check_placeholders(v, count)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> Limits {
        Limits::default()
    }

    fn complete(text: &str) -> Packet {
        match decode(text, &limits()) {
            Ok(Decoded::Complete(p)) => p,
            other => panic!("{text:?}: expected a complete packet, got {other:?}"),
        }
    }

    fn partial(text: &str) -> PartialPacket {
        match decode(text, &limits()) {
            Ok(Decoded::Partial(p)) => p,
            other => panic!("{text:?}: expected a partial packet, got {other:?}"),
        }
    }

    fn err(text: &str) -> DecodeError {
        match decode(text, &limits()) {
            Err(e) => e,
            Ok(d) => panic!("{text:?}: expected an error, got {d:?}"),
        }
    }

    fn packet(ty: PacketType, nsp: &str, id: Option<u64>, data: Option<Value>) -> Packet {
        Packet {
            ty,
            nsp: nsp.to_owned(),
            id,
            data,
            attachments: Vec::new(),
        }
    }

    #[test]
    fn connect_main_namespace() {
        assert_eq!(complete("0"), packet(PacketType::Connect, "/", None, None));
    }

    #[test]
    fn connect_custom_namespace() {
        assert_eq!(
            complete("0/admin,"),
            packet(PacketType::Connect, "/admin", None, None)
        );
    }

    #[test]
    fn connect_with_auth() {
        let auth = Some(json!({"token": "123"}));
        assert_eq!(
            complete(r#"0{"token":"123"}"#),
            packet(PacketType::Connect, "/", None, auth.clone())
        );
        assert_eq!(
            complete(r#"0/admin,{"token":"123"}"#),
            packet(PacketType::Connect, "/admin", None, auth)
        );
    }

    #[test]
    fn engine_prefix_is_not_stripped_here() {
        // `40` is an engine.io message carrying `0`; as a socket.io packet it
        // reads as CONNECT_ERROR with an ack id, which is invalid.
        assert_eq!(
            err("40"),
            DecodeError::UnexpectedAckId(PacketType::ConnectError)
        );
    }

    #[test]
    fn disconnect_namespace() {
        assert_eq!(
            complete("1/admin,"),
            packet(PacketType::Disconnect, "/admin", None, None)
        );
    }

    #[test]
    fn namespace_without_comma_at_end() {
        assert_eq!(
            complete("1/admin"),
            packet(PacketType::Disconnect, "/admin", None, None)
        );
        assert_eq!(complete("1/admin").encode_to_string(), "1/admin,");
    }

    #[test]
    fn event() {
        assert_eq!(
            complete(r#"2["hello",1]"#),
            packet(PacketType::Event, "/", None, Some(json!(["hello", 1])))
        );
    }

    #[test]
    fn event_with_namespace_and_ack_id() {
        assert_eq!(
            complete(r#"2/admin,456["project:delete",123]"#),
            packet(
                PacketType::Event,
                "/admin",
                Some(456),
                Some(json!(["project:delete", 123]))
            )
        );
    }

    #[test]
    fn ack() {
        assert_eq!(
            complete("3/admin,456[]"),
            packet(PacketType::Ack, "/admin", Some(456), Some(json!([])))
        );
    }

    #[test]
    fn connect_error() {
        assert_eq!(
            complete(r#"4{"message":"Not authorized"}"#),
            packet(
                PacketType::ConnectError,
                "/",
                None,
                Some(json!({"message": "Not authorized"}))
            )
        );
        assert_eq!(
            complete(r#"4"Not authorized""#).data,
            Some(json!("Not authorized"))
        );
    }

    #[test]
    fn binary_event_collects_its_attachment() {
        let mut p = partial(r#"51-["hello",{"_placeholder":true,"num":0}]"#);
        assert_eq!(p.expected(), 1);
        assert_eq!(p.packet().map(|p| p.ty), Some(PacketType::BinaryEvent));
        let done = p
            .push(Bytes::from_static(b"\x01\x02\x03"), &limits())
            .unwrap()
            .unwrap();
        assert_eq!(done.ty, PacketType::BinaryEvent);
        assert_eq!(done.nsp, "/");
        assert_eq!(done.id, None);
        // The placeholder is left for the socket layer to resolve.
        assert_eq!(
            done.data,
            Some(json!(["hello", {"_placeholder": true, "num": 0}]))
        );
        assert_eq!(done.attachments, vec![Bytes::from_static(b"\x01\x02\x03")]);
        assert_eq!(p.expected(), 0);
        assert_eq!(
            p.push(Bytes::new(), &limits()),
            Err(DecodeError::UnexpectedAttachment)
        );
    }

    #[test]
    fn binary_ack_with_namespace_and_id() {
        let mut p = partial(r#"61-/admin,456[{"_placeholder":true,"num":0}]"#);
        let done = p
            .push(Bytes::from_static(b"bin"), &limits())
            .unwrap()
            .unwrap();
        assert_eq!(done.ty, PacketType::BinaryAck);
        assert_eq!(done.nsp, "/admin");
        assert_eq!(done.id, Some(456));
        assert_eq!(done.attachments.len(), 1);
    }

    #[test]
    fn attachments_keep_arrival_order() {
        let text = r#"52-["ev",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#;
        let mut p = partial(text);
        assert_eq!(p.expected(), 2);
        assert_eq!(p.push(Bytes::from_static(b"a"), &limits()), Ok(None));
        assert_eq!(p.expected(), 1);
        let done = p
            .push(Bytes::from_static(b"b"), &limits())
            .unwrap()
            .unwrap();
        assert_eq!(
            done.attachments,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
        assert_eq!(done.encode_to_string(), text);
    }

    #[test]
    fn binary_with_zero_attachments_completes_at_once() {
        let p = complete(r#"50-["hello"]"#);
        assert_eq!(p.ty, PacketType::BinaryEvent);
        assert!(p.attachments.is_empty());
        assert_eq!(complete("60-1[]").ty, PacketType::BinaryAck);
    }

    #[test]
    fn multibyte_strings() {
        assert_eq!(complete(r#"2["é✓🎉"]"#).data, Some(json!(["é✓🎉"])));
        let p = complete(r#"2/ñé✓,7["🎉",{"k":"✓"}]"#);
        assert_eq!(p.nsp, "/ñé✓");
        assert_eq!(p.id, Some(7));
        assert_eq!(p.encode_to_string(), r#"2/ñé✓,7["🎉",{"k":"✓"}]"#);
    }

    #[test]
    fn round_trips_every_type() {
        let cases = [
            "0",
            "0/admin,",
            r#"0{"token":"123"}"#,
            r#"0/admin,{"token":"123"}"#,
            "1",
            "1/admin,",
            r#"2["hello",1]"#,
            r#"2/admin,456["project:delete",123]"#,
            "3/admin,456[]",
            r#"31["a",null,true,1.5]"#,
            // Keys in sorted order: without serde_json's `preserve_order`
            // feature, objects re-encode sorted.
            r#"4{"data":{"x":1},"message":"Not authorized"}"#,
            r#"4/admin,"refused""#,
            r#"50-["hello"]"#,
            "60-/admin,9[]",
        ];
        for wire in cases {
            let p = complete(wire);
            assert_eq!(p.encode_to_string(), wire);
            assert_eq!(complete(&p.encode_to_string()), p);
        }
        let binary = [
            r#"51-["hello",{"_placeholder":true,"num":0}]"#,
            r#"61-/admin,456[{"_placeholder":true,"num":0}]"#,
        ];
        for wire in binary {
            let mut p = partial(wire);
            let done = p
                .push(Bytes::from_static(b"x"), &limits())
                .unwrap()
                .unwrap();
            assert_eq!(done.encode_to_string(), wire);
        }
    }

    #[test]
    fn encode_from_fields() {
        let mut p = packet(PacketType::BinaryEvent, "", Some(3), Some(json!(["e"])));
        p.attachments = vec![Bytes::new(), Bytes::new()];
        assert_eq!(p.encode_to_string(), r#"52-3["e"]"#);
        p.ty = PacketType::Event;
        // Only binary types write an attachment count.
        assert_eq!(p.encode_to_string(), r#"23["e"]"#);
        let mut out = String::from("4");
        packet(PacketType::Disconnect, "/x", None, None).encode(&mut out);
        assert_eq!(out, "41/x,");
    }

    #[test]
    fn rejects_malformed_prefixes() {
        let cases: &[(&str, DecodeError)] = &[
            ("", DecodeError::Empty),
            ("7", DecodeError::UnknownType(b'7')),
            ("x[]", DecodeError::UnknownType(b'x')),
            ("é", DecodeError::UnknownType(0xc3)),
            (r#"5["a"]"#, DecodeError::BadAttachmentCount),
            (r#"5-["a"]"#, DecodeError::BadAttachmentCount),
            (r#"51["a"]"#, DecodeError::BadAttachmentCount),
            ("51", DecodeError::BadAttachmentCount),
            ("6a-[]", DecodeError::BadAttachmentCount),
            (r#"511-["a"]"#, DecodeError::TooManyAttachments { max: 10 }),
            (
                r#"5999999999999999999999999-["a"]"#,
                DecodeError::TooManyAttachments { max: 10 },
            ),
            ("1/a\u{0},", DecodeError::BadNamespace),
            ("0/a\nb,", DecodeError::BadNamespace),
            (r#"218446744073709551616["a"]"#, DecodeError::BadAckId),
            (r#"299999999999999999999999999["a"]"#, DecodeError::BadAckId),
            ("01", DecodeError::UnexpectedAckId(PacketType::Connect)),
            (
                "1/admin,2",
                DecodeError::UnexpectedAckId(PacketType::Disconnect),
            ),
            (
                r#"41"x""#,
                DecodeError::UnexpectedAckId(PacketType::ConnectError),
            ),
            ("3[]", DecodeError::MissingAckId(PacketType::Ack)),
            ("3/admin,[]", DecodeError::MissingAckId(PacketType::Ack)),
            ("60-[]", DecodeError::MissingAckId(PacketType::BinaryAck)),
        ];
        for (wire, want) in cases {
            assert_eq!(err(wire), *want, "{wire:?}");
        }
        // The largest ack id still fits.
        assert_eq!(
            complete(r#"2/admin,18446744073709551615["a"]"#).id,
            Some(u64::MAX)
        );
    }

    #[test]
    fn rejects_bad_payloads() {
        use PacketType::*;
        let cases: &[(&str, DecodeError)] = &[
            ("0[]", DecodeError::InvalidPayload(Connect)),
            (r#"0"tok""#, DecodeError::InvalidPayload(Connect)),
            ("0null", DecodeError::InvalidPayload(Connect)),
            ("1{}", DecodeError::InvalidPayload(Disconnect)),
            ("1/admin,[]", DecodeError::InvalidPayload(Disconnect)),
            ("2", DecodeError::InvalidPayload(Event)),
            ("2[]", DecodeError::InvalidPayload(Event)),
            ("2[1]", DecodeError::InvalidPayload(Event)),
            (r#"2{"a":1}"#, DecodeError::InvalidPayload(Event)),
            (r#"2"hello""#, DecodeError::InvalidPayload(Event)),
            (r#"2["disconnect"]"#, DecodeError::ReservedEventName),
            (r#"50-["connect"]"#, DecodeError::ReservedEventName),
            ("31", DecodeError::InvalidPayload(Ack)),
            ("31{}", DecodeError::InvalidPayload(Ack)),
            ("4", DecodeError::InvalidPayload(ConnectError)),
            ("4[]", DecodeError::InvalidPayload(ConnectError)),
            ("50-", DecodeError::InvalidPayload(BinaryEvent)),
            ("61-1{}", DecodeError::InvalidPayload(BinaryAck)),
            ("2[", DecodeError::InvalidJson),
            ("2[\"a\"", DecodeError::InvalidJson),
            ("2 ", DecodeError::InvalidJson),
            ("0{token}", DecodeError::InvalidJson),
            (r#"2["a"]x"#, DecodeError::TrailingData),
            (r#"2["a"]]"#, DecodeError::TrailingData),
            ("0{}{}", DecodeError::TrailingData),
        ];
        for (wire, want) in cases {
            assert_eq!(err(wire), *want, "{wire:?}");
        }
    }

    #[test]
    fn checks_placeholders() {
        let cases: &[(&str, DecodeError)] = &[
            (
                r#"51-["a",{"_placeholder":true,"num":1}]"#,
                DecodeError::PlaceholderOutOfRange,
            ),
            (
                r#"50-["a",{"_placeholder":true,"num":0}]"#,
                DecodeError::PlaceholderOutOfRange,
            ),
            (
                r#"62-7[{"deep":[{"_placeholder":true,"num":2}]}]"#,
                DecodeError::PlaceholderOutOfRange,
            ),
            (
                r#"51-["a",{"_placeholder":true,"num":18446744073709551615}]"#,
                DecodeError::PlaceholderOutOfRange,
            ),
            (
                r#"51-["a",{"_placeholder":true}]"#,
                DecodeError::BadPlaceholder,
            ),
            (
                r#"51-["a",{"_placeholder":true,"num":"0"}]"#,
                DecodeError::BadPlaceholder,
            ),
            (
                r#"51-["a",{"_placeholder":true,"num":-1}]"#,
                DecodeError::BadPlaceholder,
            ),
            (
                r#"51-["a",{"_placeholder":true,"num":0.5}]"#,
                DecodeError::BadPlaceholder,
            ),
        ];
        for (wire, want) in cases {
            assert_eq!(err(wire), *want, "{wire:?}");
        }
        // Nested placeholders in range, and objects that merely look alike.
        let p = partial(
            r#"52-["a",{"x":[{"_placeholder":true,"num":1}]},{"_placeholder":false,"num":9},{"_placeholder":true,"num":0}]"#,
        );
        assert_eq!(p.expected(), 2);
        // Non-binary packets carry user data as is.
        complete(r#"2["a",{"_placeholder":true,"num":5}]"#);
    }

    #[test]
    fn enforces_attachment_limits() {
        let strict = Limits::default().max_attachments(2).max_attachment_bytes(5);
        assert_eq!(strict.max_attachments, 2);
        assert_eq!(strict.max_attachment_bytes, 5);
        assert_eq!(
            decode(r#"53-["a"]"#, &strict),
            Err(DecodeError::TooManyAttachments { max: 2 })
        );
        let Ok(Decoded::Partial(mut p)) = decode(r#"52-["a"]"#, &strict) else {
            panic!("expected a partial packet");
        };
        assert_eq!(p.push(Bytes::from_static(b"abc"), &strict), Ok(None));
        assert_eq!(
            p.push(Bytes::from_static(b"abc"), &strict),
            Err(DecodeError::AttachmentsTooLarge { max: 5 })
        );
        // The rejected attachment left the packet as it was.
        assert_eq!(p.expected(), 1);
        assert!(
            p.push(Bytes::from_static(b"ab"), &strict)
                .unwrap()
                .is_some()
        );
        let defaults = Limits::default();
        assert_eq!(defaults.max_attachments, 10);
        assert_eq!(defaults.max_attachment_bytes, 1_000_000);
        assert!(matches!(
            decode(r#"510-["a"]"#, &defaults),
            Ok(Decoded::Partial(_))
        ));
    }

    #[test]
    fn deep_nesting_errors_cleanly() {
        for prefix in ["2", "51-", "3/admin,1"] {
            let mut wire = String::from(prefix);
            wire.push_str(&"[".repeat(10_000));
            assert_eq!(err(&wire), DecodeError::InvalidJson);
            wire.push_str(&"]".repeat(10_000));
            assert_eq!(err(&wire), DecodeError::InvalidJson);
        }
        // Nesting under serde_json's limit still walks for placeholders.
        let wire = format!(
            r#"51-["a",{}{{"_placeholder":true,"num":3}}{}]"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(err(&wire), DecodeError::PlaceholderOutOfRange);
    }

    #[test]
    fn truncated_input_never_panics() {
        let full = r#"61-/ñé✓,456["é✓🎉",{"_placeholder":true,"num":0}]"#;
        for (i, _) in full.char_indices() {
            let _ = decode(&full[..i], &limits());
        }
        // The engine layer may hand over text repaired from cut bytes.
        for end in 0..=full.len() {
            let repaired = String::from_utf8_lossy(&full.as_bytes()[..end]);
            let _ = decode(&repaired, &limits());
        }
        assert_eq!(err("2[\"é\u{FFFD}"), DecodeError::InvalidJson);
    }

    #[test]
    fn numbers_keep_their_exact_value() {
        // Found by the `socketio_packet` fuzz target: serde_json's default
        // float parsing can land one unit in the last place off, so a number
        // relayed to other clients (and re-encoded) was not the one sent.
        for n in [
            "3.3333333333333334e+31",
            "-33333333333333333333333333333332",
            "2.2250738585072011e-308",
        ] {
            let p = complete(&format!(r#"2["n",{n}]"#));
            let exact: f64 = n.parse().unwrap();
            let got = p.data.as_ref().and_then(|d| d[1].as_f64());
            assert_eq!(got, Some(exact), "{n}");
            assert_eq!(complete(&p.encode_to_string()), p, "{n}");
        }
    }

    #[test]
    fn error_is_cheap() {
        assert!(std::mem::size_of::<DecodeError>() <= 16);
        assert_eq!(DecodeError::BadAckId.to_string(), "ack id out of range");
    }

    use crate::test_rng::Rng;

    /// Decodes `text`, completing a partial packet with empty attachments.
    fn decode_whole(text: &str) -> Result<Packet, DecodeError> {
        let lim = limits();
        match decode(text, &lim)? {
            Decoded::Complete(p) => Ok(p),
            Decoded::Partial(mut p) => loop {
                if let Some(done) = p.push(Bytes::new(), &lim)? {
                    return Ok(done);
                }
            },
        }
    }

    /// Whatever decodes must re-encode to text that decodes to the same packet.
    fn assert_stable(text: &str) -> bool {
        let Ok(first) = decode_whole(text) else {
            return false;
        };
        let wire = first.encode_to_string();
        match decode_whole(&wire) {
            Ok(again) => assert_eq!(again, first, "{text:?} -> {wire:?}"),
            Err(e) => panic!("{text:?} re-encoded as {wire:?} fails: {e}"),
        }
        true
    }

    #[test]
    fn random_input_never_panics_and_valid_input_round_trips() {
        const ALPHABET: &[u8] = b"0123456789-,/[]{}\":_placeholdernumtrue \\";
        let seeds = [
            r#"2["hello",1]"#,
            r#"2/admin,456["project:delete",123]"#,
            r#"51-["hello",{"_placeholder":true,"num":0}]"#,
            r#"61-/admin,456[{"_placeholder":true,"num":0}]"#,
            r#"0/admin,{"token":"123"}"#,
            r#"4{"message":"Not authorized"}"#,
            r#"2["é✓🎉"]"#,
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut decoded = 0;
        for round in 0..20_000 {
            let mut buf: Vec<u8> = if round % 2 == 0 {
                let len = rng.below(24);
                (0..len)
                    .map(|_| match rng.below(4) {
                        0 => rng.next() as u8,
                        _ => ALPHABET[rng.below(ALPHABET.len())],
                    })
                    .collect()
            } else {
                seeds[rng.below(seeds.len())].as_bytes().to_vec()
            };
            for _ in 0..rng.below(4) {
                let at = rng.below(buf.len() + 1);
                let byte = match rng.below(2) {
                    0 => rng.next() as u8,
                    _ => ALPHABET[rng.below(ALPHABET.len())],
                };
                match rng.below(3) {
                    0 => buf.insert(at, byte),
                    1 if at < buf.len() => {
                        buf.remove(at);
                    }
                    _ if at < buf.len() => buf[at] = byte,
                    _ => {}
                }
            }
            if assert_stable(&String::from_utf8_lossy(&buf)) {
                decoded += 1;
            }
        }
        // The loop must exercise the success path too, not only errors.
        assert!(decoded > 1_000, "only {decoded} inputs decoded");
    }
}
