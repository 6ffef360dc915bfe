//! The binary's settings: a TOML file, `SOCKETGATE_*` variables and flags,
//! in that rising order of precedence over the defaults; bad files refused
//! with the key and the line; `config default` and `config check`; the log
//! format.

mod common;

use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

fn socketgate() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_socketgate"));
    cmd.env("NO_COLOR", "1").kill_on_drop(true);
    // The test runner's own settings must not leak into the child.
    for (key, _) in std::env::vars() {
        if key.starts_with("SOCKETGATE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("socketgate-settings-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("socketgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the binary, waits for its listening line, and returns the
/// handshake it answers (the engine settings in effect).
async fn handshake_of(mut cmd: tokio::process::Command) -> (Value, tokio::process::Child) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let addr = common::listening(&mut child, "http").await;
    let open = common::get_text(format!("http://{addr}/socket.io/?EIO=4&transport=polling")).await;
    (serde_json::from_str(&open[1..]).unwrap(), child)
}

#[tokio::test]
async fn flags_beat_variables_which_beat_the_file_which_beats_the_defaults() {
    let file = temp_file(
        "precedence",
        "addr = \"127.0.0.1:0\"\nping_interval_ms = 1111\nping_timeout_ms = 2222\nmax_payload = 3333\n",
    );
    let mut cmd = socketgate();
    cmd.arg("--config")
        .arg(&file)
        .env("SOCKETGATE_PING_TIMEOUT_MS", "4444")
        .env("SOCKETGATE_MAX_PAYLOAD", "6666")
        .args(["--max-payload", "5555"]);
    let (open, _child) = handshake_of(cmd).await;
    assert_eq!(open["pingInterval"], 1111, "from the file: {open}");
    assert_eq!(
        open["pingTimeout"], 4444,
        "the variable over the file: {open}"
    );
    assert_eq!(
        open["maxPayload"], 5555,
        "the flag over the variable: {open}"
    );

    // The file named by SOCKETGATE_CONFIG, and a default nobody set.
    let mut cmd = socketgate();
    cmd.env("SOCKETGATE_CONFIG", &file);
    let (open, _child) = handshake_of(cmd).await;
    assert_eq!(open["pingTimeout"], 2222, "{open}");
    let mut cmd = socketgate();
    cmd.args(["--addr", "127.0.0.1:0"]);
    let (open, _child) = handshake_of(cmd).await;
    assert_eq!(open["pingInterval"], 25000, "the default: {open}");
}

#[tokio::test]
async fn a_bad_file_is_refused_with_the_key_and_the_line() {
    for (text, key, line) in [
        (
            "addr = \"127.0.0.1:0\"\nping_intervall_ms = 5\n",
            "ping_intervall_ms",
            "line 2",
        ),
        (
            "\n\nping_timeout_ms = \"soon\"\n",
            "ping_timeout_ms",
            "line 3",
        ),
        ("allow_eio3 = \"yes\"\n", "allow_eio3", "line 1"),
    ] {
        let file = temp_file(key, text);
        let out = socketgate()
            .arg("--config")
            .arg(&file)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(line), "{stderr}");
        assert!(stderr.contains(key), "{stderr}");
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
        // `config check` says the same, without starting.
        let out = socketgate()
            .args(["config", "check"])
            .arg(&file)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains(key));
    }
    // A value out of range, from any source, names its key.
    let out = socketgate()
        .args(["--ping-interval-ms", "0"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ping_interval_ms"));
}

#[tokio::test]
async fn config_default_prints_a_file_that_checks_and_equals_the_defaults() {
    let out = socketgate()
        .args(["config", "default"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        socketgate::settings::Settings::from_toml(&text).unwrap(),
        socketgate::settings::Settings::defaults()
    );
    for info in socketgate::settings::Settings::catalogue() {
        assert!(text.contains(&info.flag), "{} is missing", info.flag);
        assert!(text.contains(&info.env), "{} is missing", info.env);
    }
    let file = temp_file("default", &text);
    let out = socketgate()
        .args(["config", "check"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
}

#[tokio::test]
async fn the_log_is_json_when_asked_and_never_coloured_off_a_terminal() {
    for format in ["json", "text"] {
        let mut child = socketgate()
            .args(["--addr", "127.0.0.1:0", "--log-format", format])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut log = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let line = tokio::time::timeout(common::DEADLINE, async {
            while let Some(line) = log.next_line().await.unwrap() {
                if line.contains("listening on http://") {
                    return line;
                }
            }
            panic!("the gateway exited before listening");
        })
        .await
        .unwrap();
        assert!(!line.contains('\u{1b}'), "an escape code in {line:?}");
        if format == "json" {
            let json: Value = serde_json::from_str(&line).expect("one JSON object per line");
            assert_eq!(json["level"], "INFO", "{json}");
            assert!(
                json["fields"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("listening on http://"),
                "{json}"
            );
        } else {
            assert!(line.contains(" INFO "), "{line}");
        }
        let _ = child.start_kill();
    }
}

/// The README's settings table lists every setting with its flag and
/// variable, and the defaults `config default` prints.
#[test]
fn the_readme_lists_every_setting() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let defaults = toml::Table::try_from(socketgate::settings::Settings::defaults()).unwrap();
    for info in socketgate::settings::Settings::catalogue() {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", info.flag)))
            .unwrap_or_else(|| panic!("README has no settings row for {}", info.flag));
        assert!(row.contains(&format!("`{}`", info.env)), "{row}");
        assert!(row.contains(&format!("`{}`", info.key)), "{row}");
        if let Some(value) = defaults.get(&info.key) {
            let shown: Vec<String> = match value {
                toml::Value::String(s) => vec![s.clone()],
                toml::Value::Array(a) if a.is_empty() => vec!["none".to_owned()],
                toml::Value::Array(a) => a
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect(),
                other => vec![other.to_string()],
            };
            for shown in shown {
                assert!(
                    row.contains(&shown),
                    "{row} does not show the default {shown}"
                );
            }
        }
    }
}
