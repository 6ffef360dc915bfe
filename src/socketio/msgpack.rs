//! socket.io packets as `socket.io-msgpack-parser` 3.x writes them: one
//! engine.io binary message per packet, holding one msgpack map
//! `{type, data, nsp, id}`.
//!
//! The parser is notepack.io 2.2 (the dialect of
//! [`cluster::msgpack`](crate::cluster::msgpack), which reads notepack 2's
//! `undefined`, fixext 1 `d4 00 00`). Only types 0 to 4 exist: buffers are
//! msgpack bin inside `data`, so there is no BINARY_EVENT or BINARY_ACK on
//! the wire. Unknown keys are ignored (socket.io-client also sends its
//! `options`). The client's decoder checks that `type` is an integer in
//! 0..=4, `nsp` a string, `id` absent or an integer, and `data` absent on
//! DISCONNECT, absent or an object on CONNECT, an object or a string on
//! CONNECT_ERROR and an array otherwise: [`encode`] leaves out what is
//! absent rather than writing nil.
//!
//! Inside socketgate a packet is a [`Packet`] like a JSON one: every bin
//! becomes a placeholder `{"_placeholder":true,"num":i}` in the data and its
//! bytes an attachment (the packet is then BINARY_EVENT or BINARY_ACK), so
//! handlers see the same [`Payload`] whatever the parser. The rest of
//! msgpack becomes JSON as the cluster bus reads it (see
//! [`cluster::wire`](crate::cluster::wire)): `undefined` is null, a date
//! its ISO 8601 text, `NaN` null.

use bytes::{Bytes, BytesMut};
use serde_json::Value as Json;

use super::packet::{self, Packet, PacketType};
use super::payload::Payload;
use crate::cluster::msgpack::{self as mp, Value};
use crate::cluster::wire::{self, WireError};

/// Bounds on what [`decode`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Limits {
    /// Input size, nesting depth and value count.
    pub(crate) msgpack: mp::Limits,
    /// Bins per packet and their bytes together, as for JSON attachments.
    pub(crate) packet: packet::Limits,
}

/// Why a binary message is not a socket.io packet. Every variant is a
/// protocol violation that closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error(transparent)]
    Msgpack(#[from] mp::DecodeError),
    #[error("msgpack packet: not a map")]
    NotAMap,
    #[error("msgpack packet: `type` is not an integer in 0..=4")]
    Type,
    #[error("msgpack packet: `nsp` is not a string")]
    Namespace,
    #[error("msgpack packet: `id` is not a non-negative integer")]
    Id,
    #[error("msgpack packet data: {0}")]
    Value(WireError),
    #[error(transparent)]
    Packet(#[from] packet::DecodeError),
}

/// Decodes one engine.io binary message.
pub(crate) fn decode(input: &Bytes, limits: &Limits) -> Result<Packet, DecodeError> {
    let Value::Map(entries) = mp::decode_with(input, &limits.msgpack)? else {
        return Err(DecodeError::NotAMap);
    };
    // A repeated key counts once, the last time (as in a JS object).
    let (mut ty, mut nsp, mut id, mut data) = (None, None, None, None);
    for (key, value) in entries {
        match key.as_str() {
            Some("type") => ty = Some(value),
            Some("nsp") => nsp = Some(value),
            Some("id") => id = Some(value),
            Some("data") => data = Some(value),
            _ => {}
        }
    }
    let ty = ty
        .as_ref()
        .and_then(Value::as_u64)
        .filter(|&t| t <= 4)
        .and_then(|t| PacketType::from_digit(b'0' + t as u8))
        .ok_or(DecodeError::Type)?;
    let nsp = match nsp {
        Some(Value::Str(s)) => s,
        _ => return Err(DecodeError::Namespace),
    };
    if nsp.bytes().any(|b| b.is_ascii_control()) {
        return Err(packet::DecodeError::BadNamespace.into());
    }
    let id = match id {
        None => None,
        Some(v) if v.is_nullish() => None,
        Some(v) => Some(v.as_u64().ok_or(DecodeError::Id)?),
    };
    if id.is_some() && !ty.takes_ack_id() {
        return Err(packet::DecodeError::UnexpectedAckId(ty).into());
    }
    if ty == PacketType::Ack && id.is_none() {
        return Err(packet::DecodeError::MissingAckId(ty).into());
    }
    let (ty, data, attachments) = match data {
        None => (ty, None, Vec::new()),
        Some(v) if v.is_nullish() => (ty, None, Vec::new()),
        Some(Value::Array(items)) if matches!(ty, PacketType::Event | PacketType::Ack) => {
            let payload = args(items, &limits.packet)?;
            let ty = match (ty, payload.bins.is_empty()) {
                (ty, true) => ty,
                (PacketType::Event, false) => PacketType::BinaryEvent,
                (_, false) => PacketType::BinaryAck,
            };
            (ty, Some(Json::Array(payload.args)), payload.bins)
        }
        // CONNECT auth and the like: no binary.
        Some(v) => (
            ty,
            Some(wire::to_json(v, None, 1).map_err(DecodeError::Value)?),
            Vec::new(),
        ),
    };
    packet::check_payload(ty, data.as_ref())?;
    Ok(Packet {
        ty,
        nsp,
        id,
        data,
        attachments,
    })
}

/// Event or ack arguments, bins as attachments within the limits.
fn args(items: Vec<Value>, limits: &packet::Limits) -> Result<Payload, DecodeError> {
    let mut payload = Payload::new();
    payload.args.reserve(items.len());
    for item in items {
        // The item sits two levels down: the packet map, the data array.
        let arg = wire::to_json(item, Some(&mut payload.bins), 2).map_err(DecodeError::Value)?;
        payload.args.push(arg);
    }
    wire::renumber(&mut payload);
    let max = limits.max_attachments;
    if payload.bins.len() > max {
        return Err(packet::DecodeError::TooManyAttachments { max }.into());
    }
    let max = limits.max_attachment_bytes;
    let bytes = payload.bins.iter().map(Bytes::len).sum::<usize>();
    if bytes > max {
        return Err(packet::DecodeError::AttachmentsTooLarge { max }.into());
    }
    Ok(payload)
}

/// What goes under `data`.
pub(crate) enum Data<'a> {
    /// No `data` key (DISCONNECT, a CONNECT answer to a protocol 4 client).
    None,
    /// One JSON value, placeholders written as maps.
    Json(&'a Json),
    /// An event's or an ack's array: the leading event name, when there
    /// is one, then the arguments (placeholders indexing `bins` as bin),
    /// then the recovery offset, when there is one.
    Args {
        event: Option<&'a str>,
        args: &'a [Json],
        bins: &'a [Bytes],
        offset: Option<&'a str>,
    },
}

/// One packet as one binary message's bytes. `ty` is written as its
/// non-binary type (BINARY_EVENT as EVENT): bins travel inline.
pub(crate) fn encode(ty: PacketType, nsp: &str, id: Option<u64>, data: Data<'_>) -> Bytes {
    let ty = match ty {
        PacketType::BinaryEvent => PacketType::Event,
        PacketType::BinaryAck => PacketType::Ack,
        ty => ty,
    };
    let mut out = BytesMut::with_capacity(64);
    let fields = 2 + usize::from(!matches!(data, Data::None)) + usize::from(id.is_some());
    mp::write_map_len(&mut out, fields);
    mp::write_str(&mut out, "type");
    mp::write_uint(&mut out, u64::from(ty.digit() - b'0'));
    match data {
        Data::None => {}
        Data::Json(json) => {
            mp::write_str(&mut out, "data");
            wire::write_json(&mut out, json, &[]);
        }
        Data::Args {
            event,
            args,
            bins,
            offset,
        } => {
            mp::write_str(&mut out, "data");
            let len = usize::from(event.is_some()) + args.len() + usize::from(offset.is_some());
            mp::write_array_len(&mut out, len);
            if let Some(event) = event {
                mp::write_str(&mut out, event);
            }
            for arg in args {
                wire::write_json(&mut out, arg, bins);
            }
            if let Some(offset) = offset {
                mp::write_str(&mut out, offset);
            }
        }
    }
    mp::write_str(&mut out, "nsp");
    mp::write_str(&mut out, nsp);
    if let Some(id) = id {
        mp::write_str(&mut out, "id");
        mp::write_uint(&mut out, id);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::msgpack::tests::hex;
    use serde_json::json;

    fn limits() -> Limits {
        Limits {
            msgpack: mp::Limits::default(),
            packet: packet::Limits::default(),
        }
    }

    /// `{k: v, …}` as msgpack, values given as msgpack values.
    fn map(entries: Vec<(&str, Value)>) -> Bytes {
        let entries = entries
            .into_iter()
            .map(|(k, v)| (Value::Str(k.to_owned()), v))
            .collect();
        mp::to_bytes(&Value::Map(entries))
    }

    fn s(v: &str) -> Value {
        Value::Str(v.to_owned())
    }

    #[test]
    fn decodes_what_socket_io_client_sends() {
        // socket.emit("hello", 1, Buffer.from([1, 2])) with an ack, as
        // socket.io-msgpack-parser 3.0.2 writes it (the client's
        // `options` included).
        let input = hex(concat!(
            "85", // map of 5
            "a474797065",
            "02", // type: 2
            "a464617461",
            "93", // data: [
            "a568656c6c6f",
            "01",                     //   "hello", 1,
            "c4020102",               //   <bin 01 02> ]
            "a76f7074696f6e73",       // options:
            "81a8636f6d7072657373c3", //   {compress: true}
            "a36e7370",
            "a12f", // nsp: "/"
            "a26964",
            "07", // id: 7
        ));
        let p = decode(&input, &limits()).unwrap();
        assert_eq!(p.ty, PacketType::BinaryEvent);
        assert_eq!(p.nsp, "/");
        assert_eq!(p.id, Some(7));
        assert_eq!(
            p.data,
            Some(json!(["hello", 1, {"_placeholder": true, "num": 0}]))
        );
        assert_eq!(p.attachments, vec![Bytes::from_static(&[1, 2])]);
    }

    #[test]
    fn undefined_reads_as_absent_or_null() {
        // CONNECT without auth: `data: undefined` is notepack 2's fixext 1.
        let input = hex("83a474797065 00 a464617461 d40000 a36e7370 a12f"
            .replace(' ', "")
            .as_str());
        let p = decode(&input, &limits()).unwrap();
        assert_eq!((p.ty, p.data), (PacketType::Connect, None));
        let input = map(vec![
            ("type", Value::UInt(3)),
            ("data", Value::Array(vec![Value::Undefined, Value::Nil])),
            ("nsp", s("/x")),
            ("id", Value::UInt(0)),
        ]);
        let p = decode(&input, &limits()).unwrap();
        assert_eq!(p.ty, PacketType::Ack);
        assert_eq!(p.data, Some(json!([null, null])));
        assert_eq!(p.id, Some(0));
    }

    #[test]
    fn nested_bins_become_numbered_placeholders() {
        let input = map(vec![
            ("type", Value::UInt(2)),
            (
                "data",
                Value::Array(vec![
                    s("up"),
                    Value::Map(vec![
                        (s("b"), Value::Bin(Bytes::from_static(b"B"))),
                        (
                            s("a"),
                            Value::Array(vec![Value::Bin(Bytes::from_static(b"A"))]),
                        ),
                    ]),
                ]),
            ),
            ("nsp", s("/")),
        ]);
        let p = decode(&input, &limits()).unwrap();
        // numbered in the order the arguments serialise (keys sorted)
        assert_eq!(
            p.data,
            Some(json!(["up", {
                "a": [{"_placeholder": true, "num": 0}],
                "b": {"_placeholder": true, "num": 1}
            }]))
        );
        assert_eq!(p.attachments, vec![Bytes::from("A"), Bytes::from("B")]);
    }

    #[test]
    fn refuses_what_the_reference_decoder_refuses() {
        let err = |entries: Vec<(&str, Value)>| decode(&map(entries), &limits()).unwrap_err();
        let ev = || Value::Array(vec![s("ev")]);
        assert_eq!(
            err(vec![
                ("type", Value::UInt(5)),
                ("data", ev()),
                ("nsp", s("/"))
            ]),
            DecodeError::Type
        );
        assert_eq!(
            err(vec![("type", Value::Int(-1)), ("nsp", s("/"))]),
            DecodeError::Type
        );
        assert_eq!(
            err(vec![("type", Value::UInt(2)), ("data", ev())]),
            DecodeError::Namespace
        );
        assert_eq!(
            err(vec![
                ("type", Value::UInt(2)),
                ("data", ev()),
                ("nsp", s("/")),
                ("id", s("1"))
            ]),
            DecodeError::Id
        );
        assert_eq!(
            err(vec![
                ("type", Value::UInt(3)),
                ("data", Value::Array(vec![])),
                ("nsp", s("/"))
            ]),
            packet::DecodeError::MissingAckId(PacketType::Ack).into()
        );
        assert_eq!(
            err(vec![
                ("type", Value::UInt(1)),
                ("data", ev()),
                ("nsp", s("/"))
            ]),
            packet::DecodeError::InvalidPayload(PacketType::Disconnect).into()
        );
        assert_eq!(
            err(vec![
                ("type", Value::UInt(2)),
                ("data", Value::Array(vec![s("connect")])),
                ("nsp", s("/"))
            ]),
            packet::DecodeError::ReservedEventName.into()
        );
        // a map that would pass for a placeholder of another argument's bin
        let fake = Value::Map(vec![
            (s("_placeholder"), Value::Bool(true)),
            (s("num"), Value::UInt(0)),
        ]);
        assert_eq!(
            err(vec![
                ("type", Value::UInt(2)),
                ("data", Value::Array(vec![s("ev"), fake])),
                ("nsp", s("/"))
            ]),
            DecodeError::Value(WireError::Placeholder)
        );
        // binary in CONNECT auth
        assert_eq!(
            err(vec![
                ("type", Value::UInt(0)),
                ("data", Value::Map(vec![(s("k"), Value::Bin(Bytes::new()))])),
                ("nsp", s("/"))
            ]),
            DecodeError::Value(WireError::Binary)
        );
        assert_eq!(
            decode(&hex("92 00 a12f".replace(' ', "").as_str()), &limits()).unwrap_err(),
            DecodeError::NotAMap
        );
        assert_eq!(
            decode(&Bytes::from_static(b"42[\"ev\"]"), &limits()).unwrap_err(),
            DecodeError::Msgpack(mp::DecodeError::TrailingBytes(7))
        );
    }

    #[test]
    fn enforces_limits() {
        let bins = |n: usize, len: usize| {
            let mut items = vec![s("ev")];
            items.extend((0..n).map(|_| Value::Bin(Bytes::from(vec![0u8; len]))));
            map(vec![
                ("type", Value::UInt(2)),
                ("data", Value::Array(items)),
                ("nsp", s("/")),
            ])
        };
        let mut l = limits();
        l.packet = l.packet.max_attachments(2).max_attachment_bytes(10);
        assert!(decode(&bins(2, 5), &l).is_ok());
        assert_eq!(
            decode(&bins(3, 1), &l).unwrap_err(),
            packet::DecodeError::TooManyAttachments { max: 2 }.into()
        );
        assert_eq!(
            decode(&bins(2, 6), &l).unwrap_err(),
            packet::DecodeError::AttachmentsTooLarge { max: 10 }.into()
        );
        l.msgpack.max_depth = 4;
        let mut deep = Value::Array(vec![]);
        for _ in 0..3 {
            deep = Value::Array(vec![deep]);
        }
        let input = map(vec![
            ("type", Value::UInt(2)),
            ("data", Value::Array(vec![s("ev"), deep])),
            ("nsp", s("/")),
        ]);
        assert_eq!(
            decode(&input, &l).unwrap_err(),
            DecodeError::Msgpack(mp::DecodeError::TooDeep(4))
        );
        l.msgpack.max_input = 8;
        assert_eq!(
            decode(&bins(0, 0), &l).unwrap_err(),
            DecodeError::Msgpack(mp::DecodeError::TooLarge(bins(0, 0).len()))
        );
        // a huge announced length with nothing behind it
        assert_eq!(
            decode(&hex("dfffffffff"), &limits()).unwrap_err(),
            DecodeError::Msgpack(mp::DecodeError::Truncated)
        );
    }

    #[test]
    fn encodes_what_the_client_decoder_accepts() {
        let bins = [Bytes::from_static(&[9])];
        let args = [json!({"f": {"_placeholder": true, "num": 0}})];
        let out = encode(
            PacketType::BinaryEvent,
            "/",
            Some(3),
            Data::Args {
                event: Some("ev"),
                args: &args,
                bins: &bins,
                offset: Some("o-1"),
            },
        );
        assert_eq!(
            out,
            hex(concat!(
                "84",
                "a474797065",
                "02",
                "a464617461",
                "93",
                "a26576",
                "81a166c40109",
                "a36f2d31",
                "a36e7370",
                "a12f",
                "a26964",
                "03",
            ))
        );
        // DISCONNECT: no data key at all (nil would fail the client's check)
        let out = encode(PacketType::Disconnect, "/a", None, Data::None);
        assert_eq!(out, hex("82a47479706501a36e7370a22f61"));
        // and what is encoded decodes back to the same packet
        let p = decode(
            &encode(
                PacketType::Ack,
                "/x",
                Some(1),
                Data::Args {
                    event: None,
                    args: &args,
                    bins: &bins,
                    offset: None,
                },
            ),
            &limits(),
        )
        .unwrap();
        assert_eq!(p.ty, PacketType::BinaryAck);
        assert_eq!(
            p.data,
            Some(json!([{"f": {"_placeholder": true, "num": 0}}]))
        );
        assert_eq!(p.attachments, bins);
        let p = decode(
            &encode(
                PacketType::Connect,
                "/",
                None,
                Data::Json(&json!({"sid": "x"})),
            ),
            &limits(),
        )
        .unwrap();
        assert_eq!(p.data, Some(json!({"sid": "x"})));
    }
}
