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
    // What the WebSocket writer took from the queue and could not write
    // counts too: queue and writer together never held more than the bound.
    let held = slow.session().held_bytes_peak();
    assert!(held <= LIMIT, "{held} bytes held, bound {LIMIT}");
    assert!(held > LIMIT / 2, "the writer's bytes are counted ({held})");
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

#[tokio::test]
async fn a_message_larger_than_the_bound_is_refused_and_closes_nobody() {
    let server = SioServer::start(limited()).await;
    let (mut ws, socket) = join(&server).await;
    let huge = "h".repeat(3 << 20);
    let ns = server.io.of("/").unwrap();
    assert!(matches!(
        socket.emit("huge", &huge),
        Err(EmitError::MessageTooLarge)
    ));
    assert!(matches!(
        ns.emit("huge", &huge),
        Err(EmitError::MessageTooLarge)
    ));
    assert!(matches!(
        socket.emit_wait("huge", &huge).await,
        Err(EmitError::MessageTooLarge)
    ));
    assert!(matches!(
        socket
            .emit_with_ack("huge", &huge, std::time::Duration::from_secs(1))
            .await,
        Err(socketgate::socketio::AckError::Emit(
            EmitError::MessageTooLarge
        ))
    ));
    // Nothing was closed or counted, and the client still gets what fits.
    assert!(socket.connected());
    assert_eq!(server.io.engine().stats().slow_consumer_closes, 0);
    socket.emit("small", &"fits").unwrap();
    assert_eq!(common::ws_event(&mut ws).await, "42[\"small\",\"fits\"]");
}

/// Recovery on (offsets taken in order), a broadcast that closes a slow
/// consumer, and a disconnect handler that emits in the same namespace and
/// takes a lock the broadcaster holds: the handler must run after the
/// broadcast returned, not inside it (which would deadlock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_handler_never_runs_inside_the_emit_that_caused_it() {
    let cfg = limited().recovery(socketgate::socketio::RecoveryConfig::default());
    let server = SioServer::start(cfg).await;
    let (_stalled, slow) = join(&server).await;
    let (mut watcher, _) = join(&server).await;
    slow.join("slow");

    // The application's own lock, and what happened in which order.
    let app_lock = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let in_handler = app_lock.clone();
    slow.on_disconnect(move |socket, reason| {
        let mut log = in_handler.lock().unwrap();
        log.push("disconnect handler");
        assert_eq!(reason, DisconnectReason::SlowConsumer);
        socket
            .namespace()
            .emit("gone", &"a slow client")
            .expect("an emit from a disconnect handler");
    });

    let ns = server.io.of("/").unwrap();
    let session = slow.session().clone();
    let broadcaster = tokio::task::spawn_blocking(move || {
        let mut log = app_lock.lock().unwrap();
        let chunk = "b".repeat(256 << 10);
        for _ in 0..1000 {
            ns.to("slow").emit("bulk", &chunk).unwrap();
            if session.is_closed() {
                break;
            }
        }
        assert!(session.is_closed(), "the slow consumer was closed");
        log.push("broadcast returned");
        app_lock.clone()
    });
    let app_lock = tokio::time::timeout(common::DEADLINE, broadcaster)
        .await
        .expect("the broadcast returned: no deadlock")
        .unwrap();
    // The handler's emit reaches the other client.
    loop {
        let event = common::ws_event(&mut watcher).await;
        if event.starts_with("42[\"gone\"") {
            break;
        }
    }
    assert_eq!(
        *app_lock.lock().unwrap(),
        ["broadcast returned", "disconnect handler"],
        "the handler ran once, after the broadcast"
    );
    assert_eq!(server.io.engine().stats().slow_consumer_closes, 1);
}
