//! Connection state recovery with the real socket.io-client 4.8 (see
//! tests/node/recovery-client.mjs): a client whose transport breaks, or who
//! stops answering pings, comes back with the same id, rooms and data and
//! gets the 100 events it missed exactly once, in order; past the recovery
//! window it starts afresh; across a graceful shutdown and restart of the
//! server on a shared store it is recovered too.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::sio::{SioServer, config};
use socketgate::socketio::{MemoryStore, RecoveryConfig, SessionStore, SocketIo, SocketIoConfig};

fn recovering(window: Duration) -> SocketIoConfig {
    config().recovery(RecoveryConfig::default().max_disconnection_duration(window))
}

fn with_store(cfg: SocketIoConfig, store: Arc<dyn SessionStore>) -> SocketIo {
    SocketIo::builder()
        .config(cfg)
        .store(store)
        .build()
        .unwrap()
}

async fn run(scenario: &str, mode: &str, window: Duration) -> serde_json::Value {
    let server = SioServer::start(recovering(window)).await;
    common::run_node("recovery-client.mjs", &[scenario, mode, &server.base()]).await
}

async fn recovered(scenario: &str, mode: &str) {
    let v = run(scenario, mode, Duration::from_secs(120)).await;
    assert_eq!(v["recovered"], true, "{v}");
    assert_eq!(v["events"]["direct"], 50, "{v}");
    assert_eq!(v["events"]["room"], 50, "{v}");
    assert_eq!(v["data"], serde_json::json!({ "x": 1 }), "{v}");
}

async fn expired(mode: &str) {
    let v = run("expired", mode, Duration::from_millis(1000)).await;
    assert_eq!(v["recovered"], false, "{v}");
    assert_ne!(v["firstSocketId"], v["secondSocketId"], "{v}");
}

/// Shutdown and restart on the same address and store while the client
/// waits; it must get the 20 `pre` events before the disconnect and be
/// recovered by the new server.
async fn across_restart(mode: &str) {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new(RecoveryConfig::default()));
    let cfg = recovering(Duration::from_secs(120));
    let first = SioServer::serve(
        with_store(cfg.clone(), store.clone()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    common::sio::recovered_across_shutdown(first, mode, |addr| {
        SioServer::serve(with_store(cfg, store), addr)
    })
    .await;
}

macro_rules! modes {
    ($($name:ident => |$mode:ident| $body:expr;)*) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test]
                async fn polling() {
                    let $mode = "polling";
                    $body.await
                }

                #[tokio::test]
                async fn websocket() {
                    let $mode = "websocket";
                    $body.await
                }

                #[tokio::test]
                async fn polling_then_upgrade() {
                    let $mode = "default";
                    $body.await
                }
            }
        )*
    };
}

modes! {
    after_transport_close => |mode| recovered("transport-close", mode);
    after_ping_timeout => |mode| recovered("ping-timeout", mode);
    not_after_the_window => |mode| expired(mode);
    across_a_server_restart => |mode| across_restart(mode);
}
