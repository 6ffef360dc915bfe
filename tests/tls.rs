//! HTTPS and WSS: the gateway binary with a certificate generated here
//! (rcgen), and socket.io-client 4.x trusting only that certificate, over
//! polling, WebSocket and polling then upgrade; the certificate is read
//! again on SIGHUP.

mod common;

use common::tls::{certificate, temp_dir};

use std::path::Path;
use std::process::Stdio;

/// Sends SIGHUP to process `pid`.
async fn sighup(pid: &str) {
    let sent = tokio::process::Command::new("kill")
        .args(["-HUP", pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
}

/// The gateway over TLS; returns it with its `https://` base URL.
async fn gateway(cert: &Path, key: &Path) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_socketgate"))
        .args(["--addr", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = common::listening(&mut child, "https").await;
    (child, format!("https://{addr}"))
}

async fn client(url: &str, ca: &Path, mode: &str) -> serde_json::Value {
    let out = common::spawn_node("tls-client.mjs", &[url, ca.to_str().unwrap(), mode])
        .wait_with_output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|_| {
        panic!(
            "no verdict: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test]
async fn socket_io_clients_connect_over_https_and_wss() {
    let dir = temp_dir("modes");
    let (cert, key) = certificate(&dir, "server");
    let (mut gateway, url) = gateway(&cert, &key).await;
    for (mode, transport) in [
        ("polling", "polling"),
        ("websocket", "websocket"),
        ("upgrade", "websocket"),
    ] {
        let v = client(&url, &cert, mode).await;
        assert_eq!(v["ok"], true, "{mode}: {v}");
        assert_eq!(v["transport"], transport, "{mode}: {v}");
    }
    // A client that does not trust the certificate is refused by TLS.
    let (other, _) = certificate(&dir, "stranger");
    let v = client(&url, &other, "polling").await;
    assert_eq!(v["ok"], false, "{v}");
    // Plain HTTP on the TLS port is not served.
    let plain = url.replace("https://", "http://");
    let res = common::http()
        .get(format!("{plain}/socket.io/?EIO=4&transport=polling"))
        .send()
        .await;
    assert!(
        res.is_err() || !res.unwrap().status().is_success(),
        "plain HTTP answered on the TLS port"
    );
    // SIGTERM: it drains and exits cleanly.
    common::sigterm(&gateway).await;
    let status = tokio::time::timeout(common::DEADLINE, gateway.wait())
        .await
        .expect("the gateway exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn sighup_reads_the_certificate_again() {
    let dir = temp_dir("reload");
    let (cert, key) = certificate(&dir, "first");
    let (gateway, url) = gateway(&cert, &key).await;
    assert_eq!(client(&url, &cert, "websocket").await["ok"], true);

    // New files in place, then SIGHUP: new connections get the new one.
    let (second_cert, second_key) = certificate(&dir, "second");
    std::fs::copy(&second_cert, &cert).unwrap();
    std::fs::copy(&second_key, &key).unwrap();
    let pid = gateway.id().unwrap().to_string();
    sighup(&pid).await;
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        if client(&url, &second_cert, "polling").await["ok"] == true {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not served after SIGHUP"
        );
    }
    // A broken file on the next SIGHUP keeps the certificate in use.
    std::fs::write(&cert, "not a certificate").unwrap();
    sighup(&pid).await;
    assert_eq!(client(&url, &second_cert, "polling").await["ok"], true);
}

#[tokio::test]
async fn missing_or_unmatched_files_stop_the_start_with_a_clear_error() {
    let dir = temp_dir("errors");
    let (cert, _) = certificate(&dir, "a");
    let (_, other_key) = certificate(&dir, "b");
    for (args, expect) in [
        (vec!["--tls-cert", cert.to_str().unwrap()], "tls_key"),
        (
            vec![
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                "/nonexistent/key.pem",
            ],
            "/nonexistent/key.pem",
        ),
        (
            vec![
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                other_key.to_str().unwrap(),
            ],
            "do not make a server configuration",
        ),
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_socketgate"))
            .args(["--addr", "127.0.0.1:0"])
            .args(&args)
            .output()
            .await
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}
