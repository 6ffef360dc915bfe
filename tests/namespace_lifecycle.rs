//! Namespaces and the sockets in them over their whole life: a client that
//! closes while it is joining leaves nothing behind, empty dynamic
//! namespaces go, and a connect handler that panics does not take the
//! connection (or its buffered packets) with it.

mod common;

use std::time::Duration;

use common::sio::{SioServer, config};
use common::{ws_event, ws_send, ws_text};
use socketgate::socketio::ConnectError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_racing_a_join_leaves_no_socket_behind() {
    let server = SioServer::start(config()).await;
    // An asynchronous middleware: the join completes on another task, at
    // a moment that races with the client's close.
    let ns = server.io.ns("/race", |_| {});
    ns.middleware(|hs| async move {
        let spins = hs.auth["spin"].as_u64().unwrap_or(0);
        for _ in 0..spins {
            tokio::task::yield_now().await;
        }
        if spins == 7 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        Ok::<(), ConnectError>(())
    });
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    let mut joined = 0;
    for round in 0..50 {
        let clients = (0..20).map(|i| {
            let url = url.clone();
            async move {
                let mut ws = common::ws_connect(&url).await;
                assert!(ws_text(&mut ws).await.starts_with("0{"));
                ws_send(
                    &mut ws,
                    &format!("40/race,{{\"spin\":{}}}", (round + i) % 9),
                )
                .await;
                // Sometimes wait for the answer, mostly not: close at once.
                if i % 5 == 0 {
                    assert!(ws_text(&mut ws).await.starts_with("40/race,"));
                    return true;
                }
                false
            }
        });
        joined += futures_util::future::join_all(clients)
            .await
            .into_iter()
            .filter(|j| *j)
            .count();
    }
    assert_eq!(joined, 200);
    common::until("every session to close", || {
        server.io.engine().session_count() == 0
    })
    .await;
    // Close notifications run on tasks of their own: give them the
    // deadline, then no socket may be left.
    common::until("no socket left in /race", || ns.sockets().is_empty()).await;
    assert!(
        server.io.of("/").unwrap().sockets().is_empty(),
        "no socket left in /"
    );
}

#[tokio::test]
async fn an_empty_dynamic_namespace_is_removed() {
    let server = SioServer::start(config()).await;
    let (mut ws, _) = server.ws_joined().await;
    for id in 0..200 {
        ws_send(&mut ws, &format!("40/tenant-{id},")).await;
        assert!(
            ws_event(&mut ws)
                .await
                .starts_with(&format!("40/tenant-{id},"))
        );
        assert_eq!(
            ws_event(&mut ws).await,
            format!("42/tenant-{id},[\"tenant\",\"/tenant-{id}\"]")
        );
        assert!(server.io.of(&format!("/tenant-{id}")).is_some());
        ws_send(&mut ws, &format!("41/tenant-{id},")).await;
    }
    common::until("every tenant namespace to go", || {
        (0..200).all(|id| server.io.of(&format!("/tenant-{id}")).is_none())
    })
    .await;

    // One refused by its middleware is not left behind either.
    server
        .io
        .dyn_ns_with(|p| p.starts_with("/locked-"), |_| {})
        .middleware(|_| async { Err(ConnectError::new("locked")) });
    ws_send(&mut ws, "40/locked-1,").await;
    assert_eq!(
        ws_event(&mut ws).await,
        "44/locked-1,{\"message\":\"locked\"}"
    );
    common::until("the refused namespace to go", || {
        server.io.of("/locked-1").is_none()
    })
    .await;
    // A namespace with a socket stays.
    ws_send(&mut ws, "40/tenant-5,").await;
    assert!(ws_event(&mut ws).await.starts_with("40/tenant-5,"));
    assert!(server.io.of("/tenant-5").is_some());
    assert!(server.io.of("/").is_some(), "static namespaces stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_handler_that_panics_does_not_stall_the_socket() {
    let server = SioServer::start(config()).await;
    server
        .io
        .ns("/boom", |socket| {
            socket.on("echo", |_, mut ev| {
                let args = ev.payload.args.clone();
                let _ = ev.ack(&args);
            });
            // Long enough for the client's packets to arrive meanwhile.
            std::thread::sleep(Duration::from_millis(300));
            panic!("a bug in the application's connect handler");
        })
        // With a middleware the join, and the connect handler, run on a
        // task of their own while the connection reads on.
        .middleware(|_| async { Ok(()) });
    let mut ws = server.ws_open().await;
    ws_send(&mut ws, "40/boom,").await;
    assert!(ws_event(&mut ws).await.starts_with("40/boom,"));
    // Held while the handler runs, then dispatched all the same.
    for i in 0..500 {
        ws_send(&mut ws, &format!("42/boom,[\"nobody-listens\",{i}]")).await;
    }
    ws_send(&mut ws, "42/boom,7[\"echo\",\"still here\"]").await;
    assert_eq!(ws_event(&mut ws).await, "43/boom,7[[\"still here\"]]");
    assert_eq!(server.io.of("/boom").unwrap().sockets().len(), 1);
    // And the next client of that namespace is served as well.
    let mut other = server.ws_open().await;
    ws_send(&mut other, "40/boom,").await;
    assert!(ws_event(&mut other).await.starts_with("40/boom,"));
}

/// A dynamic namespace's room policy names the rooms its clients ask for,
/// and `max_client_rooms` bounds how many they join.
#[tokio::test]
async fn room_policies_and_bounds_apply_to_dynamic_namespaces() {
    let server = SioServer::start(config().max_client_rooms(2)).await;
    server
        .io
        .dyn_ns_with(
            |p| p.starts_with("/team-"),
            |socket| socketgate::gateway::self_service_rooms(&socket),
        )
        .room_policy(|socket, name| {
            Ok(socketgate::socketio::Room::from(format!(
                "{}:{name}",
                socket.ns()
            )))
        });
    let mut ws = server.ws_open().await;
    ws_send(&mut ws, "40/team-1,").await;
    assert!(ws_event(&mut ws).await.starts_with("40/team-1,"));
    for (id, room) in ["a", "b"].iter().enumerate() {
        ws_send(&mut ws, &format!("42/team-1,{id}[\"join\",\"{room}\"]")).await;
        assert_eq!(
            ws_event(&mut ws).await,
            format!("43/team-1,{id}[\"{room}\"]")
        );
    }
    ws_send(&mut ws, "42/team-1,9[\"join\",\"c\"]").await;
    assert_eq!(
        ws_event(&mut ws).await,
        "43/team-1,9[{\"error\":\"too many rooms (at most 2)\"}]"
    );
    let socket = server.io.of("/team-1").unwrap().sockets()[0].clone();
    let mut rooms: Vec<String> = socket
        .rooms()
        .iter()
        .filter(|r| &***r != socket.id().as_str())
        .map(|r| r.to_string())
        .collect();
    rooms.sort();
    assert_eq!(rooms, ["/team-1:a", "/team-1:b"]);
}

/// A disconnect handler added after the socket left (from a task its
/// connect handler started) still runs, at once, with the reason: it is
/// never silently dropped.
#[tokio::test]
async fn a_disconnect_handler_added_after_the_socket_left_runs_at_once() {
    let server = SioServer::start(config()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    server.io.ns("/late", move |socket| {
        let tx = tx.clone();
        tokio::spawn(async move {
            while socket.connected() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            socket.on_disconnect(move |_, reason| {
                let _ = tx.send(reason.to_string());
            });
        });
    });
    let mut ws = server.ws_open().await;
    ws_send(&mut ws, "40/late,").await;
    assert!(ws_text(&mut ws).await.starts_with("40/late,"));
    ws_send(&mut ws, "41/late,").await;
    let reason = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the late handler ran");
    assert_eq!(reason.as_deref(), Some("client namespace disconnect"));
}
