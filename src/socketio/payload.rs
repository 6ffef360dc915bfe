//! Event arguments, and the writer that turns an event into engine.io
//! messages in one pass.

use std::io::Write as _;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::config::Parser;
use super::packet::PacketType;
use crate::engine::Message;

/// The arguments of an event or an ack: JSON values, where binary
/// arguments appear as `{"_placeholder":true,"num":i}` and their bytes sit
/// in [`bins`](Self::bins) at index `i`.
///
/// Received payloads can be sent on as they are (binary included).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payload {
    /// The arguments.
    pub args: Vec<Value>,
    /// The binary attachments the placeholders refer to.
    pub bins: Vec<Bytes>,
}

impl Payload {
    /// No arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a JSON argument.
    pub fn arg(mut self, value: impl Into<Value>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Adds a binary argument.
    pub fn bin(mut self, bytes: impl Into<Bytes>) -> Self {
        let placeholder = self.attach(bytes);
        self.args.push(placeholder);
        self
    }

    /// Stores binary data and returns the placeholder that stands for it,
    /// to be put anywhere inside an argument (`{"file": <placeholder>}`).
    pub fn attach(&mut self, bytes: impl Into<Bytes>) -> Value {
        let num = self.bins.len();
        self.bins.push(bytes.into());
        serde_json::json!({ "_placeholder": true, "num": num })
    }

    /// The first argument, deserialised.
    pub fn first<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.get(0)
    }

    /// Argument `i`, deserialised (a missing one reads as `null`).
    pub fn get<T: DeserializeOwned>(&self, i: usize) -> Result<T, serde_json::Error> {
        T::deserialize(self.args.get(i).unwrap_or(&Value::Null))
    }

    /// The bytes of argument `i` when it is a binary placeholder.
    pub fn binary(&self, i: usize) -> Option<&Bytes> {
        let num = self.args.get(i)?.get("num")?.as_u64()?;
        self.bins.get(usize::try_from(num).ok()?)
    }
}

/// A socket.io packet encoded once as engine.io messages: the text packet,
/// then one binary message per attachment ([`Parser::Json`]), or one binary
/// message ([`Parser::Msgpack`]). Clones share the bytes.
#[derive(Debug, Clone)]
pub(crate) struct Encoded(pub(crate) Vec<Message>);

impl Encoded {
    /// Bytes the packet takes in a session's outbound queue.
    pub(crate) fn frame_bytes(&self) -> usize {
        self.0.iter().map(|m| m.frame().len()).sum()
    }

    /// The data of an event packet read back (its name first, then its
    /// arguments, binary ones as placeholders with their bytes); `None`
    /// for any other packet. For monitors only: it decodes what was just
    /// encoded.
    pub(crate) fn event_data(&self) -> Option<Payload> {
        use crate::engine::packet::Frame;
        let packet = match self.0.first()?.frame() {
            // A packet of ours: the limits only need to let it through.
            Frame::Text(text) => {
                let limits = super::packet::Limits::default()
                    .max_attachments(usize::MAX)
                    .max_attachment_bytes(usize::MAX);
                let body = text.as_str().get(1..)?;
                match super::packet::decode(body, &limits).ok()? {
                    super::packet::Decoded::Complete(p) => p,
                    super::packet::Decoded::Partial(mut partial) => {
                        let mut whole = None;
                        for m in &self.0[1..] {
                            let Frame::Binary(b) = m.frame() else {
                                return None;
                            };
                            whole = partial.push(b.data().clone(), &limits).ok()?;
                        }
                        whole?
                    }
                }
            }
            Frame::Binary(b) => {
                let limits = super::msgpack::Limits {
                    msgpack: crate::cluster::msgpack::Limits {
                        max_input: usize::MAX,
                        max_items: usize::MAX,
                        ..Default::default()
                    },
                    packet: super::packet::Limits::default()
                        .max_attachments(usize::MAX)
                        .max_attachment_bytes(usize::MAX),
                };
                super::msgpack::decode(b.data(), &limits).ok()?
            }
        };
        if !matches!(packet.ty, PacketType::Event | PacketType::BinaryEvent) {
            return None;
        }
        let Some(Value::Array(args)) = packet.data else {
            return None;
        };
        Some(Payload {
            args,
            bins: packet.attachments,
        })
    }
}

/// Writes the packet header: engine message type, socket.io type,
/// attachment count, namespace and ack id. The packet is built as bytes so
/// that serde_json writes into it directly.
fn header(ty: PacketType, bins: usize, nsp: &str, id: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(b'4');
    out.push(ty.digit());
    // Writing to a Vec cannot fail.
    if ty.is_binary() {
        let _ = write!(out, "{bins}-");
    }
    if nsp != "/" {
        out.extend_from_slice(nsp.as_bytes());
        out.push(b',');
    }
    if let Some(id) = id {
        let _ = write!(out, "{id}");
    }
    out
}

fn finish(out: Vec<u8>, bins: &[Bytes]) -> Result<Encoded, serde_json::Error> {
    // Only `str`s and serde_json's output (UTF-8) were written.
    let text = String::from_utf8(out).map_err(serde::ser::Error::custom)?;
    let mut messages = Vec::with_capacity(1 + bins.len());
    messages.push(Message::from_text_frame(text));
    messages.extend(bins.iter().cloned().map(Message::binary));
    Ok(Encoded(messages))
}

/// Appends `value` as JSON.
fn push_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), serde_json::Error> {
    serde_json::to_writer(out, value)
}

/// `["event", data]` as an EVENT packet; with connection state recovery the
/// packet's offset follows as a last argument.
pub(crate) fn event<T: Serialize + ?Sized>(
    parser: Parser,
    nsp: &str,
    id: Option<u64>,
    event: &str,
    data: &T,
    offset: Option<&str>,
) -> Result<Encoded, serde_json::Error> {
    if parser == Parser::Msgpack {
        let args = [serde_json::to_value(data)?];
        return Ok(msgpack(
            PacketType::Event,
            nsp,
            id,
            Some(event),
            &args,
            &[],
            offset,
        ));
    }
    let mut out = header(PacketType::Event, 0, nsp, id);
    out.push(b'[');
    push_json(&mut out, event)?;
    out.push(b',');
    push_json(&mut out, data)?;
    push_offset(&mut out, offset)?;
    out.push(b']');
    finish(out, &[])
}

fn push_offset(out: &mut Vec<u8>, offset: Option<&str>) -> Result<(), serde_json::Error> {
    if let Some(offset) = offset {
        out.push(b',');
        push_json(out, offset)?;
    }
    Ok(())
}

/// An EVENT (or BINARY_EVENT) with the payload's arguments (and the
/// recovery offset, see [`event`]).
pub(crate) fn event_payload(
    parser: Parser,
    nsp: &str,
    id: Option<u64>,
    event: &str,
    payload: &Payload,
    offset: Option<&str>,
) -> Result<Encoded, serde_json::Error> {
    let ty = if payload.bins.is_empty() {
        PacketType::Event
    } else {
        PacketType::BinaryEvent
    };
    if parser == Parser::Msgpack {
        let (args, bins) = (&payload.args, &payload.bins);
        return Ok(msgpack(ty, nsp, id, Some(event), args, bins, offset));
    }
    let mut out = header(ty, payload.bins.len(), nsp, id);
    out.push(b'[');
    push_json(&mut out, event)?;
    for arg in &payload.args {
        out.push(b',');
        push_json(&mut out, arg)?;
    }
    push_offset(&mut out, offset)?;
    out.push(b']');
    finish(out, &payload.bins)
}

/// An ACK (or BINARY_ACK) carrying the payload's arguments.
pub(crate) fn ack(
    parser: Parser,
    nsp: &str,
    id: u64,
    payload: &Payload,
) -> Result<Encoded, serde_json::Error> {
    if parser == Parser::Msgpack {
        let (args, bins) = (&payload.args, &payload.bins);
        return Ok(msgpack(
            PacketType::Ack,
            nsp,
            Some(id),
            None,
            args,
            bins,
            None,
        ));
    }
    ack_with(nsp, id, &payload.args, &payload.bins)
}

/// An ACK carrying one JSON argument, serialised straight into the packet.
pub(crate) fn ack_one<T: Serialize + ?Sized>(
    parser: Parser,
    nsp: &str,
    id: u64,
    data: &T,
) -> Result<Encoded, serde_json::Error> {
    if parser == Parser::Msgpack {
        let args = [serde_json::to_value(data)?];
        return Ok(msgpack(
            PacketType::Ack,
            nsp,
            Some(id),
            None,
            &args,
            &[],
            None,
        ));
    }
    ack_with(nsp, id, &[data], &[])
}

/// `args` serialises as the ACK's JSON array.
fn ack_with<A: Serialize + ?Sized>(
    nsp: &str,
    id: u64,
    args: &A,
    bins: &[Bytes],
) -> Result<Encoded, serde_json::Error> {
    let ty = if bins.is_empty() {
        PacketType::Ack
    } else {
        PacketType::BinaryAck
    };
    let mut out = header(ty, bins.len(), nsp, Some(id));
    push_json(&mut out, args)?;
    finish(out, bins)
}

/// An event or ack as one msgpack binary message.
fn msgpack(
    ty: PacketType,
    nsp: &str,
    id: Option<u64>,
    event: Option<&str>,
    args: &[Value],
    bins: &[Bytes],
    offset: Option<&str>,
) -> Encoded {
    let data = super::msgpack::Data::Args {
        event,
        args,
        bins,
        offset,
    };
    let bytes = super::msgpack::encode(ty, nsp, id, data);
    Encoded(vec![Message::binary(bytes)])
}

/// A CONNECT, DISCONNECT or CONNECT_ERROR packet.
pub(crate) fn control(parser: Parser, ty: PacketType, nsp: &str, data: Option<&Value>) -> Encoded {
    if parser == Parser::Msgpack {
        let data = data.map_or(super::msgpack::Data::None, super::msgpack::Data::Json);
        let bytes = super::msgpack::encode(ty, nsp, None, data);
        return Encoded(vec![Message::binary(bytes)]);
    }
    let mut out = header(ty, 0, nsp, None);
    let written = match data {
        Some(data) => push_json(&mut out, data),
        None => Ok(()),
    };
    // A `Value` (string keys only) always serialises, into UTF-8.
    written
        .and_then(|()| finish(out, &[]))
        .expect("a JSON value serialises into UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::packet::{Decoded, Limits, decode};

    fn texts(e: &Encoded) -> Vec<String> {
        e.0.iter()
            .map(|m| match m.as_text() {
                Some(t) => format!("4{t}"),
                None => format!("<{} bytes>", m.len()),
            })
            .collect()
    }

    #[test]
    fn encodes_events_acks_and_control_packets() {
        let e = event(
            Parser::Json,
            "/",
            None,
            "hello",
            &serde_json::json!({"a":1}),
            None,
        )
        .unwrap();
        assert_eq!(texts(&e), ["42[\"hello\",{\"a\":1}]"]);
        let e = event(Parser::Json, "/", None, "hello", &1, Some("ab-7")).unwrap();
        assert_eq!(texts(&e), ["42[\"hello\",1,\"ab-7\"]"]);
        let e = event(Parser::Json, "/admin", Some(12), "x", &[1, 2], None).unwrap();
        assert_eq!(texts(&e), ["42/admin,12[\"x\",[1,2]]"]);
        let p = Payload::new()
            .arg("text")
            .bin(vec![1u8, 2, 3])
            .arg(serde_json::json!(null));
        let e = event_payload(Parser::Json, "/", None, "ev", &p, None).unwrap();
        assert_eq!(
            texts(&e),
            [
                "451-[\"ev\",\"text\",{\"_placeholder\":true,\"num\":0},null]",
                "<3 bytes>"
            ]
        );
        let e = ack(Parser::Json, "/chat", 7, &Payload::new().arg("ok")).unwrap();
        assert_eq!(texts(&e), ["43/chat,7[\"ok\"]"]);
        let e = ack_one(Parser::Json, "/chat", 7, &serde_json::json!({"ok": true})).unwrap();
        assert_eq!(texts(&e), ["43/chat,7[{\"ok\":true}]"]);
        let e = ack(Parser::Json, "/", 7, &Payload::new().bin(vec![9u8])).unwrap();
        assert_eq!(
            texts(&e),
            ["461-7[{\"_placeholder\":true,\"num\":0}]", "<1 bytes>"]
        );
        let e = control(
            Parser::Json,
            PacketType::Connect,
            "/",
            Some(&serde_json::json!({"sid":"x"})),
        );
        assert_eq!(texts(&e), ["40{\"sid\":\"x\"}"]);
        let e = control(Parser::Json, PacketType::Disconnect, "/admin", None);
        assert_eq!(texts(&e), ["41/admin,"]);
    }

    #[test]
    fn encoded_events_decode_back() {
        let p = Payload::new().arg("é✓🎉").bin(vec![0u8, 255]);
        let e = event_payload(Parser::Json, "/x", Some(3), "ev", &p, None).unwrap();
        let text = e.0[0].as_text().unwrap();
        let Decoded::Partial(mut partial) = decode(text, &Limits::default()).unwrap() else {
            panic!("binary packet expected")
        };
        let packet = partial
            .push(e.0[1].as_binary().unwrap().clone(), &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(packet.nsp, "/x");
        assert_eq!(packet.id, Some(3));
        assert_eq!(packet.data.unwrap()[1], "é✓🎉");
        assert_eq!(packet.attachments, vec![Bytes::from(vec![0u8, 255])]);
    }

    #[test]
    fn msgpack_packets_are_one_binary_message() {
        use crate::socketio::msgpack;
        let limits = msgpack::Limits::default();
        let one = |e: Encoded| {
            assert_eq!(e.0.len(), 1);
            msgpack::decode(e.0[0].as_binary().expect("binary"), &limits).unwrap()
        };
        let p = Payload::new().arg("a").bin(vec![1u8, 2]);
        let packet =
            one(event_payload(Parser::Msgpack, "/", Some(4), "ev", &p, Some("o-1")).unwrap());
        assert_eq!(packet.ty, PacketType::BinaryEvent);
        assert_eq!(packet.id, Some(4));
        assert_eq!(
            packet.data,
            Some(serde_json::json!(["ev", "a", {"_placeholder": true, "num": 0}, "o-1"]))
        );
        assert_eq!(packet.attachments, p.bins);
        let packet = one(event(Parser::Msgpack, "/x", None, "ev", &[1, 2], None).unwrap());
        assert_eq!(packet.data, Some(serde_json::json!(["ev", [1, 2]])));
        assert_eq!(packet.nsp, "/x");
        let packet = one(ack_one(Parser::Msgpack, "/", 9, &"ok").unwrap());
        assert_eq!((packet.ty, packet.id), (PacketType::Ack, Some(9)));
        let packet = one(ack(Parser::Msgpack, "/", 9, &p).unwrap());
        assert_eq!(
            (packet.ty, packet.attachments),
            (PacketType::BinaryAck, p.bins.clone())
        );
        let packet = one(control(Parser::Msgpack, PacketType::Disconnect, "/", None));
        assert_eq!((packet.ty, packet.data), (PacketType::Disconnect, None));
    }

    #[test]
    fn payload_accessors() {
        let p = Payload::new().arg(5).bin(vec![1u8]).arg("s");
        assert_eq!(p.first::<u32>().unwrap(), 5);
        assert_eq!(p.get::<String>(2).unwrap(), "s");
        assert_eq!(p.binary(1).map(|b| &b[..]), Some(&[1u8][..]));
        assert_eq!(p.binary(0), None);
        assert!(p.get::<u32>(9).is_err());
    }
}
