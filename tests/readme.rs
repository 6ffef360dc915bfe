//! The README's quickstart: its Rust program is examples/quickstart.rs word
//! for word, and its socket.io-client snippet, run with the real npm client,
//! talks to that program.

mod common;

#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

fn fenced(text: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}\n");
    text.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(code, _)| code.to_owned()))
        .collect()
}

#[test]
fn readme_shows_the_quickstart_example_as_it_is() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/quickstart.rs"
    ))
    .unwrap();
    assert!(
        fenced(&readme(), "rust").contains(&example),
        "README's rust block differs from examples/quickstart.rs"
    );
}

#[test]
fn readme_keeps_its_two_set_up_commands_and_ci_calls_the_test_one() {
    let readme = readme();
    assert!(readme.contains("cargo run --release "));
    assert!(readme.contains("bash tests/run.sh"));
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "bash tests/run.sh"));
}

#[tokio::test]
async fn readme_client_snippet_talks_to_the_quickstart_server() {
    // A free port for the example, which binds an address it is given.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = tokio::spawn(async move { quickstart::serve(&addr.to_string()).await });
    // wait until it listens
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "quickstart did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let js = fenced(&readme(), "js")
        .into_iter()
        .next()
        .expect("a js block");
    let js = js.replace("http://localhost:3000", &format!("http://{addr}"));
    let out = tokio::time::timeout(
        common::DEADLINE,
        tokio::process::Command::new("node")
            .args(["--input-type=module", "-e", &js])
            .current_dir(common::node_dir())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the snippet finished")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "hello, world");
    server.abort();
}

/// The nginx configuration the README shows is the one the cluster tests
/// run behind (tests/common/nginx.rs): every directive of its `location`
/// and `map` blocks, in order.
#[test]
fn readme_shows_the_nginx_config_the_tests_use() {
    let readme = readme();
    let block = fenced(&readme, "nginx")
        .into_iter()
        .next()
        .expect("an nginx block in the README");
    let shown: Vec<&str> = block.lines().map(str::trim).collect();
    for part in [common::nginx::CONNECTION_MAP, common::nginx::LOCATION] {
        let directives: Vec<&str> = part
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let start = shown
            .iter()
            .position(|l| *l == directives[0])
            .unwrap_or_else(|| panic!("README's nginx block lacks {:?}", directives[0]));
        let mut at = start;
        for d in directives {
            let found = shown[at..]
                .iter()
                .position(|l| *l == d)
                .unwrap_or_else(|| panic!("README's nginx block lacks {d:?} (in order)"));
            at += found + 1;
        }
    }
}
