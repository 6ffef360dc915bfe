//! Connection state recovery at the packet level: the pid and offsets on
//! the wire, middlewares skipped (or not) on recovery, and a clean refusal
//! when the history the client needs was evicted.

mod common;

use common::sio::{SioServer, config};
use common::{Ws, ws_send, ws_text};
use serde_json::Value;
use socketgate::socketio::RecoveryConfig;

async fn open(server: &SioServer) -> Ws {
    server.ws_open().await
}

/// The JSON after a packet's prefix (`40/private,` → `{…}`).
fn json_after(packet: &str, prefix: &str) -> Value {
    serde_json::from_str(
        packet
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{packet}")),
    )
    .unwrap()
}

/// Connects `/private` with the right token; returns (ws, sid, pid, offset
/// of the `auth` event).
async fn first_visit(server: &SioServer) -> (Ws, String, String, String) {
    let mut ws = open(server).await;
    ws_send(&mut ws, "40/private,{\"token\":\"secret\"}").await;
    let answer = json_after(&ws_text(&mut ws).await, "40/private,");
    let (sid, pid) = (
        answer["sid"].as_str().unwrap(),
        answer["pid"].as_str().unwrap(),
    );
    let auth = json_after(&ws_text(&mut ws).await, "42/private,");
    assert_eq!(auth[0], "auth");
    let offset = auth[2]
        .as_str()
        .expect("an offset as last argument")
        .to_owned();
    (ws, sid.to_owned(), pid.to_owned(), offset)
}

async fn come_back(server: &SioServer, pid: &str, offset: &str, token: &str) -> (Ws, String) {
    let mut ws = open(server).await;
    ws_send(
        &mut ws,
        &format!("40/private,{{\"token\":\"{token}\",\"pid\":\"{pid}\",\"offset\":\"{offset}\"}}"),
    )
    .await;
    let answer = ws_text(&mut ws).await;
    (ws, answer)
}

#[tokio::test]
async fn recovery_skips_middlewares_by_default_and_replays_with_offsets() {
    let server = SioServer::start(config().recovery(RecoveryConfig::default())).await;
    let (ws, sid, pid, offset) = first_visit(&server).await;
    drop(ws);
    common::until("the socket to leave", || {
        server.io.of("/private").unwrap().sockets().is_empty()
    })
    .await;
    server
        .io
        .of("/private")
        .unwrap()
        .emit("missed", &1)
        .unwrap();

    // a token the middleware would refuse: recovery does not ask it
    let (mut ws, answer) = come_back(&server, &pid, &offset, "wrong").await;
    let answer = json_after(&answer, "40/private,");
    assert_eq!(answer["sid"], sid.as_str());
    assert_eq!(answer["pid"], pid.as_str());
    let missed = json_after(&ws_text(&mut ws).await, "42/private,");
    assert_eq!(
        (missed[0].as_str(), missed[1].as_i64()),
        (Some("missed"), Some(1))
    );
    // replayed with its own offset, a new one
    assert!(
        missed[2].is_string() && missed[2] != offset.as_str(),
        "{missed}"
    );
    assert!(server.io.of("/private").unwrap().sockets()[0].recovered());
}

#[tokio::test]
async fn middlewares_run_on_recovery_when_asked() {
    let cfg = config().recovery(RecoveryConfig::default().skip_middlewares(false));
    let server = SioServer::start(cfg).await;
    let (ws, _, pid, offset) = first_visit(&server).await;
    drop(ws);
    common::until("the socket to leave", || {
        server.io.of("/private").unwrap().sockets().is_empty()
    })
    .await;
    let (_, answer) = come_back(&server, &pid, &offset, "wrong").await;
    assert_eq!(
        answer,
        "44/private,{\"data\":{\"code\":401},\"message\":\"unauthorized\"}"
    );
}

#[tokio::test]
async fn evicted_history_means_a_fresh_session() {
    let server =
        SioServer::start(config().recovery(RecoveryConfig::default().max_packets(5))).await;
    let (ws, sid, pid, offset) = first_visit(&server).await;
    drop(ws);
    common::until("the socket to leave", || {
        server.io.of("/private").unwrap().sockets().is_empty()
    })
    .await;
    for i in 0..10 {
        server.io.of("/private").unwrap().emit("flood", &i).unwrap();
    }
    let (_, answer) = come_back(&server, &pid, &offset, "secret").await;
    let answer = json_after(&answer, "40/private,");
    assert_ne!(answer["sid"], sid.as_str(), "not recovered: a new socket");
    assert_ne!(answer["pid"], pid.as_str());
    assert!(!server.io.of("/private").unwrap().sockets()[0].recovered());
}

#[tokio::test]
async fn without_recovery_there_is_no_pid_and_no_offset() {
    let server = SioServer::start(config()).await;
    let mut ws = open(&server).await;
    ws_send(&mut ws, "40").await;
    let answer = json_after(&ws_text(&mut ws).await, "40");
    assert!(answer.get("pid").is_none());
    assert_eq!(ws_text(&mut ws).await, "42[\"auth\",{}]");
}

/// Recovery with a small queue bound: a backlog that fits is replayed
/// whole; one that does not is refused (a new socket), never presented as
/// recovered with packets missing.
#[tokio::test]
async fn a_backlog_larger_than_the_queue_is_refused_not_cut() {
    let mut cfg = config().recovery(RecoveryConfig::default());
    cfg.engine = cfg.engine.max_queue_bytes(256 << 10);
    let server = SioServer::start(cfg).await;
    let pad = "m".repeat(16 << 10);
    for (events, fits) in [(5, true), (40, false)] {
        let (ws, sid, pid, offset) = first_visit(&server).await;
        drop(ws);
        common::until("the socket to leave", || {
            server.io.of("/private").unwrap().sockets().is_empty()
        })
        .await;
        let ns = server.io.of("/private").unwrap();
        for i in 0..events {
            ns.to(sid.as_str()).emit("missed", &(i, &pad)).unwrap();
        }
        let (mut ws, answer) = come_back(&server, &pid, &offset, "secret").await;
        let answer = json_after(&answer, "40/private,");
        if fits {
            assert_eq!(answer["sid"], sid.as_str(), "recovered");
            for i in 0..events {
                let missed = json_after(&ws_text(&mut ws).await, "42/private,");
                assert_eq!(
                    (missed[0].as_str(), missed[1][0].as_i64()),
                    (Some("missed"), Some(i))
                );
            }
        } else {
            assert_ne!(
                answer["sid"],
                sid.as_str(),
                "a new socket, not a cut replay"
            );
            assert_ne!(answer["pid"], pid.as_str());
            // the new socket gets its own auth event, and nothing missed
            let auth = json_after(&ws_text(&mut ws).await, "42/private,");
            assert_eq!(auth[0], "auth");
            assert!(!ns.sockets()[0].recovered());
        }
        drop(ws);
        common::until("the socket to leave", || ns.sockets().is_empty()).await;
    }
}

/// `emit_wait` (backpressure) and `emit` from two tasks at once: the
/// offsets reach the client in increasing order, so its last offset always
/// names everything it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_wait_and_emit_keep_offsets_in_order() {
    let mut cfg = config().recovery(RecoveryConfig::default());
    cfg.engine = cfg.engine.max_queue_bytes(64 << 10);
    let server = SioServer::start(cfg).await;
    let (mut ws, _, _, first) = first_visit(&server).await;
    let socket = server.io.of("/private").unwrap().sockets()[0].clone();
    const EACH: usize = 400;
    let waiting = tokio::spawn({
        let socket = socket.clone();
        async move {
            for i in 0..EACH {
                socket.emit_wait("w", &i).await.unwrap();
            }
        }
    });
    let plain = tokio::spawn({
        let socket = socket.clone();
        async move {
            for i in 0..EACH {
                socket.emit("e", &i).unwrap();
                if i % 8 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
    });
    let seq = |offset: &str| -> u64 {
        offset
            .rsplit_once('-')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("an offset: {offset}"))
    };
    let mut last = seq(&first);
    let (mut w, mut e) = (0, 0);
    while w + e < 2 * EACH {
        let event = json_after(&common::ws_event(&mut ws).await, "42/private,");
        let offset = seq(event[2].as_str().expect("an offset"));
        assert!(offset > last, "offset {offset} after {last}");
        last = offset;
        let n = event[1].as_u64().unwrap() as usize;
        match event[0].as_str() {
            Some("w") => (assert_eq!(n, w), w += 1).1,
            Some("e") => (assert_eq!(n, e), e += 1).1,
            other => panic!("{other:?}"),
        }
    }
    waiting.await.unwrap();
    plain.await.unwrap();
}
