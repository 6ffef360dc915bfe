//! The API's commands, read from request JSON. Every field is checked here
//! and errors name it (`rooms[1]: …`, `commands[2].event: …`), so the
//! handlers only run well-formed commands.

use std::time::Duration;

use serde_json::{Map, Value};

use super::binary;
use super::error::ApiError;
use crate::socketio::packet::is_reserved_event;
use crate::socketio::{MAX_ROOM_NAME, Payload, Room};

/// Which sockets of which namespace a command is for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    pub(crate) namespace: String,
    /// Sockets in any of these rooms…
    pub(crate) rooms: Vec<Room>,
    /// …or with any of these ids (each socket's own room)…
    pub(crate) sockets: Vec<Room>,
    /// …minus those in any of these rooms. Everyone when `rooms` and
    /// `sockets` are both empty.
    pub(crate) except: Vec<Room>,
}

impl Target {
    pub(crate) fn selects_everyone(&self) -> bool {
        self.rooms.is_empty() && self.sockets.is_empty()
    }
}

/// `emit`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Emit {
    pub(crate) target: Target,
    pub(crate) event: String,
    pub(crate) payload: Payload,
    pub(crate) volatile: bool,
    /// Wait this long for acks; none: do not ask for them.
    pub(crate) ack_timeout: Option<Duration>,
}

/// A command of the API.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    Emit(Emit),
    /// The target's sockets join these rooms.
    Join(Target, Vec<Room>),
    /// The target's sockets leave these rooms.
    Leave(Target, Vec<Room>),
    /// The target's sockets are disconnected; with `close`, their whole
    /// connections too.
    Disconnect(Target, bool),
}

/// Bounds the commands must keep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) max_ack_timeout: Duration,
}

impl Command {
    /// The command `op` (`emit`, `join`, `leave`, `disconnect`) from a
    /// request body; `prefix` names where it sits (`commands[2]`), empty
    /// at the top.
    pub(crate) fn parse(
        op: &str,
        body: Value,
        prefix: &str,
        bounds: Bounds,
    ) -> Result<Command, ApiError> {
        let mut f = Fields::new(body, prefix)?;
        let command = match op {
            "emit" => Command::Emit(emit(&mut f, bounds)?),
            "join" => {
                let target = selection(&mut f)?;
                Command::Join(target, f.room_names("join", true)?)
            }
            "leave" => {
                let target = selection(&mut f)?;
                Command::Leave(target, f.room_names("leave", true)?)
            }
            "disconnect" => {
                let target = selection(&mut f)?;
                Command::Disconnect(target, f.bool("close")?.unwrap_or(false))
            }
            other => {
                return Err(ApiError::field(
                    &f.name("op"),
                    format!("{other:?} is not one of emit, join, leave, disconnect"),
                ));
            }
        };
        f.finish()?;
        Ok(command)
    }
}

fn emit(f: &mut Fields, bounds: Bounds) -> Result<Emit, ApiError> {
    let target = target(f)?;
    let event = f
        .string("event")?
        .ok_or_else(|| ApiError::field(&f.name("event"), "missing (the event name)"))?;
    if event.is_empty() {
        return Err(ApiError::field(&f.name("event"), "empty"));
    }
    if is_reserved_event(&event) {
        return Err(ApiError::new(
            http::StatusCode::BAD_REQUEST,
            "reserved_event",
            format!("{}: {event:?} is reserved by socket.io", f.name("event")),
        ));
    }
    let args = match f.take("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(args)) => args,
        Some(_) => {
            return Err(ApiError::field(
                &f.name("args"),
                "a list of arguments expected",
            ));
        }
    };
    let payload = binary::decode_args(args, &f.name("args"))?;
    let volatile = f.bool("volatile")?.unwrap_or(false);
    let ack_timeout = match f.u64("ack_timeout_ms")? {
        None => None,
        Some(0) => {
            return Err(ApiError::field(
                &f.name("ack_timeout_ms"),
                "must be above 0",
            ));
        }
        Some(ms) => {
            let max = bounds.max_ack_timeout.as_millis();
            if u128::from(ms) > max {
                return Err(ApiError::field(
                    &f.name("ack_timeout_ms"),
                    format!("at most {max}"),
                ));
            }
            Some(Duration::from_millis(ms))
        }
    };
    Ok(Emit {
        target,
        event,
        payload,
        volatile,
        ack_timeout,
    })
}

/// `namespace`, `rooms`, `sockets`, `except`.
fn target(f: &mut Fields) -> Result<Target, ApiError> {
    let namespace = f.string("namespace")?.unwrap_or_else(|| "/".to_owned());
    Ok(Target {
        namespace,
        rooms: f.room_names("rooms", false)?,
        sockets: f.room_names("sockets", false)?,
        except: f.room_names("except", false)?,
    })
}

/// A [`target`] for join, leave and disconnect: they change sockets, so
/// everyone is chosen on purpose only (`"all": true`), never by leaving
/// out `rooms` and `sockets`.
fn selection(f: &mut Fields) -> Result<Target, ApiError> {
    let target = target(f)?;
    let all = f.bool("all")?.unwrap_or(false);
    match (all, target.selects_everyone()) {
        (false, true) => Err(ApiError::new(
            http::StatusCode::BAD_REQUEST,
            "missing_selector",
            format!(
                "{}: give `rooms` or `sockets` (or `\"all\": true` for every socket of the namespace)",
                f.here()
            ),
        )),
        (true, false) => Err(ApiError::field(
            &f.name("all"),
            "`all` goes without `rooms` and `sockets`",
        )),
        _ => Ok(target),
    }
}

/// The fields of a JSON object, taken one by one; what is left at the end
/// is an unknown field.
struct Fields<'a> {
    map: Map<String, Value>,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    fn new(body: Value, prefix: &'a str) -> Result<Self, ApiError> {
        match body {
            Value::Object(map) => Ok(Fields { map, prefix }),
            _ => Err(ApiError::new(
                http::StatusCode::BAD_REQUEST,
                "invalid_json",
                format!(
                    "{}: a JSON object expected",
                    Fields {
                        map: Map::new(),
                        prefix
                    }
                    .here()
                ),
            )),
        }
    }

    /// Where the object is, for messages.
    fn here(&self) -> String {
        if self.prefix.is_empty() {
            "the body".to_owned()
        } else {
            self.prefix.to_owned()
        }
    }

    /// The full name of field `field`.
    fn name(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }

    fn take(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field)
    }

    fn string(&mut self, field: &str) -> Result<Option<String>, ApiError> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::field(&self.name(field), "a string expected")),
        }
    }

    fn bool(&mut self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(ApiError::field(&self.name(field), "true or false expected")),
        }
    }

    fn u64(&mut self, field: &str) -> Result<Option<u64>, ApiError> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| ApiError::field(&self.name(field), "a whole number expected")),
        }
    }

    /// A list of room names (one name alone is taken as a list of one);
    /// an empty list is refused when `required`.
    fn room_names(&mut self, field: &str, required: bool) -> Result<Vec<Room>, ApiError> {
        let name = self.name(field);
        let names = match self.take(field) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(one)) => vec![Value::String(one)],
            Some(Value::Array(list)) => list,
            Some(_) => return Err(ApiError::field(&name, "a list of room names expected")),
        };
        if required && names.is_empty() {
            return Err(ApiError::field(&name, "missing (at least one room)"));
        }
        names
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) if !s.is_empty() && s.len() <= MAX_ROOM_NAME => Ok(Room::from(s)),
                Value::String(_) => Err(ApiError::field(
                    &format!("{name}[{i}]"),
                    format!("a room name is 1 to {MAX_ROOM_NAME} bytes"),
                )),
                _ => Err(ApiError::field(
                    &format!("{name}[{i}]"),
                    "a string expected",
                )),
            })
            .collect()
    }

    /// Refuses the fields nobody took: a misspelt `romos` must not turn a
    /// message for one room into a message for everyone.
    fn finish(self) -> Result<(), ApiError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(key) => Err(ApiError::field(&self.name(key), "unknown field")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BOUNDS: Bounds = Bounds {
        max_ack_timeout: Duration::from_secs(60),
    };

    fn parse(op: &str, body: Value) -> Result<Command, ApiError> {
        Command::parse(op, body, "", BOUNDS)
    }

    #[test]
    fn emit_defaults_to_everyone_on_the_main_namespace() {
        let Command::Emit(e) = parse("emit", json!({ "event": "news" })).unwrap() else {
            panic!("an emit")
        };
        assert_eq!(e.target.namespace, "/");
        assert!(e.target.selects_everyone());
        assert_eq!(e.payload, Payload::new());
        assert!(!e.volatile);
        assert_eq!(e.ack_timeout, None);
        let Command::Emit(e) = parse(
            "emit",
            json!({ "namespace": "/chat", "rooms": ["a", "b"], "except": "c", "event": "x",
                    "args": [1, { "_base64": "AQ==" }], "volatile": true, "ack_timeout_ms": 250 }),
        )
        .unwrap() else {
            panic!("an emit")
        };
        assert_eq!(e.target.rooms, vec![Room::from("a"), Room::from("b")]);
        assert_eq!(e.target.except, vec![Room::from("c")]);
        assert_eq!(e.payload.bins.len(), 1);
        assert!(e.volatile);
        assert_eq!(e.ack_timeout, Some(Duration::from_millis(250)));
    }

    #[test]
    fn errors_name_the_field() {
        let err = |op, body| parse(op, body).unwrap_err();
        let e = err("emit", json!({}));
        assert_eq!(
            (e.code, e.message.as_str()),
            ("invalid_field", "event: missing (the event name)")
        );
        let e = err("emit", json!({ "event": "connect" }));
        assert_eq!(e.code, "reserved_event");
        let e = err("emit", json!({ "event": "x", "rooms": ["ok", 5] }));
        assert_eq!(e.message, "rooms[1]: a string expected");
        let e = err("emit", json!({ "event": "x", "romos": ["a"] }));
        assert_eq!(e.message, "romos: unknown field");
        let e = err("emit", json!({ "event": "x", "args": "one" }));
        assert_eq!(e.message, "args: a list of arguments expected");
        let e = err("emit", json!({ "event": "x", "ack_timeout_ms": 60_001 }));
        assert_eq!(e.message, "ack_timeout_ms: at most 60000");
        let e = err("emit", json!({ "event": "x", "volatile": "yes" }));
        assert_eq!(e.message, "volatile: true or false expected");
        let e = err("emit", json!([1]));
        assert_eq!(
            (e.code, e.message.as_str()),
            ("invalid_json", "the body: a JSON object expected")
        );
        let e =
            Command::parse("join", json!({ "rooms": ["a"] }), "commands[3]", BOUNDS).unwrap_err();
        assert_eq!(e.message, "commands[3].join: missing (at least one room)");
        let e = err("leave", json!({ "rooms": [""], "leave": "x" }));
        assert_eq!(e.message, "rooms[0]: a room name is 1 to 256 bytes");
    }

    #[test]
    fn room_operations_need_a_selector_or_all() {
        let e = parse("join", json!({ "join": "vip" })).unwrap_err();
        assert_eq!(e.code, "missing_selector");
        let e = parse("disconnect", json!({ "all": true, "rooms": ["a"] })).unwrap_err();
        assert_eq!(e.message, "all: `all` goes without `rooms` and `sockets`");
        assert!(matches!(
            parse("disconnect", json!({ "all": true })).unwrap(),
            Command::Disconnect(t, false) if t.selects_everyone()
        ));
        assert_eq!(
            parse("join", json!({ "sockets": "abc", "join": ["x", "y"] })).unwrap(),
            Command::Join(
                Target {
                    namespace: "/".into(),
                    rooms: vec![],
                    sockets: vec![Room::from("abc")],
                    except: vec![],
                },
                vec![Room::from("x"), Room::from("y")]
            )
        );
    }
}
