//! Clients that do not keep up: the outbound queue stays within its bound,
//! the client is closed as a slow consumer, others are unaffected; and the
//! backpressure API waits for room instead.

mod common;

use std::sync::{Arc, Mutex};

use common::sio::{SioServer, config};
use common::{Ws, ws_send, ws_text};
use socketgate::socketio::{DisconnectReason, EmitError, FullQueue, Socket, SocketIoConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const LIMIT: usize = 2 << 20;

/// A small queue bound, and a heartbeat slow enough that only the queue
/// policy can close anyone here.
fn limited() -> SocketIoConfig {
    let mut cfg = config();
    cfg.engine = cfg
        .engine
        .max_queue_bytes(LIMIT)
        .ping_interval(std::time::Duration::from_secs(30));
    cfg
}

/// A raw WebSocket client connected to `/`; returns it with its socket on
/// the server.
async fn join(server: &SioServer) -> (Ws, Socket) {
    let (ws, sid) = server.ws_joined().await;
    let socket = server
        .io
        .of("/")
        .unwrap()
        .sockets()
        .into_iter()
        .find(|s| s.id().as_str() == sid)
        .unwrap();
    (ws, socket)
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_memory_stays_bounded() {
    let server = SioServer::start(limited()).await;
    let (_stalled, slow) = join(&server).await;
    let (mut healthy, _) = join(&server).await;
    let reason = Arc::new(Mutex::new(None));
    let seen = reason.clone();
    slow.on_disconnect(move |_, r| *seen.lock().unwrap() = Some(r));

    // 100 emits of 1 MB: 100 MB for a client that reads nothing.
    let chunk = "x".repeat(1 << 20);
    let (mut queued, mut refused, mut peak) = (0, 0, 0);
    for _ in 0..100 {
        match slow.emit("bulk", &chunk) {
            Ok(()) => queued += 1,
            Err(EmitError::QueueFull | EmitError::Disconnected) => refused += 1,
            Err(e) => panic!("{e}"),
        }
        peak = peak.max(slow.session().queued_bytes());
        assert!(slow.session().queued_bytes() <= LIMIT);
        tokio::task::yield_now().await;
    }
    assert!(refused > 0, "the bound was never reached ({queued} queued)");
    assert!(peak <= LIMIT);
    common::until("the slow consumer to be closed", || {
        reason.lock().unwrap().is_some()
    })
    .await;
    assert_eq!(
        *reason.lock().unwrap(),
        Some(DisconnectReason::SlowConsumer)
    );
    assert_eq!(server.io.engine().stats().slow_consumer_closes, 1);

    // the other client is unaffected
    ws_send(&mut healthy, "42[\"message\",\"still here\"]").await;
    assert_eq!(
        ws_text(&mut healthy).await,
        "42[\"message-back\",\"still here\"]"
    );
}

#[tokio::test]
async fn emit_wait_waits_for_room_instead_of_closing() {
    let server = SioServer::start(limited()).await;
    let (mut ws, socket) = join(&server).await;
    const EVENTS: u64 = 60; // 60 × 256 KiB: far more than the 2 MiB bound
    // A reader that starts late, once the queue has certainly filled up.
    let reader = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut next = 0u64;
        while next < EVENTS {
            match common::ws_next(&mut ws).await {
                Some(WsMessage::Text(t)) => {
                    let v: serde_json::Value = serde_json::from_str(&t[2..]).unwrap();
                    assert_eq!(v[0], "bulk");
                    assert_eq!(v[1]["i"], next, "in order, none lost");
                    next += 1;
                }
                Some(_) => {}
                None => panic!("closed after {next} events"),
            }
        }
        next
    });
    let pad = "y".repeat(256 << 10);
    for i in 0..EVENTS {
        let data = serde_json::json!({ "i": i, "pad": pad });
        socket
            .emit_wait("bulk", &data)
            .await
            .unwrap_or_else(|e| panic!("emit {i}: {e}"));
        assert!(socket.session().queued_bytes() <= LIMIT);
    }
    assert_eq!(reader.await.unwrap(), EVENTS);
    assert_eq!(server.io.engine().stats().slow_consumer_closes, 0);
    assert!(socket.connected());
}

#[tokio::test]
async fn under_the_drop_policy_a_stalled_client_stays_and_drops_are_counted() {
    let server = SioServer::start(limited().full_queue(FullQueue::Drop)).await;
    let (_stalled, slow) = join(&server).await;
    let chunk = "z".repeat(1 << 20);
    let mut dropped = 0;
    for _ in 0..40 {
        if let Err(EmitError::QueueFull) = slow.emit("bulk", &chunk) {
            dropped += 1;
        }
        assert!(slow.session().queued_bytes() <= LIMIT);
        tokio::task::yield_now().await;
    }
    assert!(dropped > 0);
    // volatile packets for a client that is behind are dropped too
    slow.volatile().emit("tick", &1).unwrap();
    let stats = server.io.engine().stats();
    assert_eq!(stats.dropped_full, dropped);
    assert_eq!(stats.volatile_dropped, 1);
    assert_eq!(stats.slow_consumer_closes, 0);
    assert!(slow.connected(), "the drop policy keeps the client");
}
