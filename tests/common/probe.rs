//! Real socket.io-client 4.8 clients driven step by step from a test:
//! tests/node/sio-probe.mjs, one command a line on its stdin, one report a
//! line on its stdout. Each client has a name and a parser (`"json"` or
//! `"msgpack"`, the real `socket.io-msgpack-parser`); binaries travel both
//! ways as `{"$binary":"<hex>"}`.

use std::collections::VecDeque;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

pub struct Probe {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Reports read but not yet taken, in order.
    pending: VecDeque<Value>,
    /// Everything it reported, for the failure message.
    log: Vec<String>,
    acks: u64,
}

/// `{"$binary":"<hex>"}`: how the probe writes (and reads) a binary value.
pub fn bin(bytes: &[u8]) -> Value {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    json!({ "$binary": hex })
}

/// One event a client got.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub event: String,
    pub args: Vec<Value>,
    /// The JS classes of the binary values in `args` (e.g. `["Buffer"]`).
    pub binary_classes: Vec<String>,
}

impl Probe {
    pub fn start() -> Probe {
        let dir = super::node_dir();
        assert!(
            dir.join("node_modules").is_dir(),
            "tests/node/node_modules is missing: run the README's test command (it runs `npm ci` in tests/node)"
        );
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("sio-probe.mjs"))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run the interop tests");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Probe {
            child,
            stdin,
            lines,
            pending: VecDeque::new(),
            log: Vec::new(),
            acks: 0,
        }
    }

    async fn send(&mut self, cmd: Value) {
        let line = format!("{cmd}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The first pending or next report that `pick` takes (reports before
    /// it that it leaves stay pending); panics with the log after
    /// [`super::DEADLINE`] or on a failed verdict.
    async fn take<T>(&mut self, what: &str, mut pick: impl FnMut(&Value) -> Option<T>) -> T {
        if let Some(i) = self.pending.iter().position(|v| pick(v).is_some()) {
            let v = self.pending.remove(i).unwrap();
            return pick(&v).unwrap();
        }
        let deadline = tokio::time::Instant::now() + super::DEADLINE;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(_) => panic!("the probe ended while waiting for {what}: {:#?}", self.log),
                Err(_) => panic!("timed out waiting for {what}: {:#?}", self.log),
            };
            self.log.push(line.clone());
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line}"));
            assert!(v["ok"] != false, "the probe failed: {:#?}", self.log);
            if let Some(t) = pick(&v) {
                return t;
            }
            self.pending.push_back(v);
        }
    }

    /// Connects client `name` to `url` with `parser`, polling first then
    /// upgrading; returns its socket id.
    pub async fn connect(&mut self, name: &str, url: &str, parser: &str) -> String {
        self.connect_on(name, url, parser, None).await
    }

    /// [`connect`](Self::connect) on `transport` only (`"polling"` or
    /// `"websocket"`), or the default with `None`.
    pub async fn connect_on(
        &mut self,
        name: &str,
        url: &str,
        parser: &str,
        transport: Option<&str>,
    ) -> String {
        let mut cmd = json!({ "cmd": "connect", "name": name, "url": url, "parser": parser });
        if let Some(transport) = transport {
            cmd["transport"] = json!(transport);
        }
        self.send(cmd).await;
        self.connected(name).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The next `connected` report of `name` (`id`, `recovered`, `transport`).
    pub async fn connected(&mut self, name: &str) -> Value {
        self.take(&format!("{name} to connect"), |v| {
            assert!(
                !(v["event"] == "connect_error" && v["name"] == name),
                "{name} could not connect: {v}"
            );
            (v["event"] == "connected" && v["name"] == name).then(|| v.clone())
        })
        .await
    }

    /// The reason of `name`'s next disconnect.
    pub async fn disconnected(&mut self, name: &str) -> String {
        self.take(&format!("{name} to disconnect"), |v| {
            (v["event"] == "disconnected" && v["name"] == name)
                .then(|| v["reason"].as_str().unwrap_or_default().to_owned())
        })
        .await
    }

    /// `name` emits `args` (`[event, ...]`) without asking for an ack.
    pub async fn emit(&mut self, name: &str, args: Value) {
        self.send(json!({ "cmd": "emit", "name": name, "args": args }))
            .await;
    }

    /// `name` emits `args` and waits for the server's ack; returns its
    /// arguments.
    pub async fn call(&mut self, name: &str, args: Value) -> Vec<Value> {
        self.acks += 1;
        let seq = self.acks;
        self.send(json!({ "cmd": "emit", "name": name, "args": args, "ack": seq }))
            .await;
        self.take(&format!("{name}'s ack {seq}"), |v| {
            (v["event"] == "ack" && v["name"] == name && v["seq"] == seq)
                .then(|| v["args"].as_array().unwrap().clone())
        })
        .await
    }

    /// `name` joins `room` through the contract's `join` (socketgate's and
    /// the Node cluster server's alike).
    pub async fn join(&mut self, name: &str, room: &str) {
        assert_eq!(self.call(name, json!(["join", room])).await, [json!(room)]);
    }

    /// From now on `name` answers the acks of `event` with `args`.
    pub async fn answer(&mut self, name: &str, event: &str, args: Value) {
        self.send(json!({ "cmd": "answer", "name": name, "event": event, "args": args }))
            .await;
        self.take(&format!("{name} to answer {event}"), |v| {
            (v["event"] == "answering" && v["name"] == name && v["ev"] == event).then_some(())
        })
        .await;
    }

    /// The disconnected `name` connects again, to `url`, presenting its
    /// pid and offset.
    pub async fn reconnect(&mut self, name: &str, url: &str) -> Value {
        self.send(json!({ "cmd": "reconnect", "name": name, "url": url }))
            .await;
        self.connected(name).await
    }

    /// The next event `name` got (events of `skip` passed over).
    pub async fn next_event_skipping(&mut self, name: &str, skip: &[&str]) -> Received {
        self.take(&format!("an event at {name}"), |v| {
            let ev = v["ev"].as_str().unwrap_or_default();
            (v["event"] == "recv" && v["name"] == name && !skip.contains(&ev)).then(|| Received {
                event: ev.to_owned(),
                args: v["args"].as_array().unwrap().clone(),
                binary_classes: v["binaryClasses"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_owned())
                    .collect(),
            })
        })
        .await
    }

    /// The next event `name` got other than the contract's `auth` greeting.
    pub async fn next_event(&mut self, name: &str) -> Received {
        self.next_event_skipping(name, &["auth"]).await
    }

    /// Disconnects every client and checks the probe's verdict.
    pub async fn quit(mut self) {
        self.send(json!({ "cmd": "quit" })).await;
        let verdict = self
            .take("the verdict", |v| v.get("ok").map(|_| v.clone()))
            .await;
        assert_eq!(verdict["ok"], true, "{:#?}", self.log);
        assert!(self.child.wait().await.unwrap().success());
    }
}
