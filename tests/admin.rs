//! The socket.io Admin UI (`@socket.io/admin-ui` 0.5.x) against the
//! gateway: its page served at `/admin/` from the npm package, its login
//! (a bcrypt hash made here), the sockets and rooms it lists, its commands,
//! read-only mode. The clients and the dashboard are the real ones, driven
//! by `tests/node/admin-e2e.mjs` (the browser scenario in headless
//! Chromium).
//!
//! Needs `npm ci` in `tests/node` and in `client-demo` (the UI), and
//! `/usr/bin/chromium` for the browser scenario.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use socketgate::admin::{AdminAuth, AdminConfig, AdminMode};
use socketgate::gateway::{self, GatewayConfig};

const USER: &str = "admin";
const PASSWORD: &str = "s3cret pass";

fn ui_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("client-demo/node_modules/@socket.io/admin-ui/ui/dist");
    assert!(
        dir.join("index.html").is_file(),
        "{} is missing: run `npm ci` in client-demo/",
        dir.display()
    );
    dir
}

/// A gateway on a free port with the admin namespace (`admin`) or
/// without; stops when the returned sender is dropped.
async fn gateway(admin: Option<AdminConfig>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let config = GatewayConfig::default()
        .addr(addr)
        .admin(admin, Some(ui_dir()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        gateway::serve(listener, config, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (format!("http://{addr}"), stop)
}

fn login() -> AdminAuth {
    // The lowest cost: the check is the same, the test quicker.
    AdminAuth::new(USER, bcrypt::hash(PASSWORD, 4).unwrap())
}

fn with_login() -> AdminConfig {
    AdminConfig::default().auth(Some(login()))
}

#[tokio::test]
async fn the_dashboard_logs_in_lists_the_clients_and_disconnects_one() {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's `chromium` package"
    );
    let (url, _stop) = gateway(Some(with_login())).await;
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-artifacts");
    let artifacts = artifacts.to_str().expect("a UTF-8 path");
    let verdict = common::run_node(
        "admin-e2e.mjs",
        &["browser", &url, USER, PASSWORD, artifacts],
    )
    .await;
    assert_eq!(verdict["listed"], 2, "{verdict}");
}

#[tokio::test]
async fn the_admin_protocol_lists_commands_and_refuses_a_wrong_password() {
    let (url, _stop) = gateway(Some(with_login())).await;
    let verdict = common::run_node("admin-e2e.mjs", &["protocol", &url, USER, PASSWORD]).await;
    assert_eq!(verdict["clients"], 2, "{verdict}");
    eprintln!(
        "the upgrading client was first seen on {}",
        verdict["upgradeSeenAs"]
    );
}

#[tokio::test]
async fn read_only_mode_ignores_commands() {
    let (url, _stop) = gateway(Some(with_login().read_only(true))).await;
    common::run_node("admin-e2e.mjs", &["readonly", &url, USER, PASSWORD]).await;
}

#[tokio::test]
async fn production_mode_tells_the_overview_only() {
    let (url, _stop) = gateway(Some(with_login().mode(AdminMode::Production))).await;
    common::run_node("admin-e2e.mjs", &["production", &url, USER, PASSWORD]).await;
}

#[tokio::test]
async fn the_binary_takes_the_admin_mode() {
    let (_child, addr, _log) = common::spawn_gateway(&[
        "--addr",
        "127.0.0.1:0",
        "--admin",
        "--admin-mode",
        "production",
    ])
    .await;
    let url = format!("http://{addr}");
    common::run_node("admin-e2e.mjs", &["production", &url, "-", "-"]).await;
}

#[tokio::test]
async fn the_page_is_served_whole_from_the_gateway() {
    let (url, _stop) = gateway(Some(with_login())).await;
    let index = common::get_text(format!("{url}/admin/")).await;
    assert!(index.contains("<div id=\"app\">"), "{index}");
    assert!(index.contains("js/app."), "{index}");
    // The npm page links web fonts and icons on CDNs: those links go.
    assert!(!index.contains("https://"), "{index}");
    let raw = std::fs::read_to_string(ui_dir().join("index.html")).unwrap();
    assert!(raw.contains("https://"), "the package's page links outside");
    let http = common::http();
    let css = http
        .get(format!("{url}/admin/favicon.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "image/png");
    let redirect = http.get(format!("{url}/admin")).send().await.unwrap();
    assert_eq!(redirect.status(), 200, "followed to /admin/");
    for escape in [
        "/admin/..%2FCargo.toml",
        "/admin/js/..%2F..%2Findex.html",
        "/admin/nope.js",
    ] {
        let res = http.get(format!("{url}{escape}")).send().await.unwrap();
        assert_eq!(res.status(), 404, "{escape}");
    }
}

#[tokio::test]
async fn without_admin_there_is_no_page_and_no_namespace() {
    let (url, _stop) = gateway(None).await;
    let res = common::http()
        .get(format!("{url}/admin/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn a_hash_that_is_not_bcrypt_stops_the_start() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = GatewayConfig::default().admin(
        Some(AdminConfig::default().auth(Some(AdminAuth::new(USER, "plain")))),
        Some(ui_dir()),
    );
    let err = gateway::serve(listener, config, std::future::pending())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bcrypt"), "{err}");
}

#[tokio::test]
async fn the_binary_takes_the_admin_settings() {
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    // From the repository root, as the default UI folder is relative.
    let (_child, addr, _log) = common::spawn_gateway(&[
        "--addr",
        "127.0.0.1:0",
        "--admin",
        "--admin-user",
        USER,
        "--admin-password-hash",
        &hash,
        "--admin-read-only",
    ])
    .await;
    let url = format!("http://{addr}");
    let index = common::get_text(format!("{url}/admin/")).await;
    assert!(index.contains("<div id=\"app\">"), "{index}");
    common::run_node("admin-e2e.mjs", &["readonly", &url, USER, PASSWORD]).await;
}

#[tokio::test]
async fn a_dashboard_on_one_node_sees_the_cluster() {
    let redis = common::redis::RedisServer::start().await;
    let args = [
        "--addr",
        "127.0.0.1:0",
        "--redis-url",
        &redis.url(),
        "--admin",
    ];
    let (_one, one, _log1) = common::spawn_gateway(&args).await;
    let (_two, two, _log2) = common::spawn_gateway(&args).await;
    let (one, two) = (format!("http://{one}"), format!("http://{two}"));
    let verdict = common::run_node("admin-e2e.mjs", &["cluster", &one, "-", "-", &two]).await;
    assert_eq!(
        verdict["servers"].as_array().map(Vec::len),
        Some(2),
        "{verdict}"
    );
}

/// The next admin event named `name` on a raw dashboard WebSocket, as its
/// JSON array (`[name, …args]`); other events are skipped.
async fn admin_event(ws: &mut common::Ws, name: &str) -> serde_json::Value {
    let wait = async {
        loop {
            let text = common::ws_event(ws).await;
            let Some(json) = text.strip_prefix("42/admin,") else {
                continue;
            };
            let event: serde_json::Value = serde_json::from_str(json).unwrap();
            if event[0] == name {
                return event;
            }
        }
    };
    // server_stats keeps coming: only an overall deadline ends the wait.
    tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no {name} within 10 s"))
}

#[tokio::test]
async fn a_library_server_tells_data_changes_and_upgrades() {
    use serde_json::json;
    use socketgate::socketio::{SocketIo, SocketIoConfig};
    let io = SocketIo::new(SocketIoConfig::default());
    io.ns("/", |socket| {
        socket.on("name", |s, ev| {
            let name: String = ev.data().unwrap_or_default();
            s.set_data(json!({ "name": name }));
        });
    });
    socketgate::admin::install(&io, AdminConfig::default()).unwrap();
    // Installed twice, the second is refused rather than half-working.
    let err = socketgate::admin::install(&io, AdminConfig::default().namespace("/admin2"));
    assert!(err.is_err(), "a second monitor is refused");
    assert!(io.of("/admin2").is_none(), "nothing half-installed");
    // A production-mode one needs no monitor: another namespace serves it.
    let ops = AdminConfig::default()
        .namespace("/ops")
        .mode(AdminMode::Production);
    socketgate::admin::install(&io, ops).unwrap();
    let app = axum::Router::new().layer(io.layer());
    let (addr, _task) = common::serve_on(app, "127.0.0.1:0".parse().unwrap()).await;
    {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let mut ops = common::ws_connect(&url).await;
        assert!(common::ws_text(&mut ops).await.starts_with("0{"));
        common::ws_send(&mut ops, "40/ops,").await;
        assert!(common::ws_event(&mut ops).await.starts_with("40/ops,"));
        let config = common::ws_event(&mut ops).await;
        assert!(config.starts_with(r#"42/ops,["config","#), "{config}");
        assert!(!config.contains("ALL_EVENTS"), "{config}");
    }

    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let mut dashboard = common::ws_connect(&url).await;
    assert!(common::ws_text(&mut dashboard).await.starts_with("0{"));
    common::ws_send(&mut dashboard, "40/admin,").await;
    assert!(
        common::ws_event(&mut dashboard)
            .await
            .starts_with("40/admin,")
    );
    admin_event(&mut dashboard, "all_sockets").await;

    // A client that starts on polling, joins "/", then upgrades.
    let base = format!("http://{addr}/socket.io/?EIO=4&transport=polling");
    let http = common::http();
    let open = http.get(&base).send().await.unwrap().text().await.unwrap();
    let sid = common::sid_of(&open);
    let polling = format!("{base}&sid={sid}");
    let posted = http.post(&polling).body("40").send().await.unwrap();
    assert_eq!(posted.status(), 200);
    let connected = http
        .get(&polling)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let id: serde_json::Value =
        serde_json::from_str(connected.strip_prefix("40").expect("a CONNECT answer")).unwrap();
    let id = id["sid"].as_str().unwrap().to_owned();
    let seen = admin_event(&mut dashboard, "socket_connected").await;
    assert_eq!(seen[1]["id"], id.as_str());
    assert_eq!(seen[1]["transport"], "polling");

    let mut ws = common::ws_connect(&format!(
        "ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={sid}"
    ))
    .await;
    common::ws_send(&mut ws, "2probe").await;
    assert_eq!(common::ws_text(&mut ws).await, "3probe");
    common::ws_send(&mut ws, "5").await;
    let update = admin_event(&mut dashboard, "socket_updated").await;
    assert_eq!(
        update[1],
        json!({ "id": id, "nsp": "/", "transport": "websocket" })
    );

    common::ws_send(&mut ws, r#"42["name","Ada"]"#).await;
    let received = admin_event(&mut dashboard, "event_received").await;
    assert_eq!(received[1], "/");
    assert_eq!(received[2], id.as_str());
    assert_eq!(received[3], json!(["name", "Ada"]));
    let update = admin_event(&mut dashboard, "socket_updated").await;
    assert_eq!(
        update[1],
        json!({ "id": id, "nsp": "/", "data": { "name": "Ada" } })
    );
}

/// In a cluster where nobody opened the dashboard, a node's events publish
/// nothing for it on the bus; once a dashboard connects to another node,
/// it hears this node's events.
#[tokio::test]
async fn a_cluster_publishes_admin_events_only_while_a_dashboard_is_open() {
    use common::bus::Node;
    use socketgate::RedisConfig;
    let redis = common::redis::RedisServer::start().await;
    let one = Node::start(RedisConfig::new(redis.url()), common::sio::config(), None).await;
    let two = Node::start(RedisConfig::new(redis.url()), common::sio::config(), None).await;
    socketgate::admin::install(&one.server.io, AdminConfig::default()).unwrap();
    socketgate::admin::install(&two.server.io, AdminConfig::default()).unwrap();
    one.sees(2).await;
    let (mut ws, id) = one.server.ws_joined().await;
    let echo = |i: usize| format!(r#"42["message",{i}]"#);
    let before = one.bus.stats().published;
    // Spread over two seconds: the nodes look for dashboards meanwhile.
    for i in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
        common::ws_send(&mut ws, &echo(i)).await;
        assert!(
            common::ws_event(&mut ws)
                .await
                .starts_with("42[\"message-back\"")
        );
    }
    let published = one.bus.stats().published - before;
    // 50 event_received and 50 event_sent if they were published; the
    // looks for dashboards publish a request a second.
    assert!(published < 10, "{published} messages published");

    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        two.server.addr
    );
    let mut dashboard = common::ws_connect(&url).await;
    assert!(common::ws_text(&mut dashboard).await.starts_with("0{"));
    common::ws_send(&mut dashboard, "40/admin,").await;
    // Node one learns of it within about a second: until then its events
    // may not reach the dashboard, so the client keeps sending.
    let heard = async {
        let mut i = 1000;
        loop {
            common::ws_send(&mut ws, &echo(i)).await;
            let _ = common::ws_event(&mut ws).await;
            let got = tokio::time::timeout(
                std::time::Duration::from_millis(300),
                admin_event(&mut dashboard, "event_received"),
            )
            .await;
            if let Ok(event) = got {
                assert_eq!(event[2], id.as_str(), "{event}");
                return event;
            }
            i += 1;
        }
    };
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), heard)
        .await
        .expect("node one's events reach a dashboard on node two");
    assert_eq!(event[3][0], "message", "{event}");
}
