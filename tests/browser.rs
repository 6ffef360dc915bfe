//! The demo page in a real browser: headless Chromium (Debian's `chromium`,
//! driven by playwright-core from `tests/node/browser-e2e.mjs`) against the
//! `socketgate` binary, which the script starts and stops itself. Each
//! scenario runs with the official socket.io-client bundle and, with
//! `--no-bundle`, with the page's fallback mini-client. Screenshots go to
//! `target/e2e-artifacts/`.
//!
//! Needs `npm ci` in `tests/node` (playwright-core), `npm ci` in `client-demo`
//! (the bundle the binary serves) and `/usr/bin/chromium`. The tests run one at
//! a time: a lock here for `cargo test`, the `browser` test group in
//! `.config/nextest.toml` for nextest (one process per test).

mod common;

use std::path::Path;

/// Browsers are heavy on a 2-core machine: one scenario at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn scenario(name: &str, bundle: bool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's `chromium` package (apt-get install chromium)"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if bundle {
        let js = root.join("client-demo/node_modules/socket.io-client/dist/socket.io.min.js");
        assert!(
            js.is_file(),
            "{} is missing: run `npm ci` in client-demo/",
            js.display()
        );
    }
    let artifacts = root.join("target/e2e-artifacts");
    let artifacts = artifacts.to_str().expect("a UTF-8 path");
    let mut args = vec![name, env!("CARGO_BIN_EXE_socketgate"), artifacts];
    if !bundle {
        args.push("--no-bundle");
    }
    let verdict = common::run_node("browser-e2e.mjs", &args).await;
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["scenario"], name, "{verdict}");
    let kind = if bundle {
        "socket.io-client"
    } else {
        "mini-client"
    };
    assert_eq!(verdict["clientKind"], kind, "{verdict}");
}

#[tokio::test]
async fn upgrade_bundle() {
    scenario("upgrade", true).await;
}

#[tokio::test]
async fn upgrade_no_bundle() {
    scenario("upgrade", false).await;
}

#[tokio::test]
async fn polling_bundle() {
    scenario("polling", true).await;
}

#[tokio::test]
async fn polling_no_bundle() {
    scenario("polling", false).await;
}

#[tokio::test]
async fn chat_bundle() {
    scenario("chat", true).await;
}

#[tokio::test]
async fn chat_no_bundle() {
    scenario("chat", false).await;
}

#[tokio::test]
async fn recovery_bundle() {
    scenario("recovery", true).await;
}

#[tokio::test]
async fn recovery_no_bundle() {
    scenario("recovery", false).await;
}

#[tokio::test]
async fn restart_bundle() {
    scenario("restart", true).await;
}

#[tokio::test]
async fn restart_no_bundle() {
    scenario("restart", false).await;
}
