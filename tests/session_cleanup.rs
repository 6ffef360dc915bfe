//! After every client has left, including those that vanished without a
//! close (a poller that stops polling, a WebSocket whose TCP connection just
//! drops, one that stops reading), the server holds no session once
//! pingInterval + pingTimeout have passed.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, config, open_polling, open_ws, post, ws_send};

const INTERVAL: Duration = Duration::from_millis(300);
const TIMEOUT: Duration = Duration::from_millis(200);

#[tokio::test]
async fn no_session_outlives_its_heartbeat_once_clients_are_gone() {
    let server = TestServer::start(config().ping_interval(INTERVAL).ping_timeout(TIMEOUT)).await;
    let mut keep = Vec::new();
    for i in 0..6 {
        let sid = open_polling(&server).await;
        if i % 2 == 0 {
            assert_eq!(post(&server, &sid, "1").await.0, 200); // a proper close
        } // the others simply stop polling
    }
    for i in 0..6 {
        let (mut ws, _) = open_ws(&server).await;
        match i % 3 {
            0 => ws_send(&mut ws, "1").await, // a proper close
            1 => drop(ws),                    // the connection just drops
            _ => keep.push(ws),               // stays open, never reads again
        }
    }
    let left = Instant::now();
    common::until("every session to be gone", || {
        server.engine.session_count() == 0
    })
    .await;
    // Generous margin for a busy machine; the bound itself is the heartbeat.
    let bound = INTERVAL + TIMEOUT + Duration::from_millis(1500);
    assert!(left.elapsed() <= bound, "took {:?}", left.elapsed());
    drop(keep);
}
