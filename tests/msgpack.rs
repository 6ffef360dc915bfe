//! The msgpack parser (`SocketIoConfig::parser(Parser::Msgpack)`) with the
//! real `socket.io-msgpack-parser` 3.0.2 from npm in socket.io-client
//! 4.8.x: the scenarios of tests/node/socketio-client.mjs (run with
//! `SIO_PARSER=msgpack`) and of tests/node/msgpack-client.mjs, in each
//! mode; and raw WebSockets sending what no parser writes.

mod common;

use futures_util::SinkExt;
use socketgate::socketio::{Parser, RecoveryConfig, SocketIoConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use common::sio::{SioServer, config, ended_on, run_scenario};
use common::{Ws, ws_next, ws_send};

const MSGPACK_CLIENT: &[(&str, &str)] = &[("SIO_PARSER", "msgpack")];

fn msgpack_config() -> SocketIoConfig {
    config().parser(Parser::Msgpack)
}

macro_rules! modes {
    ($($name:ident: $cfg:expr, $script:literal, $scenario:literal, $env:expr),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test]
                async fn polling() {
                    let v = run_scenario($cfg, $script, $scenario, "polling", $env).await;
                    assert_eq!(ended_on(&v), "polling");
                }

                #[tokio::test]
                async fn websocket() {
                    let v = run_scenario($cfg, $script, $scenario, "websocket", $env).await;
                    assert_eq!(ended_on(&v), "websocket");
                }

                #[tokio::test]
                async fn polling_then_upgrade() {
                    let v = run_scenario($cfg, $script, $scenario, "default", $env).await;
                    assert_eq!(ended_on(&v), "websocket");
                }
            }
        )*
    };
}

modes! {
    // `/` and `/custom` on one connection, events with nested binary both
    // ways, client acks answered with binary
    basic: msgpack_config(), "socketio-client.mjs", "basic", MSGPACK_CLIENT,
    // server emit-with-ack answered, answered with binary, timed out
    acks: msgpack_config(), "socketio-client.mjs", "acks", MSGPACK_CLIENT,
    // three clients: rooms, except, all-but-sender, volatile, binary
    // broadcasts (encoded once, shared by every recipient)
    rooms: msgpack_config(), "socketio-client.mjs", "rooms", MSGPACK_CLIENT,
    // events carry their offset; after a transport close the socket is
    // recovered with its room and the events it missed
    recovery: msgpack_config().recovery(RecoveryConfig::default()), "msgpack-client.mjs", "recovery", MSGPACK_CLIENT,
}

/// A client built with the other parser gets a connect_error naming the
/// server's parser, in time, and does not reconnect in a loop.
mod wrong_parser {
    use super::*;

    async fn json_client_on_msgpack_server(mode: &str) {
        let v = run_scenario(
            msgpack_config(),
            "msgpack-client.mjs",
            "wrong-parser",
            mode,
            &[],
        )
        .await;
        assert!(v["message"].as_str().unwrap().contains("msgpack"), "{v}");
    }

    async fn msgpack_client_on_json_server(mode: &str) {
        let env = [("SIO_SERVER_PARSER", "json")];
        let v = run_scenario(config(), "msgpack-client.mjs", "wrong-parser", mode, &env).await;
        assert!(v["message"].as_str().unwrap().contains("JSON"), "{v}");
    }

    #[tokio::test]
    async fn json_client_polling() {
        json_client_on_msgpack_server("polling").await;
    }

    #[tokio::test]
    async fn json_client_websocket() {
        json_client_on_msgpack_server("websocket").await;
    }

    #[tokio::test]
    async fn msgpack_client_polling() {
        msgpack_client_on_json_server("polling").await;
    }

    #[tokio::test]
    async fn msgpack_client_websocket() {
        msgpack_client_on_json_server("websocket").await;
    }
}

// ---- raw WebSockets -----------------------------------------------------

/// `{type: 0, nsp: "/"}`: a CONNECT to `/` without auth.
const CONNECT: &[u8] = b"\x82\xa4type\x00\xa3nsp\xa1/";

/// The next binary message; heartbeat pings on the way are answered.
async fn ws_bin(ws: &mut Ws) -> Vec<u8> {
    loop {
        match ws_next(ws).await {
            Some(WsMessage::Binary(b)) => return b.to_vec(),
            Some(WsMessage::Text(t)) if t.as_str() == "2" => ws_send(ws, "3").await,
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
}

async fn send_bin(ws: &mut Ws, bytes: &[u8]) {
    ws.send(WsMessage::binary(bytes.to_vec())).await.unwrap();
}

/// Whether the server closes the connection (pings answered meanwhile, an
/// engine.io close packet allowed).
async fn closes(ws: &mut Ws) -> bool {
    loop {
        match ws_next(ws).await {
            None => return true,
            Some(WsMessage::Text(t)) if t.as_str() == "2" => ws_send(ws, "3").await,
            Some(WsMessage::Text(t)) if t.as_str() == "1" => {}
            Some(other) => panic!("unexpected {other:?} before the close"),
        }
    }
}

/// A raw client joined to `/` in msgpack: the CONNECT answer and the
/// contract's `auth` event read.
async fn joined(server: &SioServer) -> Ws {
    let mut ws = server.ws_open().await;
    send_bin(&mut ws, CONNECT).await;
    let answer = ws_bin(&mut ws).await;
    // {type: 0, data: {sid: …}, nsp: "/"}
    assert!(
        answer.starts_with(b"\x83\xa4type\x00\xa4data\x81\xa3sid"),
        "{answer:x?}"
    );
    assert!(answer.ends_with(b"\xa3nsp\xa1/"), "{answer:x?}");
    // ["auth", {}]: undefined auth is an empty object
    assert_eq!(
        ws_bin(&mut ws).await,
        b"\x83\xa4type\x02\xa4data\x92\xa4auth\x80\xa3nsp\xa1/"
    );
    ws
}

#[tokio::test]
async fn malformed_msgpack_closes_only_that_session() {
    let server = SioServer::start(msgpack_config()).await;
    let mut good = joined(&server).await;
    let deep = {
        let mut v = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa2ev".to_vec();
        v.extend(std::iter::repeat_n(0x91u8, 200));
        v.push(0xc0);
        v
    };
    let garbage: [&[u8]; 6] = [
        // the reserved byte
        b"\xc1",
        // a map of 2^32 - 1 entries with nothing behind it
        b"\xdf\xff\xff\xff\xff",
        // nested deeper than the limit
        &deep,
        // not a packet: type 5 (there is no BINARY_EVENT in msgpack)
        b"\x83\xa4type\x05\xa3nsp\xa1/\xa4data\x91\xa2ev",
        // a map posing as a binary placeholder
        b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa2ev\x82\xac_placeholder\xc3\xa3num\x00",
        // trailing bytes
        b"\x82\xa4type\x00\xa3nsp\xa1/\x00",
    ];
    for bad in garbage {
        let mut ws = joined(&server).await;
        send_bin(&mut ws, bad).await;
        assert!(closes(&mut ws).await, "{bad:x?}");
    }
    // A text packet on a msgpack server (not a CONNECT: no answer).
    let mut ws = joined(&server).await;
    ws_send(&mut ws, "42[\"message\",1]").await;
    assert!(closes(&mut ws).await);

    // The first client was never disturbed: ["message", 1] comes back.
    send_bin(
        &mut good,
        b"\x83\xa4type\x02\xa4data\x92\xa7message\x01\xa3nsp\xa1/",
    )
    .await;
    assert_eq!(
        ws_bin(&mut good).await,
        b"\x83\xa4type\x02\xa4data\x92\xacmessage-back\x01\xa3nsp\xa1/"
    );
    common::until("the bad sessions to close", || {
        server.io.engine().session_count() == 1
    })
    .await;
}

#[tokio::test]
async fn a_json_connect_on_a_msgpack_server_is_answered_in_json_then_closed() {
    let server = SioServer::start(msgpack_config()).await;
    let mut ws = server.ws_open().await;
    ws_send(&mut ws, "40").await;
    assert_eq!(
        common::ws_text(&mut ws).await,
        r#"44{"message":"this server uses the socket.io msgpack parser, not JSON"}"#
    );
    assert!(closes(&mut ws).await);
}

/// `--parser msgpack` on the gateway binary: the relay echoes a binary
/// argument to a client with the npm msgpack parser; a JSON gateway refuses
/// that client with a clear connect_error.
#[tokio::test]
async fn the_gateway_binary_speaks_msgpack_when_told() {
    let (_gateway, addr, _log) =
        common::spawn_gateway(&["--addr", "127.0.0.1:0", "--parser", "msgpack"]).await;
    let verdict = common::run_node("parser-echo.mjs", &[&format!("http://{addr}")]).await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["bin"], serde_json::json!([1, 2, 3]), "{verdict}");

    let (_json, addr, _log) = common::spawn_gateway(&["--addr", "127.0.0.1:0"]).await;
    let child = common::spawn_node("parser-echo.mjs", &[&format!("http://{addr}")]);
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("connect_error"), "{stdout}");
}
