//! rust_socketio (the crates.io client, its blocking `Client`) against the
//! socketgate binary's relay, over one transport. Run by
//! `tests/third_party_clients.rs`, built by `tests/run.sh`:
//!
//! ```sh
//! socketgate-rust-client polling|websocket|upgrade http://127.0.0.1:3000
//! ```
//!
//! Checks, each with a bounded wait:
//! - `echo` with one argument, with several, and with bytes comes back as
//!   exactly that payload (`Payload::Text` with every argument, or
//!   `Payload::Binary`); the first one is sent before the CONNECT answer
//!   arrives (`connect()` returns before it);
//! - `emit_with_ack` gets the arguments back as the ack (JSON only:
//!   rust_socketio sends a binary one as BINARY_ACK, which servers drop);
//! - `join` acks with the room; a `chat` to "room-x" reaches both members
//!   with the sender's socket id in `from`, and not a client outside the
//!   room: that one gets a later `chat` to everyone (the marker) first,
//!   which it could only get after the room message.
//!
//! Prints one JSON line, `{"ok":true,…}` or `{"ok":false,"error":…}`, and
//! exits 0 or 1. A watchdog ends the process when anything hangs.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use rust_socketio::client::Client;
use rust_socketio::{ClientBuilder, Payload, RawClient, TransportType};
use serde_json::{Value, json};

/// How long any one thing may take to arrive.
const WAIT: Duration = Duration::from_secs(5);
/// How long the whole run may take.
const WATCHDOG: Duration = Duration::from_secs(45);

/// What a client's callbacks saw, in the order they ran.
#[derive(Debug)]
enum Got {
    Open,
    Echo(Payload),
    Chat(Payload),
    Ack(Payload),
    Error(String),
}

struct Peer {
    name: &'static str,
    client: Client,
    tx: Sender<Got>,
    inbox: Receiver<Got>,
}

impl Peer {
    fn connect(url: &str, transport: TransportType, name: &'static str) -> Result<Peer, String> {
        let (tx, inbox) = channel();
        let forward = |tx: &Sender<Got>, wrap: fn(Payload) -> Got| {
            let tx = tx.clone();
            move |payload: Payload, _: RawClient| {
                let _ = tx.send(wrap(payload));
            }
        };
        let client = ClientBuilder::new(url)
            .transport_type(transport)
            .reconnect(false)
            .on("open", forward(&tx, |_| Got::Open))
            .on("echo", forward(&tx, Got::Echo))
            .on("chat", forward(&tx, Got::Chat))
            .on("error", forward(&tx, |p| Got::Error(format!("{p:?}"))))
            .connect()
            .map_err(|e| format!("{name}: connect: {e}"))?;
        Ok(Peer {
            name,
            client,
            tx,
            inbox,
        })
    }

    fn next(&self, what: &str) -> Result<Got, String> {
        match self.inbox.recv_timeout(WAIT) {
            Ok(Got::Error(e)) => Err(format!(
                "{}: error while waiting for {what}: {e}",
                self.name
            )),
            Ok(got) => Ok(got),
            Err(RecvTimeoutError::Timeout) => {
                Err(format!("{}: no {what} within {WAIT:?}", self.name))
            }
            Err(RecvTimeoutError::Disconnected) => unreachable!("the peer holds a sender"),
        }
    }

    fn opened(&self) -> Result<(), String> {
        match self.next("the CONNECT answer")? {
            Got::Open => Ok(()),
            other => Err(format!(
                "{}: expected the CONNECT answer first, got {other:?}",
                self.name
            )),
        }
    }

    fn echo(&self, expected: &Payload) -> Result<(), String> {
        match self.next("echo")? {
            Got::Echo(p) if &p == expected => Ok(()),
            other => Err(format!(
                "{}: expected echo {expected:?}, got {other:?}",
                self.name
            )),
        }
    }

    fn chat(&self, expected: &Value) -> Result<(), String> {
        let expected = Payload::Text(vec![expected.clone()]);
        match self.next("chat")? {
            Got::Chat(p) if p == expected => Ok(()),
            other => Err(format!(
                "{}: expected chat {expected:?}, got {other:?}",
                self.name
            )),
        }
    }

    fn emit(&self, event: &str, data: impl Into<Payload>) -> Result<(), String> {
        self.client
            .emit(event, data)
            .map_err(|e| format!("{}: emit {event}: {e}", self.name))
    }

    /// Emits with an ack request; the ack lands in the inbox as [`Got::Ack`].
    fn emit_with_ack(&self, event: &str, data: impl Into<Payload>) -> Result<(), String> {
        let tx = self.tx.clone();
        self.client
            .emit_with_ack(event, data, WAIT, move |p, _| {
                let _ = tx.send(Got::Ack(p));
            })
            .map_err(|e| format!("{}: emit {event} with ack: {e}", self.name))
    }
}

fn run(url: &str, transport: fn() -> TransportType) -> Result<Value, String> {
    let a = Peer::connect(url, transport(), "a")?;
    // connect() has not waited for the CONNECT answer: this echo goes out
    // before the namespace is joined, and the gateway must keep it.
    let one = Payload::Text(vec![json!("a")]);
    a.emit("echo", one.clone())?;
    a.opened()?;
    a.echo(&one)?;

    let several = Payload::Text(vec![json!(1), json!("two"), json!({"three": 3})]);
    a.emit("echo", several.clone())?;
    a.echo(&several)?;

    let bytes = Payload::from(vec![0u8, 1, 0xff]);
    a.emit("echo", bytes.clone())?;
    a.echo(&bytes)?;

    // The relay emits `echo` back and acks: both must carry the arguments.
    // rust_socketio hands an ack's arguments to the callback as one JSON array.
    let args = vec![json!("a"), json!(2), json!({"b": [true, null]})];
    let (acked, ack) = (
        Payload::Text(args.clone()),
        Payload::Text(vec![Value::Array(args)]),
    );
    a.emit_with_ack("echo", acked.clone())?;
    match (a.next("echo and its ack")?, a.next("echo and its ack")?) {
        (Got::Echo(e), Got::Ack(k)) | (Got::Ack(k), Got::Echo(e)) if e == acked && k == ack => {}
        other => {
            return Err(format!(
                "a: expected echo {acked:?} and ack {ack:?}, got {other:?}"
            ));
        }
    }

    let b = Peer::connect(url, transport(), "b")?;
    let c = Peer::connect(url, transport(), "c")?;
    b.opened()?;
    c.opened()?;
    for p in [&a, &b] {
        p.emit_with_ack("join", json!("room-x"))?;
        match p.next("the join ack")? {
            Got::Ack(Payload::Text(v)) if v == [json!(["room-x"])] => {}
            other => {
                return Err(format!(
                    "{}: expected join ack [[\"room-x\"]], got {other:?}",
                    p.name
                ));
            }
        }
    }
    a.emit("chat", json!({"room": "room-x", "text": "hello room-x"}))?;
    a.emit("chat", json!({"text": "marker"}))?;
    // rust_socketio does not expose its socket id: take it from a's own copy
    // of the room message, and require the same everywhere.
    let first = match a.next("chat")? {
        Got::Chat(Payload::Text(v)) if v.len() == 1 => v[0].clone(),
        other => return Err(format!("a: expected its room chat, got {other:?}")),
    };
    let sid = first["from"].clone();
    let room_msg = json!({"room": "room-x", "text": "hello room-x", "from": sid});
    if sid.as_str().is_none_or(str::is_empty) || first != room_msg {
        return Err(format!(
            "a: expected its room chat from its socket id, got {first}"
        ));
    }
    let marker = json!({"text": "marker", "from": sid});
    a.chat(&marker)?;
    b.chat(&room_msg)?;
    b.chat(&marker)?;
    c.chat(&marker)?;

    for p in [&a, &b, &c] {
        let _ = p.client.disconnect();
    }
    Ok(json!({"sid": sid}))
}

fn verdict(ok: bool, mode: &str, fields: Value) -> ! {
    let mut line = json!({"ok": ok, "client": "rust_socketio 0.6", "transport": mode});
    if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
        line.extend(fields);
    }
    println!("{line}");
    // rust_socketio's threads keep polling after a disconnect: do not wait for them.
    std::process::exit(if ok { 0 } else { 1 });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, mode) = match &args[..] {
        [_, mode, url] => (url.clone(), mode.clone()),
        _ => {
            eprintln!("usage: socketgate-rust-client polling|websocket|upgrade URL");
            std::process::exit(2);
        }
    };
    let transport: fn() -> TransportType = match mode.as_str() {
        "polling" => || TransportType::Polling,
        "websocket" => || TransportType::Websocket,
        "upgrade" => || TransportType::WebsocketUpgrade,
        _ => {
            eprintln!("unknown transport {mode:?}: polling, websocket or upgrade");
            std::process::exit(2);
        }
    };
    let watchdog_mode = mode.clone();
    std::thread::spawn(move || {
        std::thread::sleep(WATCHDOG);
        let error = format!("watchdog: still running after {WATCHDOG:?}");
        verdict(false, &watchdog_mode, json!({ "error": error }));
    });
    match run(&url, transport) {
        Ok(fields) => verdict(true, &mode, fields),
        Err(error) => verdict(false, &mode, json!({ "error": error })),
    }
}
