//! The messages of `@socket.io/redis-adapter` 8.3 and
//! `@socket.io/redis-emitter` 5 on Redis, byte for byte.
//!
//! Channels (prefix `key`, default `socket.io`):
//! - broadcasts on `<key>#<nsp>#`, or `<key>#<nsp>#<room>#` when they
//!   target exactly one room: msgpack `[uid, packet, opts]`;
//! - requests on `<key>-request#<nsp>#`: JSON, except BROADCAST (a
//!   broadcast expecting acks), a msgpack map; a receiver tells them apart
//!   by a first byte `{`;
//! - responses on `<key>-response#<nsp>#` (or `…#<uid>#` for a node that
//!   asked for its own): JSON, except BROADCAST_ACK, a msgpack map.
//!
//! Events travel as socketgate holds them ([`Payload`]): JSON values, with
//! each msgpack bin (anywhere in the tree) as a placeholder
//! `{"_placeholder":true,"num":i}` and its bytes in `bins`. The rest of
//! msgpack becomes what `JSON.stringify` makes of the value notepack.io
//! decodes, which is what a Node server sends its clients: `undefined` is
//! `null` in arrays and left out of objects, a date is its ISO 8601 text
//! (`2024-01-02T03:04:05.678Z`), `NaN` and `±Infinity` are `null`, an
//! integral float is an integer, another extension is `[type, <bin>]`. Map
//! keys that are numbers, booleans or nil become their JS text (`1`,
//! `true`, `null`); other keys (floats, arrays, maps, bins, dates) are
//! refused, as is a map that is itself a placeholder (`_placeholder: true`),
//! which would be taken for an attachment.
//!
//! Decoding never panics and is bounded by [`msgpack::Limits`] (input size,
//! depth, value count), JSON included.

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde_json::{Map, Number, Value as Json};

use super::msgpack::{self, DecodeError, Limits, Timestamp, Value};
use crate::socketio::Payload;

/// The channel prefix unless configured (`opts.key` in Node).
pub(crate) const DEFAULT_KEY: &str = "socket.io";

/// The uid `@socket.io/redis-emitter` sends in broadcasts and in
/// serverSideEmit.
pub(crate) const EMITTER_UID: &str = "emitter";

/// The request types (`RequestType` in the Node adapter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RequestType {
    Sockets = 0,
    AllRooms = 1,
    RemoteJoin = 2,
    RemoteLeave = 3,
    RemoteDisconnect = 4,
    RemoteFetch = 5,
    ServerSideEmit = 6,
    Broadcast = 7,
    BroadcastClientCount = 8,
    BroadcastAck = 9,
}

/// `<key>#<nsp>#`, or `<key>#<nsp>#<room>#` for a single room, where a
/// broadcast is published.
pub(crate) fn broadcast_channel(key: &str, nsp: &str, rooms: &[String]) -> String {
    match rooms {
        [room] => format!("{key}#{nsp}#{room}#"),
        _ => format!("{key}#{nsp}#"),
    }
}

/// `<key>-request#<nsp>#`.
pub(crate) fn request_channel(key: &str, nsp: &str) -> String {
    format!("{key}-request#{nsp}#")
}

/// `<key>-response#<nsp>#`, where responses go by default.
pub(crate) fn response_channel(key: &str, nsp: &str) -> String {
    format!("{key}-response#{nsp}#")
}

/// `<key>-response#<nsp>#<uid>#`: responses for node `uid` alone, with
/// `publishOnSpecificResponseChannel`.
pub(crate) fn specific_response_channel(key: &str, nsp: &str, uid: &str) -> String {
    format!("{key}-response#{nsp}#{uid}#")
}

/// Why a message was refused. Small and `Copy`, like
/// [`msgpack::DecodeError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error(transparent)]
    Msgpack(#[from] DecodeError),
    #[error("invalid JSON")]
    Json,
    #[error("not a map (or, for a broadcast, not an array of three)")]
    Shape,
    #[error("field `{0}` is missing or of the wrong type")]
    Field(&'static str),
    #[error("unknown request type {0}")]
    RequestType(u64),
    #[error("packet type {0} is not an event")]
    PacketType(u64),
    #[error("a map key that is not a string, integer, boolean or nil")]
    MapKey,
    #[error("a map that reads as a binary placeholder")]
    Placeholder,
    #[error("binary data where Node sends JSON")]
    Binary,
}

/// The options of a broadcast (`BroadcastFlags` in socket.io). Each is
/// absent unless set, as in Node: `compress: Some(false)` differs from no
/// `compress`. Unknown flags are dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub(crate) volatile: Option<bool>,
    pub(crate) compress: Option<bool>,
    pub(crate) local: Option<bool>,
    pub(crate) broadcast: Option<bool>,
    pub(crate) binary: Option<bool>,
    /// Milliseconds to wait for acks (a broadcast expecting them);
    /// fractions are dropped, a negative number reads as 0.
    pub(crate) timeout: Option<u64>,
}

/// An event for the sockets of a namespace, on the broadcast channel (or,
/// expecting acks, in a [`Request::Broadcast`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Broadcast {
    /// The sending node (`"emitter"` for the emitter; empty when the
    /// message had none, which Node accepts).
    pub(crate) uid: String,
    /// The namespace (`"/"` when the packet had none).
    pub(crate) nsp: String,
    /// The packet's data: the event name, then the arguments.
    pub(crate) data: Payload,
    /// Sockets in any of these rooms; all when empty.
    pub(crate) rooms: Vec<String>,
    /// Minus the sockets in any of these.
    pub(crate) except: Vec<String>,
    pub(crate) flags: Flags,
}

impl Broadcast {
    /// The event name: the first element of the data, when a string.
    pub(crate) fn event(&self) -> Option<&str> {
        self.data.args.first()?.as_str()
    }

    /// The channel Node publishes this broadcast on.
    pub(crate) fn channel(&self, key: &str) -> String {
        broadcast_channel(key, &self.nsp, &self.rooms)
    }
}

/// Which sockets a request is about (`opts` in Node).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Target {
    /// Sockets in any of these rooms; all when empty.
    pub(crate) rooms: Vec<String>,
    /// Minus the sockets in any of these.
    pub(crate) except: Vec<String>,
}

/// A request on the request channel. `uid` is the asking node; the emitter
/// sends none for join, leave and disconnect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Request {
    /// SOCKETS (0): the ids of the sockets in `rooms`. Node 8.3 answers it
    /// (older adapters sent it) but no longer sends it.
    Sockets {
        uid: Option<String>,
        request_id: String,
        rooms: Vec<String>,
    },
    /// ALL_ROOMS (1): every room of the namespace.
    AllRooms {
        uid: Option<String>,
        request_id: String,
    },
    /// REMOTE_JOIN (2) with `opts` (socketsJoin): no answer.
    Join {
        uid: Option<String>,
        target: Target,
        rooms: Vec<String>,
    },
    /// REMOTE_LEAVE (3) with `opts` (socketsLeave): no answer.
    Leave {
        uid: Option<String>,
        target: Target,
        rooms: Vec<String>,
    },
    /// REMOTE_DISCONNECT (4) with `opts` (disconnectSockets): no answer.
    Disconnect {
        uid: Option<String>,
        target: Target,
        close: bool,
    },
    /// REMOTE_JOIN (2) of one socket, as older adapters sent it: the node
    /// holding `sid` answers [`Response::Done`].
    JoinSocket {
        uid: Option<String>,
        request_id: Option<String>,
        sid: String,
        room: String,
    },
    /// REMOTE_LEAVE (3) of one socket (older adapters).
    LeaveSocket {
        uid: Option<String>,
        request_id: Option<String>,
        sid: String,
        room: String,
    },
    /// REMOTE_DISCONNECT (4) of one socket (older adapters).
    DisconnectSocket {
        uid: Option<String>,
        request_id: Option<String>,
        sid: String,
        close: bool,
    },
    /// REMOTE_FETCH (5): fetchSockets.
    Fetch {
        uid: Option<String>,
        request_id: String,
        target: Target,
    },
    /// SERVER_SIDE_EMIT (6): `data` is the event name, then the
    /// arguments; with a `request_id`, each node answers once.
    ServerSideEmit {
        uid: Option<String>,
        request_id: Option<String>,
        data: Payload,
    },
    /// BROADCAST (7): a broadcast expecting acks; each node answers
    /// [`Response::BroadcastClientCount`], then one
    /// [`Response::BroadcastAck`] per client ack.
    Broadcast {
        request_id: String,
        broadcast: Broadcast,
    },
}

impl Request {
    /// The asking node.
    pub(crate) fn uid(&self) -> Option<&str> {
        match self {
            Request::Sockets { uid, .. }
            | Request::AllRooms { uid, .. }
            | Request::Join { uid, .. }
            | Request::Leave { uid, .. }
            | Request::Disconnect { uid, .. }
            | Request::JoinSocket { uid, .. }
            | Request::LeaveSocket { uid, .. }
            | Request::DisconnectSocket { uid, .. }
            | Request::Fetch { uid, .. }
            | Request::ServerSideEmit { uid, .. } => uid.as_deref(),
            Request::Broadcast { broadcast, .. } => Some(&broadcast.uid),
        }
    }

    /// The id the answers carry, if any are expected.
    pub(crate) fn request_id(&self) -> Option<&str> {
        match self {
            Request::Sockets { request_id, .. }
            | Request::AllRooms { request_id, .. }
            | Request::Fetch { request_id, .. }
            | Request::Broadcast { request_id, .. } => Some(request_id),
            Request::JoinSocket { request_id, .. }
            | Request::LeaveSocket { request_id, .. }
            | Request::DisconnectSocket { request_id, .. }
            | Request::ServerSideEmit { request_id, .. } => request_id.as_deref(),
            Request::Join { .. } | Request::Leave { .. } | Request::Disconnect { .. } => None,
        }
    }

    pub(crate) fn request_type(&self) -> RequestType {
        match self {
            Request::Sockets { .. } => RequestType::Sockets,
            Request::AllRooms { .. } => RequestType::AllRooms,
            Request::Join { .. } | Request::JoinSocket { .. } => RequestType::RemoteJoin,
            Request::Leave { .. } | Request::LeaveSocket { .. } => RequestType::RemoteLeave,
            Request::Disconnect { .. } | Request::DisconnectSocket { .. } => {
                RequestType::RemoteDisconnect
            }
            Request::Fetch { .. } => RequestType::RemoteFetch,
            Request::ServerSideEmit { .. } => RequestType::ServerSideEmit,
            Request::Broadcast { .. } => RequestType::Broadcast,
        }
    }
}

/// A socket as fetchSockets returns it from another node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RemoteSocket {
    pub(crate) id: String,
    /// socket.io's handshake object (`headers`, `time`, `address`,
    /// `xdomain`, `secure`, `issued`, `url`, `query`, `auth`), as JSON.
    pub(crate) handshake: Json,
    pub(crate) rooms: Vec<String>,
    /// `socket.data`; absent when `undefined` in Node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Json>,
}

/// An answer on the response channel. Node tells them apart by the
/// request they answer (looked up by `requestId`); without that context
/// [`decode_response`] goes by their fields: a `type` of 6, 8 or 9, else
/// `sockets` (ids when they are all strings, else sockets), else `rooms`,
/// else [`Response::Done`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Response {
    /// To SOCKETS: the socket ids.
    Sockets {
        request_id: String,
        sockets: Vec<String>,
    },
    /// To ALL_ROOMS.
    AllRooms {
        request_id: String,
        rooms: Vec<String>,
    },
    /// To a join, leave or disconnect of one socket.
    Done { request_id: String },
    /// To REMOTE_FETCH (also an empty answer to SOCKETS, which reads the
    /// same).
    Fetch {
        request_id: String,
        sockets: Vec<RemoteSocket>,
    },
    /// To SERVER_SIDE_EMIT: the first argument of the handler's ack (absent
    /// when `undefined`).
    ServerSideEmit {
        request_id: String,
        data: Option<Json>,
    },
    /// To BROADCAST: how many clients of the node got the packet.
    BroadcastClientCount {
        request_id: String,
        client_count: u64,
    },
    /// To BROADCAST: one client's ack. Node passes on its first argument
    /// only: `ack.args` holds it (binary as attachments), or nothing when
    /// it was `undefined`.
    BroadcastAck { request_id: String, ack: Payload },
}

impl Response {
    pub(crate) fn request_id(&self) -> &str {
        match self {
            Response::Sockets { request_id, .. }
            | Response::AllRooms { request_id, .. }
            | Response::Done { request_id }
            | Response::Fetch { request_id, .. }
            | Response::ServerSideEmit { request_id, .. }
            | Response::BroadcastClientCount { request_id, .. }
            | Response::BroadcastAck { request_id, .. } => request_id,
        }
    }
}

// ------------------------------------------------------------ decoding ---

/// A message from a broadcast channel (`<key>#<nsp>#…`): msgpack
/// `[uid, {type, data, nsp}, {rooms, except, flags}]`.
pub(crate) fn decode_broadcast(input: &Bytes) -> Result<Broadcast, WireError> {
    let Value::Array(items) = msgpack::decode(input)? else {
        return Err(WireError::Shape);
    };
    let [uid, packet, opts]: [Value; 3] = items.try_into().map_err(|_| WireError::Shape)?;
    let uid = opt_string(uid, "uid")?.unwrap_or_default();
    broadcast(uid, packet, opts)
}

/// A message from the request channel: JSON when it starts with `{`, else
/// msgpack, as Node reads it.
pub(crate) fn decode_request(input: &Bytes) -> Result<Request, WireError> {
    let mut fields = Fields::parse(input)?;
    let ty = fields
        .take("type")
        .as_u64()
        .ok_or(WireError::Field("type"))?;
    let uid = opt_string(fields.take("uid"), "uid")?;
    let request_id = opt_string(fields.take("requestId"), "requestId")?;
    let required = |id: Option<String>| id.ok_or(WireError::Field("requestId"));
    Ok(match ty {
        0 => Request::Sockets {
            uid,
            request_id: required(request_id)?,
            rooms: rooms(fields.take("rooms"), "rooms")?,
        },
        1 => Request::AllRooms {
            uid,
            request_id: required(request_id)?,
        },
        2 | 3 => {
            let opts = fields.take("opts");
            if opts.is_nullish() {
                let sid = string(fields.take("sid"), "sid")?;
                let room = room(fields.take("room")).ok_or(WireError::Field("room"))?;
                if ty == 2 {
                    Request::JoinSocket {
                        uid,
                        request_id,
                        sid,
                        room,
                    }
                } else {
                    Request::LeaveSocket {
                        uid,
                        request_id,
                        sid,
                        room,
                    }
                }
            } else {
                let target = target(opts)?;
                let rooms = rooms(fields.take("rooms"), "rooms")?;
                if ty == 2 {
                    Request::Join { uid, target, rooms }
                } else {
                    Request::Leave { uid, target, rooms }
                }
            }
        }
        4 => {
            let opts = fields.take("opts");
            let close = boolean(fields.take("close"), "close")?;
            if opts.is_nullish() {
                Request::DisconnectSocket {
                    uid,
                    request_id,
                    sid: string(fields.take("sid"), "sid")?,
                    close,
                }
            } else {
                Request::Disconnect {
                    uid,
                    target: target(opts)?,
                    close,
                }
            }
        }
        5 => Request::Fetch {
            uid,
            request_id: required(request_id)?,
            target: target(fields.take("opts"))?,
        },
        6 => Request::ServerSideEmit {
            uid,
            request_id,
            data: payload(fields.take("data"), 1)?,
        },
        7 => Request::Broadcast {
            request_id: required(request_id)?,
            broadcast: broadcast(
                uid.unwrap_or_default(),
                fields.take("packet"),
                fields.take("opts"),
            )?,
        },
        other => return Err(WireError::RequestType(other)),
    })
}

/// A message from a response channel: JSON when it starts with `{`, else
/// msgpack. See [`Response`] for how its kind is told.
pub(crate) fn decode_response(input: &Bytes) -> Result<Response, WireError> {
    let mut fields = Fields::parse(input)?;
    let request_id = string(fields.take("requestId"), "requestId")?;
    let ty = fields.take("type").as_u64();
    Ok(match ty {
        Some(6) => Response::ServerSideEmit {
            request_id,
            data: match fields.take("data") {
                Value::Undefined => None,
                data => Some(to_json(data, None, 1)?),
            },
        },
        Some(8) => Response::BroadcastClientCount {
            request_id,
            client_count: fields
                .take("clientCount")
                .as_u64()
                .ok_or(WireError::Field("clientCount"))?,
        },
        Some(9) => {
            let mut ack = Payload::new();
            match fields.take("packet") {
                Value::Undefined => {}
                arg => {
                    let arg = to_json(arg, Some(&mut ack.bins), 1)?;
                    ack.args.push(arg);
                    renumber(&mut ack);
                }
            }
            Response::BroadcastAck { request_id, ack }
        }
        _ => match fields.take("sockets") {
            Value::Undefined => match fields.take("rooms") {
                Value::Undefined => Response::Done { request_id },
                list => Response::AllRooms {
                    request_id,
                    rooms: rooms(list, "rooms")?,
                },
            },
            Value::Array(list) if !list.is_empty() && list.iter().all(|s| s.as_str().is_some()) => {
                Response::Sockets {
                    request_id,
                    sockets: list.into_iter().filter_map(into_string).collect(),
                }
            }
            Value::Array(list) => Response::Fetch {
                request_id,
                sockets: list
                    .into_iter()
                    .map(remote_socket)
                    .collect::<Result<_, _>>()?,
            },
            _ => return Err(WireError::Field("sockets")),
        },
    })
}

/// The entries of a map, read once each; a key given twice counts as its
/// last value, as in a JS object.
struct Fields(Vec<(Value, Value)>);

impl Fields {
    fn parse(input: &Bytes) -> Result<Fields, WireError> {
        let value = if input.first() == Some(&b'{') {
            json_message(input)?
        } else {
            msgpack::decode(input)?
        };
        Fields::of(value)
    }

    fn of(value: Value) -> Result<Fields, WireError> {
        match value {
            Value::Map(entries) => Ok(Fields(entries)),
            _ => Err(WireError::Shape),
        }
    }

    /// The value under `key`; [`Value::Undefined`] when there is none.
    fn take(&mut self, key: &str) -> Value {
        self.0
            .iter_mut()
            .rev()
            .find(|(k, _)| k.as_str() == Some(key))
            .map_or(Value::Undefined, |(_, v)| {
                std::mem::replace(v, Value::Undefined)
            })
    }
}

/// A JSON message as a msgpack value, so that both encodings are read by
/// one code path; bounded by the same limits.
fn json_message(input: &Bytes) -> Result<Value, WireError> {
    let limits = Limits::default();
    if input.len() > limits.max_input {
        return Err(DecodeError::TooLarge(input.len()).into());
    }
    // serde_json stops at 128 levels by itself.
    let json: Json = serde_json::from_slice(input).map_err(|_| WireError::Json)?;
    let mut items = 0;
    from_json(json, 0, &mut items, &limits)
}

fn from_json(
    json: Json,
    depth: usize,
    items: &mut usize,
    limits: &Limits,
) -> Result<Value, WireError> {
    *items += 1;
    if *items > limits.max_items {
        return Err(DecodeError::TooManyItems(limits.max_items).into());
    }
    if depth >= limits.max_depth && matches!(json, Json::Array(_) | Json::Object(_)) {
        return Err(DecodeError::TooDeep(limits.max_depth).into());
    }
    Ok(match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::UInt(u),
            (None, Some(i)) => Value::Int(i),
            _ => Value::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Str(s),
        Json::Array(items_) => Value::Array(
            items_
                .into_iter()
                .map(|v| from_json(v, depth + 1, items, limits))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| {
                    // A key counts, as in msgpack.
                    *items += 1;
                    Ok((Value::Str(k), from_json(v, depth + 1, items, limits)?))
                })
                .collect::<Result<_, WireError>>()?,
        ),
    })
}

fn broadcast(uid: String, packet: Value, opts: Value) -> Result<Broadcast, WireError> {
    let mut packet = Fields::of(packet).map_err(|_| WireError::Field("packet"))?;
    match packet.take("type").as_u64() {
        // EVENT, or BINARY_EVENT (Node itself always writes EVENT).
        Some(2 | 5) => {}
        Some(other) => return Err(WireError::PacketType(other)),
        None => return Err(WireError::Field("type")),
    }
    let nsp = opt_string(packet.take("nsp"), "nsp")?.unwrap_or_else(|| "/".to_owned());
    let data = payload(packet.take("data"), 2)?;
    let mut opts = Fields::of(opts).map_err(|_| WireError::Field("opts"))?;
    Ok(Broadcast {
        uid,
        nsp,
        data,
        rooms: rooms(opts.take("rooms"), "rooms")?,
        except: rooms(opts.take("except"), "except")?,
        flags: flags(opts.take("flags"))?,
    })
}

fn flags(value: Value) -> Result<Flags, WireError> {
    if value.is_nullish() {
        return Ok(Flags::default());
    }
    let mut fields = Fields::of(value).map_err(|_| WireError::Field("flags"))?;
    let mut flag = |name: &'static str| match fields.take(name) {
        Value::Nil | Value::Undefined => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        _ => Err(WireError::Field(name)),
    };
    let mut flags = Flags {
        volatile: flag("volatile")?,
        compress: flag("compress")?,
        local: flag("local")?,
        broadcast: flag("broadcast")?,
        binary: flag("binary")?,
        timeout: None,
    };
    flags.timeout = match fields.take("timeout") {
        Value::Nil | Value::Undefined => None,
        Value::UInt(n) => Some(n),
        Value::Int(_) => Some(0),
        Value::F64(f) if !f.is_nan() => Some(f.max(0.0) as u64),
        Value::F32(f) if !f.is_nan() => Some(f.max(0.0) as u64),
        _ => return Err(WireError::Field("timeout")),
    };
    Ok(flags)
}

fn target(value: Value) -> Result<Target, WireError> {
    let mut fields = Fields::of(value).map_err(|_| WireError::Field("opts"))?;
    Ok(Target {
        rooms: rooms(fields.take("rooms"), "rooms")?,
        except: rooms(fields.take("except"), "except")?,
    })
}

/// A list of rooms; missing or nil is none (`new Set(undefined)` in Node).
fn rooms(value: Value, field: &'static str) -> Result<Vec<String>, WireError> {
    match value {
        Value::Nil | Value::Undefined => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|r| room(r).ok_or(WireError::Field(field)))
            .collect(),
        _ => Err(WireError::Field(field)),
    }
}

/// A room: a string, or an integer (Node allows numeric rooms), as its
/// decimal text.
fn room(value: Value) -> Option<String> {
    match value {
        Value::Str(s) => Some(s),
        Value::UInt(n) => Some(n.to_string()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn into_string(value: Value) -> Option<String> {
    match value {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

fn string(value: Value, field: &'static str) -> Result<String, WireError> {
    into_string(value).ok_or(WireError::Field(field))
}

/// A string, or none for nil or a missing field.
fn opt_string(value: Value, field: &'static str) -> Result<Option<String>, WireError> {
    match value {
        Value::Nil | Value::Undefined => Ok(None),
        Value::Str(s) => Ok(Some(s)),
        _ => Err(WireError::Field(field)),
    }
}

/// A boolean; missing or nil is false.
fn boolean(value: Value, field: &'static str) -> Result<bool, WireError> {
    match value {
        Value::Nil | Value::Undefined => Ok(false),
        Value::Bool(b) => Ok(b),
        _ => Err(WireError::Field(field)),
    }
}

/// An event's data (an array at `depth` in the message), bins as
/// attachments.
fn payload(value: Value, depth: usize) -> Result<Payload, WireError> {
    let Value::Array(items) = value else {
        return Err(WireError::Field("data"));
    };
    let mut payload = Payload::new();
    payload.args.reserve(items.len());
    for item in items {
        let arg = to_json(item, Some(&mut payload.bins), depth + 1)?;
        payload.args.push(arg);
    }
    renumber(&mut payload);
    Ok(payload)
}

fn remote_socket(value: Value) -> Result<RemoteSocket, WireError> {
    let mut fields = Fields::of(value).map_err(|_| WireError::Field("sockets"))?;
    Ok(RemoteSocket {
        id: string(fields.take("id"), "id")?,
        handshake: to_json(fields.take("handshake"), None, 3)?,
        rooms: rooms(fields.take("rooms"), "rooms")?,
        data: match fields.take("data") {
            Value::Undefined => None,
            data => Some(to_json(data, None, 3)?),
        },
    })
}

/// A msgpack value as `JSON.stringify` writes what notepack.io decodes
/// (see the module docs). With `bins`, a bin becomes a placeholder and its
/// bytes an attachment; without, a bin is refused ([`WireError::Binary`]).
/// `depth` is where `value` sits in the message. Recursion is bounded by
/// the decoder's depth limit.
pub(crate) fn to_json(
    value: Value,
    mut bins: Option<&mut Vec<Bytes>>,
    depth: usize,
) -> Result<Json, WireError> {
    Ok(match value {
        Value::Nil | Value::Undefined => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::UInt(n) => Json::from(n),
        Value::Int(n) => Json::from(n),
        Value::F32(f) => number(f64::from(f)),
        Value::F64(f) => number(f),
        Value::Str(s) => Json::String(s),
        Value::Bin(b) => attach(b, bins)?,
        Value::Timestamp(t) => iso_date(t).map_or(Json::Null, Json::String),
        Value::Ext(ty, data) => {
            // `[type, bin]` is one level more than the extension took: it
            // must still decode when encoded again.
            let max_depth = Limits::default().max_depth;
            if depth >= max_depth {
                return Err(DecodeError::TooDeep(max_depth).into());
            }
            Json::Array(vec![Json::from(ty), attach(data, bins)?])
        }
        Value::Array(items) => Json::Array(
            items
                .into_iter()
                .map(|v| to_json(v, bins.as_deref_mut(), depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = key(k)?;
                if bins.is_some() && key == "_placeholder" && v == Value::Bool(true) {
                    return Err(WireError::Placeholder);
                }
                // JSON.stringify leaves out what is undefined (also when it
                // overwrote an earlier value of the same key).
                if v == Value::Undefined {
                    map.remove(&key);
                } else {
                    map.insert(key, to_json(v, bins.as_deref_mut(), depth + 1)?);
                }
            }
            Json::Object(map)
        }
    })
}

fn attach(bytes: Bytes, bins: Option<&mut Vec<Bytes>>) -> Result<Json, WireError> {
    let bins = bins.ok_or(WireError::Binary)?;
    let num = bins.len();
    bins.push(bytes);
    Ok(placeholder(num))
}

fn placeholder(num: usize) -> Json {
    let mut map = Map::new();
    map.insert("_placeholder".to_owned(), Json::Bool(true));
    map.insert("num".to_owned(), Json::from(num));
    Json::Object(map)
}

/// A map key as the JS property name it becomes.
fn key(value: Value) -> Result<String, WireError> {
    match value {
        Value::Str(s) => Ok(s),
        Value::UInt(n) => Ok(n.to_string()),
        Value::Int(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Nil => Ok("null".to_owned()),
        Value::Undefined => Ok("undefined".to_owned()),
        _ => Err(WireError::MapKey),
    }
}

/// A JS number as JSON: integral values as integers (in the range
/// [`msgpack::write_number`] writes as integers, so that they travel back
/// the same), `NaN` and `±Infinity` as `null`, as `JSON.stringify` does.
fn number(f: f64) -> Json {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if f.fract() == 0.0 && (0.0..TWO_64).contains(&f) {
        Json::from(f as u64)
    } else if f.fract() == 0.0 && (-TWO_63..0.0).contains(&f) {
        Json::from(f as i64)
    } else {
        Number::from_f64(f).map_or(Json::Null, Json::Number)
    }
}

/// Numbers the placeholders in the order serde_json walks the arguments,
/// and keeps only the attachments they refer to. Decoding numbers them in
/// wire order, which differs when a map's keys are not sorted (serde_json
/// sorts them) or repeat (the overwritten value's bin is dropped); after
/// this, a payload encodes and decodes back to itself.
pub(crate) fn renumber(payload: &mut Payload) {
    if payload.bins.is_empty() {
        return;
    }
    let old = std::mem::take(&mut payload.bins);
    for arg in &mut payload.args {
        renumber_in(arg, &old, &mut payload.bins);
    }
}

fn renumber_in(json: &mut Json, old: &[Bytes], new: &mut Vec<Bytes>) {
    match json {
        Json::Array(items) => {
            for item in items {
                renumber_in(item, old, new);
            }
        }
        Json::Object(map) => {
            if let Some(bytes) = placeholder_bytes(map, old) {
                map.insert("num".to_owned(), Json::from(new.len()));
                new.push(bytes.clone());
            } else {
                for value in map.values_mut() {
                    renumber_in(value, old, new);
                }
            }
        }
        _ => {}
    }
}

/// The attachment a placeholder object stands for, as socket.io-parser
/// reads it: `_placeholder` is `true` and `num` indexes `bins`.
fn placeholder_bytes<'a>(map: &Map<String, Json>, bins: &'a [Bytes]) -> Option<&'a Bytes> {
    if map.get("_placeholder") != Some(&Json::Bool(true)) {
        return None;
    }
    let num = map.get("num")?.as_u64()?;
    bins.get(usize::try_from(num).ok()?)
}

/// `Date.prototype.toJSON` (ISO 8601, UTC, milliseconds): `None` for an
/// invalid date (beyond ±8.64e15 ms), which JSON.stringify writes as
/// `null`. Years outside 0..=9999 take six digits and a sign, as in JS.
fn iso_date(t: Timestamp) -> Option<String> {
    const MAX_MS: i128 = 8_640_000_000_000_000;
    let ms = t.millis();
    if !(-MAX_MS..=MAX_MS).contains(&ms) {
        return None;
    }
    // In range, so it fits.
    let ms = ms as i64;
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = crate::socketio::civil_from_days(days);
    let year = match year {
        0..=9999 => format!("{year:04}"),
        y if y < 0 => format!("-{:06}", -y),
        y => format!("+{y:06}"),
    };
    Some(format!(
        "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    ))
}

// ------------------------------------------------------------ encoding ---

/// A broadcast as the Node adapter publishes it:
/// `[uid, {type: 2, data, nsp}, {rooms, except, flags}]`.
pub(crate) fn encode_broadcast(b: &Broadcast) -> Bytes {
    let mut out = BytesMut::new();
    msgpack::write_array_len(&mut out, 3);
    msgpack::write_str(&mut out, &b.uid);
    write_packet(&mut out, b);
    write_opts(&mut out, b);
    out.freeze()
}

fn write_packet(out: &mut BytesMut, b: &Broadcast) {
    msgpack::write_map_len(out, 3);
    msgpack::write_str(out, "type");
    msgpack::write_uint(out, 2);
    msgpack::write_str(out, "data");
    write_args(out, &b.data);
    msgpack::write_str(out, "nsp");
    msgpack::write_str(out, &b.nsp);
}

fn write_args(out: &mut BytesMut, data: &Payload) {
    msgpack::write_array_len(out, data.args.len());
    for arg in &data.args {
        write_json(out, arg, &data.bins);
    }
}

fn write_opts(out: &mut BytesMut, b: &Broadcast) {
    msgpack::write_map_len(out, 3);
    msgpack::write_str(out, "rooms");
    write_strings(out, &b.rooms);
    msgpack::write_str(out, "except");
    write_strings(out, &b.except);
    msgpack::write_str(out, "flags");
    let f = &b.flags;
    let bools = [
        ("volatile", f.volatile),
        ("compress", f.compress),
        ("local", f.local),
        ("broadcast", f.broadcast),
        ("binary", f.binary),
    ];
    let set = bools.iter().filter(|(_, v)| v.is_some()).count() + usize::from(f.timeout.is_some());
    msgpack::write_map_len(out, set);
    for (name, value) in bools {
        if let Some(value) = value {
            msgpack::write_str(out, name);
            msgpack::write_bool(out, value);
        }
    }
    if let Some(timeout) = f.timeout {
        msgpack::write_str(out, "timeout");
        msgpack::write_uint(out, timeout);
    }
}

fn write_strings(out: &mut BytesMut, list: &[String]) {
    msgpack::write_array_len(out, list.len());
    for s in list {
        msgpack::write_str(out, s);
    }
}

/// A JSON value as msgpack, placeholders that index `bins` as bin (a
/// placeholder that does not is written as the map it is).
pub(crate) fn write_json(out: &mut BytesMut, json: &Json, bins: &[Bytes]) {
    match json {
        Json::Null => msgpack::write_nil(out),
        Json::Bool(b) => msgpack::write_bool(out, *b),
        Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => msgpack::write_uint(out, u),
            (None, Some(i), _) => msgpack::write_int(out, i),
            (None, None, Some(f)) => msgpack::write_number(out, f),
            // Not reached without serde_json's arbitrary_precision.
            (None, None, None) => msgpack::write_nil(out),
        },
        Json::String(s) => msgpack::write_str(out, s),
        Json::Array(items) => {
            msgpack::write_array_len(out, items.len());
            for item in items {
                write_json(out, item, bins);
            }
        }
        Json::Object(map) => match placeholder_bytes(map, bins) {
            Some(bytes) => msgpack::write_bin(out, bytes),
            None => {
                msgpack::write_map_len(out, map.len());
                for (k, v) in map {
                    msgpack::write_str(out, k);
                    write_json(out, v, bins);
                }
            }
        },
    }
}

/// A JSON object written field by field, in the order Node's object
/// literals give (serde_json's own maps are sorted).
struct JsonObject(Vec<u8>);

impl JsonObject {
    fn new() -> Self {
        JsonObject(vec![b'{'])
    }

    fn field<T: Serialize + ?Sized>(mut self, key: &str, value: &T) -> Self {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        // Strings, numbers and serde_json values (no non-string keys, no
        // non-finite floats) always serialise into a Vec.
        let _ = serde_json::to_writer(&mut self.0, key);
        self.0.push(b':');
        let _ = serde_json::to_writer(&mut self.0, value);
        self
    }

    fn opt<T: Serialize + ?Sized>(self, key: &str, value: Option<&T>) -> Self {
        match value {
            Some(value) => self.field(key, value),
            None => self,
        }
    }

    fn finish(mut self) -> Bytes {
        self.0.push(b'}');
        Bytes::from(self.0)
    }
}

/// A request as Node sends it: JSON with the keys in Node's order, a
/// BROADCAST as a msgpack map. A SERVER_SIDE_EMIT whose data holds binary
/// goes as msgpack too (Node's receivers read it, keeping the bytes, where
/// Node itself would turn them into `{"type":"Buffer","data":[…]}`).
pub(crate) fn encode_request(request: &Request) -> Bytes {
    let ty = request.request_type() as u8;
    let head = |uid: &Option<String>, request_id: Option<&String>| {
        JsonObject::new()
            .opt("uid", uid.as_ref())
            .opt("requestId", request_id)
            .field("type", &ty)
    };
    match request {
        Request::Sockets {
            uid,
            request_id,
            rooms,
        } => head(uid, Some(request_id)).field("rooms", rooms).finish(),
        Request::AllRooms { uid, request_id } => head(uid, Some(request_id)).finish(),
        Request::Join { uid, target, rooms } | Request::Leave { uid, target, rooms } => {
            head(uid, None)
                .field("opts", target)
                .field("rooms", rooms)
                .finish()
        }
        Request::Disconnect { uid, target, close } => head(uid, None)
            .field("opts", target)
            .field("close", close)
            .finish(),
        Request::JoinSocket {
            uid,
            request_id,
            sid,
            room,
        }
        | Request::LeaveSocket {
            uid,
            request_id,
            sid,
            room,
        } => head(uid, request_id.as_ref())
            .field("sid", sid)
            .field("room", room)
            .finish(),
        Request::DisconnectSocket {
            uid,
            request_id,
            sid,
            close,
        } => head(uid, request_id.as_ref())
            .field("sid", sid)
            .field("close", close)
            .finish(),
        Request::Fetch {
            uid,
            request_id,
            target,
        } => head(uid, Some(request_id)).field("opts", target).finish(),
        Request::ServerSideEmit {
            uid,
            request_id,
            data,
        } if data.bins.is_empty() => head(uid, request_id.as_ref())
            .field("data", &data.args)
            .finish(),
        Request::ServerSideEmit {
            uid,
            request_id,
            data,
        } => {
            let mut out = BytesMut::new();
            let len = 2 + usize::from(uid.is_some()) + usize::from(request_id.is_some());
            msgpack::write_map_len(&mut out, len);
            for (key, value) in [("uid", uid), ("requestId", request_id)] {
                if let Some(value) = value {
                    msgpack::write_str(&mut out, key);
                    msgpack::write_str(&mut out, value);
                }
            }
            msgpack::write_str(&mut out, "type");
            msgpack::write_uint(&mut out, u64::from(ty));
            msgpack::write_str(&mut out, "data");
            write_args(&mut out, data);
            out.freeze()
        }
        Request::Broadcast {
            request_id,
            broadcast,
        } => {
            let mut out = BytesMut::new();
            msgpack::write_map_len(&mut out, 5);
            msgpack::write_str(&mut out, "uid");
            msgpack::write_str(&mut out, &broadcast.uid);
            msgpack::write_str(&mut out, "requestId");
            msgpack::write_str(&mut out, request_id);
            msgpack::write_str(&mut out, "type");
            msgpack::write_uint(&mut out, u64::from(ty));
            msgpack::write_str(&mut out, "packet");
            write_packet(&mut out, broadcast);
            msgpack::write_str(&mut out, "opts");
            write_opts(&mut out, broadcast);
            out.freeze()
        }
    }
}

/// A response as Node sends it: JSON with the keys in Node's order, a
/// BROADCAST_ACK as a msgpack map.
pub(crate) fn encode_response(response: &Response) -> Bytes {
    match response {
        Response::Sockets {
            request_id,
            sockets,
        } => JsonObject::new()
            .field("requestId", request_id)
            .field("sockets", sockets)
            .finish(),
        Response::AllRooms { request_id, rooms } => JsonObject::new()
            .field("requestId", request_id)
            .field("rooms", rooms)
            .finish(),
        Response::Done { request_id } => JsonObject::new().field("requestId", request_id).finish(),
        Response::Fetch {
            request_id,
            sockets,
        } => JsonObject::new()
            .field("requestId", request_id)
            .field("sockets", sockets)
            .finish(),
        Response::ServerSideEmit { request_id, data } => JsonObject::new()
            .field("type", &(RequestType::ServerSideEmit as u8))
            .field("requestId", request_id)
            .opt("data", data.as_ref())
            .finish(),
        Response::BroadcastClientCount {
            request_id,
            client_count,
        } => JsonObject::new()
            .field("type", &(RequestType::BroadcastClientCount as u8))
            .field("requestId", request_id)
            .field("clientCount", client_count)
            .finish(),
        Response::BroadcastAck { request_id, ack } => {
            let mut out = BytesMut::new();
            let arg = ack.args.first();
            msgpack::write_map_len(&mut out, 2 + usize::from(arg.is_some()));
            msgpack::write_str(&mut out, "type");
            msgpack::write_uint(&mut out, RequestType::BroadcastAck as u64);
            msgpack::write_str(&mut out, "requestId");
            msgpack::write_str(&mut out, request_id);
            if let Some(arg) = arg {
                msgpack::write_str(&mut out, "packet");
                write_json(&mut out, arg, &ack.bins);
            }
            out.freeze()
        }
    }
}

/// Runs every decoder of this module and [`msgpack`] on `input`, and
/// checks that what decodes encodes to bytes that decode to the same value
/// (msgpack values: to the same bytes again, as `NaN` is not equal to
/// itself). Panics otherwise. For the `bus_decode` fuzz target and the
/// tests; the round trip holds for input well within [`Limits`] (an
/// extension or a date takes more room as JSON than as msgpack).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn check_round_trips(input: &[u8]) {
    let input = Bytes::copy_from_slice(input);
    if let Ok(value) = msgpack::decode(&input) {
        let once = msgpack::to_bytes(&value);
        match msgpack::decode(&once) {
            Ok(again) => assert_eq!(msgpack::to_bytes(&again), once, "{value:?}"),
            Err(e) => panic!("{value:?} encoded as {once:02x?} does not decode: {e}"),
        }
    }
    if let Ok(b) = decode_broadcast(&input) {
        let encoded = encode_broadcast(&b);
        assert_eq!(
            decode_broadcast(&encoded).as_ref(),
            Ok(&b),
            "{encoded:02x?}"
        );
    }
    if let Ok(r) = decode_request(&input) {
        let encoded = encode_request(&r);
        assert_eq!(decode_request(&encoded).as_ref(), Ok(&r), "{encoded:02x?}");
    }
    if let Ok(r) = decode_response(&input) {
        let encoded = encode_response(&r);
        assert_eq!(decode_response(&encoded).as_ref(), Ok(&r), "{encoded:02x?}");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cluster::msgpack::tests::hex;

    /// One file of `tests/fixtures/cluster/`, written by
    /// `tests/node/cluster-fixtures.mjs` from the real Node packages.
    struct Fixture {
        /// (channel, bytes) as published, in order.
        messages: Vec<(String, Bytes)>,
        /// For a broadcast: the socket.io packet text Node's own clients get,
        /// and its attachments.
        client: Option<(String, Vec<Bytes>)>,
    }

    fn fixture(name: &str) -> Fixture {
        let path = format!(
            "{}/tests/fixtures/cluster/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let json: Json = serde_json::from_str(&text).unwrap();
        let messages = json["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["channel"].as_str().unwrap().to_owned(),
                    hex(m["hex"].as_str().unwrap()),
                )
            })
            .collect();
        let client = json.get("client").map(|c| {
            (
                c["text"].as_str().unwrap().to_owned(),
                c["attachments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| hex(a.as_str().unwrap()))
                    .collect(),
            )
        });
        Fixture { messages, client }
    }

    /// The single message of a fixture.
    fn single(name: &str) -> (String, Bytes, Fixture) {
        let f = fixture(name);
        assert_eq!(f.messages.len(), 1, "{name}");
        let (channel, bytes) = f.messages[0].clone();
        (channel, bytes, f)
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The socket.io packet socketgate sends its clients for `b`, written
    /// as socket.io-parser writes it: type, attachment count, namespace,
    /// JSON data.
    fn client_text(b: &Broadcast) -> String {
        let mut text = String::new();
        if b.data.bins.is_empty() {
            text.push('2');
        } else {
            text.push_str(&format!("5{}-", b.data.bins.len()));
        }
        if b.nsp != "/" {
            text.push_str(&format!("{},", b.nsp));
        }
        text + &serde_json::to_string(&b.data.args).unwrap()
    }

    /// Decodes a broadcast fixture, checks the channel, what clients get,
    /// and that it encodes back: byte for byte when `exact` (the adapter's
    /// key order), else to an equal broadcast.
    fn broadcast_fixture(name: &str, exact: bool) -> Broadcast {
        let (channel, bytes, f) = single(name);
        let b = decode_broadcast(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(b.channel(DEFAULT_KEY), channel, "{name}");
        let (text, attachments) = f.client.unwrap();
        assert_eq!(client_text(&b), text, "{name}");
        assert_eq!(b.data.bins, attachments, "{name}");
        let encoded = encode_broadcast(&b);
        if exact {
            assert_eq!(encoded, bytes, "{name}");
        }
        assert_eq!(decode_broadcast(&encoded), Ok(b.clone()), "{name}");
        b
    }

    #[test]
    fn node_broadcasts() {
        let b = broadcast_fixture("adapter-emit", true);
        assert_eq!(b.uid, "node01");
        assert_eq!(b.nsp, "/");
        assert_eq!(b.event(), Some("hello"));
        assert_eq!(
            b.data.args,
            [
                json!("hello"),
                json!("world"),
                json!(1),
                json!(2.5),
                json!(-3),
                json!(true),
                json!(null),
                json!({"a": 1, "b": [1, 2]})
            ]
        );
        assert!(b.rooms.is_empty() && b.except.is_empty());
        assert_eq!(b.flags, Flags::default());

        let b = broadcast_fixture("adapter-room-binary", true);
        assert_eq!(b.rooms, ["r1"]);
        assert_eq!(b.except, ["r2"]);
        assert_eq!(
            b.data.bins,
            [hex("010203"), hex("0405"), hex("0607"), hex("08")]
        );
        assert_eq!(
            b.data.args[2],
            json!({"file": {"_placeholder": true, "num": 1}, "name": "f"})
        );

        let b = broadcast_fixture("adapter-two-rooms", true);
        assert_eq!(b.rooms, ["r1", "r2"]);

        let b = broadcast_fixture("adapter-volatile-compress", true);
        assert_eq!(
            b.flags,
            Flags {
                volatile: Some(true),
                compress: Some(false),
                ..Flags::default()
            }
        );

        let b = broadcast_fixture("adapter-namespace", true);
        assert_eq!(b.nsp, "/admin");

        assert!(fixture("adapter-local").messages.is_empty());
    }

    #[test]
    fn node_values_as_json() {
        // Dates, undefined, NaN and Infinity do not travel back as they came.
        let b = broadcast_fixture("adapter-values", false);
        assert_eq!(
            b.data.args[1..],
            [
                json!("2023-11-14T22:13:20.000Z"),
                json!("2024-01-02T03:04:05.678Z"),
                json!("1969-12-31T23:59:59.999Z"),
                json!(null),
                json!(null),
                json!(null),
                json!(1_099_511_627_776u64),
                json!(-1_099_511_627_776i64),
                json!(0.1),
                json!(0),
                json!(255),
                json!(-129),
                json!("é✓🎉"),
                json!("x".repeat(40)),
                json!({"k": 1}),
                json!([null]),
            ]
        );
    }

    #[test]
    fn emitter_broadcasts() {
        let b = broadcast_fixture("emitter-emit", false);
        assert_eq!(b.uid, EMITTER_UID);
        assert_eq!(b.data.bins, [hex("01")]);
        let b = broadcast_fixture("emitter-room-volatile", false);
        assert_eq!(b.uid, EMITTER_UID);
        assert_eq!(b.nsp, "/admin");
        assert_eq!((b.rooms, b.except), (strings(&["r1"]), strings(&["r2"])));
        assert_eq!(b.flags.volatile, Some(true));
        assert_eq!(b.data.args, [json!("ev"), json!({"a": [1, "b"]})]);
    }

    #[test]
    fn legacy_notepack_values() {
        let b = broadcast_fixture("legacy-notepack", false);
        assert_eq!(
            b.data.args,
            [
                json!("legacy"),
                json!(null),
                json!("2024-01-02T03:04:05.678Z"),
                json!({"_placeholder": true, "num": 0}),
                json!([5, {"_placeholder": true, "num": 1}]),
                json!("2024-01-01T00:00:00.000Z"),
            ]
        );
        assert_eq!(b.data.bins, [hex("010203"), hex("aa")]);
    }

    /// Decodes a request fixture, checks its channel, and that it encodes
    /// back byte for byte.
    fn request_fixture(name: &str) -> Request {
        let (channel, bytes, _) = single(name);
        assert_eq!(channel, request_channel(DEFAULT_KEY, "/"), "{name}");
        let r = decode_request(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            encode_request(&r),
            bytes,
            "{name}: {}",
            String::from_utf8_lossy(&encode_request(&r))
        );
        r
    }

    #[test]
    fn node_requests() {
        let uid = Some("node01".to_owned());
        let r1 = Target {
            rooms: strings(&["r1"]),
            except: vec![],
        };
        let Request::Broadcast {
            request_id,
            broadcast,
        } = request_fixture("adapter-broadcast-ack")
        else {
            panic!("a broadcast request expected")
        };
        assert_eq!(request_id, "req001");
        assert_eq!(broadcast.uid, "node01");
        assert_eq!(broadcast.rooms, ["r1"]);
        assert_eq!(broadcast.flags.timeout, Some(1000));
        assert_eq!(broadcast.data.args[..2], [json!("ask"), json!("q")]);
        assert_eq!(broadcast.data.bins, [hex("09")]);

        assert_eq!(
            request_fixture("adapter-fetch-sockets"),
            Request::Fetch {
                uid: uid.clone(),
                request_id: "req002".into(),
                target: Target {
                    rooms: strings(&["r1"]),
                    except: strings(&["r2"]),
                },
            }
        );
        assert_eq!(
            request_fixture("adapter-all-rooms"),
            Request::AllRooms {
                uid: uid.clone(),
                request_id: "req003".into()
            }
        );
        assert_eq!(
            request_fixture("adapter-sockets-join"),
            Request::Join {
                uid: uid.clone(),
                target: r1.clone(),
                rooms: strings(&["r3", "r4"]),
            }
        );
        assert_eq!(
            request_fixture("adapter-sockets-leave"),
            Request::Leave {
                uid: uid.clone(),
                target: Target {
                    rooms: vec![],
                    except: strings(&["r2"]),
                },
                rooms: strings(&["r3"]),
            }
        );
        assert_eq!(
            request_fixture("adapter-disconnect-sockets"),
            Request::Disconnect {
                uid: uid.clone(),
                target: r1.clone(),
                close: true,
            }
        );
        assert_eq!(
            request_fixture("adapter-server-side-emit"),
            Request::ServerSideEmit {
                uid: uid.clone(),
                request_id: None,
                data: Payload::new().arg("sse").arg(1).arg(json!({"a": "b"})),
            }
        );
        let r = request_fixture("adapter-server-side-emit-ack");
        assert_eq!(r.request_id(), Some("req004"));
        assert_eq!(r.uid(), Some("node01"));
    }

    #[test]
    fn emitter_requests() {
        assert_eq!(
            request_fixture("emitter-sockets-join"),
            Request::Join {
                uid: None,
                target: Target {
                    rooms: strings(&["r1"]),
                    except: vec![],
                },
                rooms: strings(&["r3"]),
            }
        );
        assert_eq!(
            request_fixture("emitter-sockets-leave"),
            Request::Leave {
                uid: None,
                target: Target {
                    rooms: vec![],
                    except: strings(&["r2"]),
                },
                rooms: strings(&["r3", "r4"]),
            }
        );
        assert_eq!(
            request_fixture("emitter-disconnect-sockets"),
            Request::Disconnect {
                uid: None,
                target: Target {
                    rooms: strings(&["r1"]),
                    except: vec![],
                },
                close: false,
            }
        );
        assert_eq!(
            request_fixture("emitter-server-side-emit"),
            Request::ServerSideEmit {
                uid: Some(EMITTER_UID.into()),
                request_id: None,
                data: Payload::new().arg("sse").arg("x").arg(1),
            }
        );
    }

    /// Decodes the responses of a fixture; each encodes back byte for byte
    /// unless it holds a JSON object with unsorted keys (`exact` false).
    fn response_fixture(name: &str, exact: bool) -> Vec<Response> {
        fixture(name)
            .messages
            .into_iter()
            .map(|(channel, bytes)| {
                assert_eq!(channel, response_channel(DEFAULT_KEY, "/"), "{name}");
                let r = decode_response(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                let encoded = encode_response(&r);
                if exact {
                    assert_eq!(encoded, bytes, "{name}");
                }
                assert_eq!(decode_response(&encoded).as_ref(), Ok(&r), "{name}");
                r
            })
            .collect()
    }

    #[test]
    fn node_responses() {
        assert_eq!(
            response_fixture("response-all-rooms", true),
            [Response::AllRooms {
                request_id: "req101".into(),
                rooms: strings(&["sid1", "r1"]),
            }]
        );
        assert_eq!(
            response_fixture("response-sockets", true),
            [Response::Sockets {
                request_id: "req103".into(),
                sockets: strings(&["sid1"]),
            }]
        );
        assert_eq!(
            response_fixture("response-remote-join", true),
            [Response::Done {
                request_id: "req104".into()
            }]
        );
        assert_eq!(
            response_fixture("response-server-side-emit", true),
            [Response::ServerSideEmit {
                request_id: "req105".into(),
                data: Some(json!({"ok": true})),
            }]
        );
        assert_eq!(
            response_fixture("response-broadcast-ack", true),
            [
                Response::BroadcastClientCount {
                    request_id: "req106".into(),
                    client_count: 1,
                },
                Response::BroadcastAck {
                    request_id: "req106".into(),
                    ack: Payload {
                        args: vec![json!({
                            "answer": "yes",
                            "raw": {"_placeholder": true, "num": 0}
                        })],
                        bins: vec![hex("07")],
                    },
                },
            ]
        );
        // The handshake's keys are in socket.io's order, not sorted.
        let [
            Response::Fetch {
                request_id,
                sockets,
            },
        ] = &response_fixture("response-fetch-sockets", false)[..]
        else {
            panic!("a fetch response expected")
        };
        assert_eq!(request_id, "req102");
        assert_eq!(sockets.len(), 1);
        let s = &sockets[0];
        assert_eq!(s.id, "sid1");
        assert_eq!(s.rooms, ["sid1", "r1"]);
        assert_eq!(s.data, Some(json!({"user": "u1"})));
        assert_eq!(s.handshake["issued"], json!(1_704_164_645_678u64));
        assert_eq!(s.handshake["query"]["EIO"], "4");
        assert_eq!(s.handshake["auth"], json!({"token": "t"}));
    }

    #[test]
    fn requests_and_responses_round_trip() {
        let target = Target {
            rooms: strings(&["a"]),
            except: strings(&["b"]),
        };
        let uid = Some("n1".to_owned());
        let requests = [
            Request::Sockets {
                uid: uid.clone(),
                request_id: "r".into(),
                rooms: strings(&["a"]),
            },
            Request::JoinSocket {
                uid: uid.clone(),
                request_id: Some("r".into()),
                sid: "s".into(),
                room: "a".into(),
            },
            Request::LeaveSocket {
                uid: None,
                request_id: None,
                sid: "s".into(),
                room: "a".into(),
            },
            Request::DisconnectSocket {
                uid: uid.clone(),
                request_id: Some("r".into()),
                sid: "s".into(),
                close: true,
            },
            Request::Disconnect {
                uid: None,
                target: target.clone(),
                close: false,
            },
            Request::ServerSideEmit {
                uid: uid.clone(),
                request_id: Some("r".into()),
                data: Payload::new().arg("ev").bin(vec![1u8, 2]),
            },
        ];
        for r in requests {
            assert_eq!(decode_request(&encode_request(&r)), Ok(r));
        }
        assert_eq!(
            encode_request(&Request::JoinSocket {
                uid: uid.clone(),
                request_id: Some("r".into()),
                sid: "s".into(),
                room: "a".into(),
            }),
            r#"{"uid":"n1","requestId":"r","type":2,"sid":"s","room":"a"}"#
        );
        // Binary in a server-side emit goes as msgpack.
        let r = encode_request(&Request::ServerSideEmit {
            uid: None,
            request_id: None,
            data: Payload::new().arg("ev").bin(vec![1u8]),
        });
        assert_eq!(r, hex("82 a4 74797065 06 a4 64617461 92 a2 6576 c4 01 01"));
        let responses = [
            Response::Fetch {
                request_id: "r".into(),
                sockets: vec![RemoteSocket {
                    id: "s".into(),
                    handshake: json!({"auth": {}}),
                    rooms: vec![],
                    data: None,
                }],
            },
            Response::Fetch {
                request_id: "r".into(),
                sockets: vec![],
            },
            Response::ServerSideEmit {
                request_id: "r".into(),
                data: None,
            },
            Response::BroadcastAck {
                request_id: "r".into(),
                ack: Payload::new(),
            },
        ];
        for r in responses {
            assert_eq!(decode_response(&encode_response(&r)), Ok(r));
        }
    }

    #[test]
    fn values_as_javascript_sees_them() {
        let data = |hex_data: &str| {
            let msg = format!("93 a1 75 82 a4 74797065 02 a4 64617461 {hex_data} 80");
            decode_broadcast(&hex(&msg)).map(|b| b.data)
        };
        // Keys: numbers, booleans and nil as their JS text; undefined
        // values left out.
        assert_eq!(
            data("91 84 01 a1 61 c3 02 c0 03 a1 78 d4 00 00")
                .unwrap()
                .args,
            [json!({"1": "a", "true": 2, "null": 3})]
        );
        assert_eq!(data("91 81 cb 3ff8000000000000 01"), Err(WireError::MapKey));
        assert_eq!(data("91 81 90 01"), Err(WireError::MapKey));
        // A map posing as a placeholder.
        assert_eq!(
            data("91 82 ac 5f706c616365686f6c646572 c3 a3 6e756d 00"),
            Err(WireError::Placeholder)
        );
        // An extension becomes `[type, bin]`, one level deeper: refused
        // where that level would be past the limit.
        assert!(data(&format!("{}d4 05 aa", "91".repeat(124))).is_ok());
        assert_eq!(
            data(&format!("{}d4 05 aa", "91".repeat(125))),
            Err(WireError::Msgpack(DecodeError::TooDeep(127)))
        );
        // float 32 and integral floats.
        assert_eq!(
            data("93 ca 3fc00000 cb 4000000000000000 cb 8000000000000000")
                .unwrap()
                .args,
            [json!(1.5), json!(2), json!(0)]
        );
        // Bins anywhere, numbered as serde_json walks the (sorted) keys,
        // the overwritten one of a repeated key dropped.
        let p = data("91 83 a1 62 c4 01 0b a1 61 c4 01 0a a1 62 c4 01 0c").unwrap();
        assert_eq!(
            p.args,
            [json!({"a": {"_placeholder": true, "num": 0}, "b": {"_placeholder": true, "num": 1}})]
        );
        assert_eq!(p.bins, [hex("0a"), hex("0c")]);
    }

    #[test]
    fn iso_dates_as_javascript_writes_them() {
        let iso = |ms: i64| iso_date(Timestamp::from_millis(ms));
        // Expected values from Node's JSON.stringify(new Date(ms)).
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (253_402_300_800_000, "+010000-01-01T00:00:00.000Z"),
            (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
            (-62_167_219_200_001, "-000001-12-31T23:59:59.999Z"),
            (8_640_000_000_000_000, "+275760-09-13T00:00:00.000Z"),
            (-8_640_000_000_000_000, "-271821-04-20T00:00:00.000Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(iso(*ms).as_deref(), Some(*want), "{ms}");
        }
        assert_eq!(iso(8_640_000_000_000_001), None);
        // Sub-millisecond parts are cut toward zero, as Date does: -0.5 ms
        // is the epoch, -1.5 ms one millisecond before.
        let t = |secs, nanos| iso_date(Timestamp { secs, nanos });
        assert_eq!(
            t(-1, 999_500_000).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(
            t(-1, 998_500_000).as_deref(),
            Some("1969-12-31T23:59:59.999Z")
        );
        assert_eq!(t(0, 1_999_999).as_deref(), Some("1970-01-01T00:00:00.001Z"));
        assert_eq!(
            iso_date(Timestamp {
                secs: i64::MAX,
                nanos: 0
            }),
            None
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        let b = |s: &str| decode_broadcast(&hex(s));
        assert_eq!(b("c0"), Err(WireError::Shape));
        assert_eq!(b("92 a1 75 80"), Err(WireError::Shape));
        assert_eq!(b("93 a1 75 c0 80"), Err(WireError::Field("packet")));
        assert_eq!(
            b("93 a1 75 82 a4 74797065 00 a4 64617461 90 80"),
            Err(WireError::PacketType(0))
        );
        assert_eq!(
            b("93 a1 75 81 a4 74797065 02 80"),
            Err(WireError::Field("data"))
        );
        assert_eq!(
            b("93 a1 75 82 a4 74797065 02 a4 64617461 90 c0"),
            Err(WireError::Field("opts"))
        );
        assert_eq!(
            b("93 a1 75 82 a4 74797065 02 a4 64617461 90 81 a5 726f6f6d73 91 c3"),
            Err(WireError::Field("rooms"))
        );
        assert_eq!(b("c1"), Err(WireError::Msgpack(DecodeError::Reserved)));
        // A missing nsp is "/"; a missing uid is empty; numeric rooms.
        let ok = b("93 c0 82 a4 74797065 05 a4 64617461 90 81 a5 726f6f6d73 92 01 ff").unwrap();
        assert_eq!((ok.uid.as_str(), ok.nsp.as_str()), ("", "/"));
        assert_eq!(ok.rooms, ["1", "-1"]);

        let r = |s: &str| decode_request(&Bytes::copy_from_slice(s.as_bytes()));
        assert_eq!(r("{"), Err(WireError::Json));
        assert_eq!(r("{}"), Err(WireError::Field("type")));
        assert_eq!(r(r#"{"type":12}"#), Err(WireError::RequestType(12)));
        assert_eq!(r(r#"{"type":1}"#), Err(WireError::Field("requestId")));
        assert_eq!(
            r(r#"{"type":5,"requestId":"x"}"#),
            Err(WireError::Field("opts"))
        );
        assert_eq!(
            r(r#"{"type":2,"uid":7,"requestId":"x"}"#),
            Err(WireError::Field("uid"))
        );
        assert_eq!(
            r(r#"{"type":2.0,"opts":{},"rooms":["a"]}"#),
            Ok(Request::Join {
                uid: None,
                target: Target::default(),
                rooms: strings(&["a"]),
            })
        );
        assert_eq!(decode_request(&hex("91 01")), Err(WireError::Shape));

        let resp = |s: &str| decode_response(&Bytes::copy_from_slice(s.as_bytes()));
        assert_eq!(
            resp(r#"{"sockets":[]}"#),
            Err(WireError::Field("requestId"))
        );
        assert_eq!(
            resp(r#"{"requestId":"x","sockets":[1]}"#),
            Err(WireError::Field("sockets"))
        );
        assert_eq!(
            resp(r#"{"requestId":"x","type":8}"#),
            Err(WireError::Field("clientCount"))
        );
        // Binary where Node sends JSON.
        assert_eq!(
            decode_response(&hex(
                "83 a9 72657175657374496 4 a1 78 a4 74797065 06 a4 64617461 c4 00"
            )),
            Err(WireError::Binary)
        );
        // Deep JSON stops at serde_json's limit, deep msgpack at ours.
        let deep = format!(
            r#"{{"type":6,"data":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(r(&deep), Err(WireError::Json));
    }

    /// Every fixture, and random changes to them, hold the round trip (the
    /// fuzz target's check, run here on every test run).
    #[test]
    fn fixtures_and_their_mutations_round_trip() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cluster");
        let mut inputs = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            inputs.extend(fixture(&name).messages.into_iter().map(|(_, b)| b));
        }
        assert!(inputs.len() > 20, "fixtures missing in {dir}");
        let mut rng = crate::test_rng::Rng(0xb05_dec0de);
        for input in &inputs {
            check_round_trips(input);
            for _ in 0..300 {
                let mut bytes = input.to_vec();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(bytes.len());
                    match rng.below(3) {
                        0 => bytes[at] = rng.next() as u8,
                        1 => {
                            bytes.remove(at);
                        }
                        _ => bytes.insert(at, rng.next() as u8),
                    }
                    if bytes.is_empty() {
                        break;
                    }
                }
                check_round_trips(&bytes);
            }
        }
    }
}
