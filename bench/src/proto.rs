//! The little of engine.io v4 / socket.io v5 a load client needs: the open
//! packet, polling payload splitting, and EVENT packets (`2[...]` once the
//! engine `4` is stripped), with allocation-free fast paths for the
//! payloads this tool sends itself.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

/// Engine.io separator between packets in a v4 polling payload.
pub const RECORD_SEPARATOR: u8 = 0x1e;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub sid: String,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
}

/// Parses an engine.io open packet `0{"sid":…,"pingInterval":…,…}`.
pub fn parse_open(pkt: &[u8]) -> Result<Handshake, String> {
    let body = pkt
        .strip_prefix(b"0")
        .ok_or_else(|| format!("expected an open packet, got {}", lossy(pkt)))?;
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("bad open packet {}: {e}", lossy(pkt)))?;
    let sid = v
        .get("sid")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("open packet without sid: {}", lossy(pkt)))?
        .to_string();
    let ms = |k: &str, d: u64| v.get(k).and_then(Value::as_u64).unwrap_or(d);
    Ok(Handshake {
        sid,
        ping_interval: Duration::from_millis(ms("pingInterval", 25_000)),
        ping_timeout: Duration::from_millis(ms("pingTimeout", 20_000)),
    })
}

/// Splits a v4 polling payload into its packets (zero-copy slices).
pub fn split_payload(body: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in body.iter().enumerate() {
        if *b == RECORD_SEPARATOR {
            out.push(body.slice(start..i));
            start = i + 1;
        }
    }
    if start < body.len() {
        out.push(body.slice(start..));
    }
    out
}

/// A decoded socket.io EVENT packet: its name and arguments (the
/// scenarios need nothing else).
#[derive(Debug)]
pub struct Event {
    pub name: String,
    pub args: Vec<Value>,
}

/// Decodes a socket.io v5 packet (engine `4` already stripped) if it is an
/// EVENT: `2[/nsp,][ackid][“name”,args…]`; the namespace and ack id are
/// skipped. Anything else gives `None`.
pub fn parse_event(sio: &[u8]) -> Option<Event> {
    let mut rest = sio.strip_prefix(b"2")?;
    if rest.first() == Some(&b'/') {
        let comma = rest.iter().position(|b| *b == b',')?;
        rest = &rest[comma + 1..];
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    rest = &rest[digits..];
    let mut arr: Vec<Value> = serde_json::from_slice(rest).ok()?;
    if arr.is_empty() {
        return None;
    }
    let name = match arr.remove(0) {
        Value::String(s) => s,
        _ => return None,
    };
    Some(Event { name, args: arr })
}

/// The id of a socket.io ACK packet on `/` (`3<id>[…]`, engine `4`
/// stripped), or `None` for anything else.
pub fn parse_ack(sio: &[u8]) -> Option<u64> {
    let rest = sio.strip_prefix(b"3")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 || rest.get(digits) != Some(&b'[') {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// Fast path for the payloads this tool sends: `sio` must be exactly
/// `<prefix><n0>,<n1>,…]` with `out.len()` unsigned integers. Returns
/// false when the shape differs (callers then fall back to `parse_event`).
pub fn fast_ints(sio: &[u8], prefix: &[u8], out: &mut [u64]) -> bool {
    fast_ints_tail(sio, prefix, out, false)
}

/// `fast_ints`, also accepting one trailing string argument after the
/// integers when `tail` is true (`<prefix><n0>,…,"<text>"]`, the text
/// without quotes or escapes): the offset a server with connection state
/// recovery appends to every event.
pub fn fast_ints_tail(sio: &[u8], prefix: &[u8], out: &mut [u64], tail: bool) -> bool {
    let Some(mut rest) = sio.strip_prefix(prefix) else {
        return false;
    };
    let n = out.len();
    for (i, slot) in out.iter_mut().enumerate() {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 19 {
            return false;
        }
        let mut v: u64 = 0;
        for d in &rest[..digits] {
            v = v * 10 + u64::from(d - b'0');
        }
        *slot = v;
        rest = &rest[digits..];
        if i + 1 == n && tail && rest.starts_with(b",\"") {
            // `,"<text>"]`: the text must hold no quote nor backslash.
            let text = &rest[2..];
            let Some(end) = text.iter().position(|b| *b == b'"' || *b == b'\\') else {
                return false;
            };
            return text[end] == b'"' && &text[end + 1..] == b"]";
        }
        let sep = if i + 1 == n { b']' } else { b',' };
        match rest.split_first() {
            Some((b, r)) if *b == sep => rest = r,
            _ => return false,
        }
    }
    rest.is_empty()
}

/// Fast path for an event whose one argument is a flat object, such as
/// `2["chat",{"seq":1,"t":22,"from":"x"}]`: `sio` must start with
/// `prefix` (up to and including the `{`), end with `}]`, and hold
/// `"<key>":<unsigned integer>` for every key, in any order. Returns false
/// otherwise (callers then fall back to `parse_event`).
pub fn fast_fields(sio: &[u8], prefix: &[u8], keys: &[&[u8]], out: &mut [u64]) -> bool {
    let Some(body) = sio.strip_prefix(prefix).and_then(|r| r.strip_suffix(b"}]")) else {
        return false;
    };
    for (key, slot) in keys.iter().zip(out.iter_mut()) {
        // `"key":` with the quotes, so that "t" does not match inside "seq".
        let pat_len = key.len() + 3;
        let Some(at) = body.windows(pat_len).position(|w| {
            w[0] == b'"' && &w[1..=key.len()] == *key && &w[key.len() + 1..] == b"\":"
        }) else {
            return false;
        };
        let rest = &body[at + pat_len..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 19 || !matches!(rest.get(digits), None | Some(b',')) {
            return false;
        }
        *slot = rest[..digits]
            .iter()
            .fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
    }
    true
}

/// Reads unsigned integers from an event's arguments, for the slow path.
pub fn args_u64(ev: &Event, out: &mut [u64]) -> bool {
    if ev.args.len() < out.len() {
        return false;
    }
    for (slot, v) in out.iter_mut().zip(&ev.args) {
        match v.as_u64() {
            Some(n) => *slot = n,
            None => return false,
        }
    }
    true
}

pub fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned();
    if b.len() > 200 { format!("{s}…") } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_packet() {
        let h = parse_open(
            br#"0{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#,
        )
        .unwrap();
        assert_eq!(h.sid, "abc");
        assert_eq!(h.ping_interval, Duration::from_millis(300));
        assert_eq!(h.ping_timeout, Duration::from_millis(200));
        assert!(parse_open(b"4hello").is_err());
        assert!(parse_open(b"0{}").is_err());
    }

    #[test]
    fn payload_split() {
        let b = Bytes::from_static(b"2\x1e42[\"a\"]\x1e6");
        let parts = split_payload(&b);
        assert_eq!(parts, vec![&b"2"[..], &b"42[\"a\"]"[..], &b"6"[..]]);
        assert!(split_payload(&Bytes::new()).is_empty());
    }

    #[test]
    fn events() {
        let e = parse_event(br#"2["echo",1,2,{"x":3}]"#).unwrap();
        assert_eq!(e.name, "echo");
        assert_eq!(e.args.len(), 3);
        assert_eq!(e.args[2]["x"], 3);
        let e = parse_event(br#"2/chat,12["m",4]"#).unwrap();
        assert_eq!(e.name, "m");
        assert_eq!(e.args, vec![Value::from(4)]);
        assert!(parse_event(br#"0{"sid":"x"}"#).is_none());
        assert!(parse_event(b"2[1]").is_none());
        assert!(parse_event(b"2[").is_none());
        let mut out = [0u64; 2];
        assert!(args_u64(
            &parse_event(br#"2["bcast",7,9]"#).unwrap(),
            &mut out
        ));
        assert_eq!(out, [7, 9]);
    }

    #[test]
    fn acks() {
        assert_eq!(parse_ack(br#"31["r1"]"#), Some(1));
        assert_eq!(parse_ack(br#"3120[{"id":7}]"#), Some(120));
        assert_eq!(parse_ack(br#"3["x"]"#), None);
        assert_eq!(parse_ack(br#"2["chat"]"#), None);
        assert_eq!(parse_ack(b"312"), None);
    }

    #[test]
    fn fast_object_path() {
        let mut out = [0u64; 2];
        let keys: [&[u8]; 2] = [b"seq", b"t"];
        // Node keeps insertion order, serde_json's map sorts the keys.
        assert!(fast_fields(
            br#"2["chat",{"seq":7,"t":123,"from":"a-b"}]"#,
            br#"2["chat",{"#,
            &keys,
            &mut out
        ));
        assert_eq!(out, [7, 123]);
        assert!(fast_fields(
            br#"2["chat",{"from":"x","seq":8,"t":9}]"#,
            br#"2["chat",{"#,
            &keys,
            &mut out
        ));
        assert_eq!(out, [8, 9]);
        assert!(!fast_fields(
            br#"2["chat",{"seq":8}]"#,
            br#"2["chat",{"#,
            &keys,
            &mut out
        ));
        assert!(!fast_fields(
            br#"2["chat",{"seq":-8,"t":1}]"#,
            br#"2["chat",{"#,
            &keys,
            &mut out
        ));
        assert!(!fast_fields(
            br#"2["chat",{"seq":8,"t":1.5}]"#,
            br#"2["chat",{"#,
            &keys,
            &mut out
        ));
        assert!(!fast_fields(
            br#"2["chat",{"seq":8,"t":1},2]"#,
            br#"2["chat",{"#,
            &keys,
            &mut out
        ));
        assert!(!fast_fields(
            br#"2["bcast",{"seq":8,"t":1}]"#,
            br#"2["chat",{"#,
            &keys,
            &mut out
        ));
    }

    #[test]
    fn fast_path() {
        let mut out = [0u64; 3];
        assert!(fast_ints(
            br#"2["echo",1,22,333]"#,
            br#"2["echo","#,
            &mut out
        ));
        assert_eq!(out, [1, 22, 333]);
        assert!(!fast_ints(br#"2["echo",1,22]"#, br#"2["echo","#, &mut out));
        assert!(!fast_ints(
            br#"2["echo",1,22,333,4]"#,
            br#"2["echo","#,
            &mut out
        ));
        assert!(!fast_ints(
            br#"2["echo",1, 22,333]"#,
            br#"2["echo","#,
            &mut out
        ));
        assert!(!fast_ints(
            br#"2["bcast",1,22,333]"#,
            br#"2["echo","#,
            &mut out
        ));
        assert!(!fast_ints(
            br#"2["echo",1,22,333]x"#,
            br#"2["echo","#,
            &mut out
        ));
        // A trailing offset (connection state recovery) only with `tail`.
        let with_offset = br#"2["echo",1,22,333,"1733339-0"]"#;
        assert!(!fast_ints(with_offset, br#"2["echo","#, &mut out));
        out = [0; 3];
        assert!(fast_ints_tail(with_offset, br#"2["echo","#, &mut out, true));
        assert_eq!(out, [1, 22, 333]);
        assert!(fast_ints_tail(
            br#"2["echo",1,22,333]"#,
            br#"2["echo","#,
            &mut out,
            true
        ));
        for bad in [
            &br#"2["echo",1,22,333,"a\"b"]"#[..],
            br#"2["echo",1,22,333,"a"]x"#,
            br#"2["echo",1,22,333,"a","b"]"#,
            br#"2["echo",1,22,333,"a"#,
            br#"2["echo",1,22,"a"]"#,
        ] {
            assert!(
                !fast_ints_tail(bad, br#"2["echo","#, &mut out, true),
                "{}",
                lossy(bad)
            );
        }
    }
}
