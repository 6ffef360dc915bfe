//! The gateway's relay is safe to expose: a client joins only rooms the
//! relay made for clients (never another socket's own room), within a
//! bound, at a bounded cost; and no engine session id (a credential: it
//! lets whoever knows it poll the session) ever reaches another client.

mod common;

use std::time::Duration;

use common::{Ws, ws_connect, ws_event, ws_send, ws_text};
use futures_util::SinkExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as WsMessage;

async fn gateway(extra: &[&str]) -> (tokio::process::Child, String) {
    let mut args = vec!["--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let (child, addr, _log) = common::spawn_gateway(&args).await;
    (child, addr)
}

/// A protocol 5 client joined to `/`; returns it with its socket id.
async fn client(addr: &str) -> (Ws, String) {
    let mut ws = ws_connect(&format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await;
    assert!(ws_text(&mut ws).await.starts_with("0{"));
    ws_send(&mut ws, "40").await;
    let answer = ws_event(&mut ws).await;
    let json: Value = serde_json::from_str(answer.strip_prefix("40").unwrap()).unwrap();
    (ws, json["sid"].as_str().unwrap().to_owned())
}

/// Sends `join` with an ack and returns the ack's argument.
async fn join(ws: &mut Ws, id: u32, room: &Value) -> Value {
    ws_send(ws, &format!("42{id}[\"join\",{room}]")).await;
    loop {
        let event = ws_event(ws).await;
        if let Some(ack) = event.strip_prefix(&format!("43{id}")) {
            let args: Value = serde_json::from_str(ack).unwrap();
            return args[0].clone();
        }
    }
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

#[tokio::test]
async fn clients_cannot_join_socket_rooms_or_rooms_past_the_bound() {
    let (_gateway, addr) = gateway(&[]).await;
    let (mut a, a_id) = client(&addr).await;
    let (mut b, b_id) = client(&addr).await;

    // Another socket's own room, its own, or a protocol 4 shaped id.
    for (n, room) in [b_id.clone(), a_id.clone(), format!("/chat#{b_id}")]
        .iter()
        .enumerate()
    {
        let answer = join(&mut a, n as u32, &Value::from(room.as_str())).await;
        assert_eq!(answer["error"], "this room name is reserved", "{room}");
    }
    // Not a string, empty, too long.
    assert_eq!(
        join(&mut a, 10, &Value::from(42)).await["error"],
        "the room must be a string"
    );
    assert!(join(&mut a, 11, &Value::from("")).await["error"].is_string());
    let long = "l".repeat(257);
    assert!(join(&mut a, 12, &Value::from(long)).await["error"].is_string());

    // B does not get what is sent to A, even after all those attempts:
    // chat to A's id as a room name is refused too.
    ws_send(
        &mut a,
        &format!("42[\"chat\",{{\"room\":\"{a_id}\",\"text\":\"private?\"}}]"),
    )
    .await;
    // 50 rooms, then the 51st is refused; rejoining one it is in is fine.
    for i in 0..50 {
        assert_eq!(
            join(&mut a, 100 + i, &Value::from(format!("room-{i}"))).await,
            format!("room-{i}")
        );
    }
    assert_eq!(
        join(&mut a, 200, &Value::from("room-50")).await["error"],
        "too many rooms (at most 50)"
    );
    assert_eq!(join(&mut a, 201, &Value::from("room-7")).await, "room-7");
    // A room the relay made for clients works as before.
    assert_eq!(join(&mut b, 1, &Value::from("room-7")).await, "room-7");
    ws_send(&mut a, "42[\"chat\",{\"room\":\"room-7\",\"text\":\"hi\"}]").await;
    let chat = ws_event(&mut b).await;
    let chat: Value = serde_json::from_str(chat.strip_prefix("42").unwrap()).unwrap();
    assert_eq!(chat[1]["text"], "hi", "{chat}");
    assert_eq!(chat[1]["from"], a_id.as_str());
}

#[tokio::test]
async fn two_hundred_thousand_join_attempts_cost_little_memory() {
    let (gateway, addr) = gateway(&[]).await;
    let pid = gateway.id().unwrap();
    let (mut ws, _) = client(&addr).await;
    assert_eq!(join(&mut ws, 0, &Value::from("warm-up")).await, "warm-up");
    let before = resident_kib(pid);
    for i in 0..200_000u32 {
        ws.feed(WsMessage::text(format!("42[\"join\",\"flood-{i}\"]")))
            .await
            .unwrap();
        if i % 1000 == 999 {
            ws.flush().await.unwrap();
        }
    }
    ws.flush().await.unwrap();
    // Acknowledged once everything before it was handled. The flood used
    // up the socket's event budget (50/s, burst 100: most of it was
    // dropped unread), so a join may be refused as "rate limited" until a
    // token comes back; the client is never closed for it.
    let mut id = 1;
    let last = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let answer = join(&mut ws, id, &Value::from("one-more")).await;
            if answer["error"] != "rate limited" {
                return answer;
            }
            id += 1;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
    .expect("the gateway handled the flood");
    assert_eq!(last["error"], "too many rooms (at most 50)");
    let after = resident_kib(pid);
    let grown = after.saturating_sub(before);
    println!("resident: {before} KiB before, {after} KiB after (+{grown} KiB)");
    assert!(grown < 16 * 1024, "grew {grown} KiB");
}

/// A socket.io-client 2.x style (engine.io v3) client: its engine sid is in
/// the handshake and in nothing it or anyone else receives afterwards.
#[tokio::test]
async fn no_engine_sid_goes_on_the_wire_after_the_handshake() {
    let (_gateway, addr) = gateway(&["--allow-eio3"]).await;
    let mut v3 = ws_connect(&format!("ws://{addr}/socket.io/?EIO=3&transport=websocket")).await;
    let open = ws_text(&mut v3).await;
    let open: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let engine_sid = open["sid"].as_str().unwrap().to_owned();
    let (mut v4, _) = client(&addr).await;

    let mut seen_by_v3 = Vec::new();
    let mut seen_by_v4 = Vec::new();
    assert_eq!(ws_text(&mut v3).await, "40", "the implicit connect");
    ws_send(&mut v3, "421[\"join\",\"lobby\"]").await;
    ws_send(&mut v3, "42[\"chat\",{\"text\":\"from 2.x\"}]").await;
    ws_send(&mut v3, "422[\"echo\",\"x\"]").await;
    ws_send(&mut v4, "42[\"chat\",{\"text\":\"from 4.x\"}]").await;
    // v3 gets: join ack, its chat, echo event, echo ack, v4's chat.
    while seen_by_v3.len() < 5 {
        let t = ws_text(&mut v3).await;
        if t != "3" {
            seen_by_v3.push(t);
        }
    }
    // v4 gets both chats.
    while seen_by_v4.len() < 2 {
        seen_by_v4.push(ws_event(&mut v4).await);
    }
    assert!(
        seen_by_v3.iter().any(|t| t.contains("from 2.x")),
        "{seen_by_v3:?}"
    );
    assert!(
        seen_by_v4.iter().any(|t| t.contains("from 2.x")),
        "{seen_by_v4:?}"
    );
    for frame in seen_by_v3.iter().chain(&seen_by_v4) {
        assert!(!frame.contains(&engine_sid), "engine sid leaked: {frame}");
    }
}
