//! README's "Try it" section runs as written, twice in a row, on a fresh
//! database: its shell block is taken from README.md and run by bash
//! against a real server (only the address and `cargo run --release --`,
//! which becomes the test's devx binary, are replaced). Every HTTP call is
//! recorded by a `curl` wrapper that writes its status to stderr, so the
//! test sees each answer without changing what the commands print or
//! capture.

use std::collections::HashMap;

use reqwest::StatusCode;

use crate::app::TestApp;
use crate::harness::clean_command;

/// The first ```sh block after the "## Try it" heading.
fn try_it_block() -> String {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("\n## Try it").expect("README has a \"Try it\" section")..];
    let start = section.find("```sh\n").expect("a sh block in \"Try it\"") + "```sh\n".len();
    let end = section[start..].find("\n```").expect("the block ends");
    section[start..start + end].to_string()
}

/// What one run printed: each HTTP call as (url, status), the variables it
/// set, the exit status of its last command and its stderr.
#[derive(Debug)]
struct Run {
    calls: Vec<(String, u16)>,
    vars: HashMap<String, String>,
    last_status: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn status_of(&self, path: &str) -> Vec<u16> {
        self.calls.iter().filter(|(url, _)| url.contains(path)).map(|(_, s)| *s).collect()
    }
}

async fn run(app: &TestApp, script: &str) -> Run {
    let prelude = "set -o pipefail\n\
                   curl() { command curl -w '%{stderr}HTTP %{http_code} %{url_effective}\\n' \"$@\"; }\n";
    let epilogue = "\nstatus=$?\nprintf '\\nVAR TOKEN=%s\\nVAR KEY=%s\\nVAR CURSOR=%s\\nVAR STATUS=%s\\n' \
                    \"$TOKEN\" \"$KEY\" \"$CURSOR\" \"$status\"\n";
    let mut cmd = clean_command("bash");
    cmd.arg("-c").arg(format!("{prelude}{script}{epilogue}")).env("DATABASE_URL", app.db.url());
    let out = tokio::process::Command::from(cmd).output().await.expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the block ran to its end: {stdout}\n{stderr}");
    let calls = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("HTTP "))
        .map(|l| {
            let (status, url) = l.split_once(' ').unwrap();
            (url.to_string(), status.parse().unwrap())
        })
        .collect();
    let vars = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("VAR "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<HashMap<_, _>>();
    let last_status = vars["STATUS"].parse().unwrap();
    Run { calls, vars, last_status, stdout, stderr }
}

#[tokio::test]
async fn the_try_it_section_runs_twice_as_written() {
    let app = TestApp::spawn().await;
    let block = try_it_block();
    assert!(block.contains("localhost:8080") && block.contains("cargo run --release --"), "{block}");
    let script = block
        .replace("localhost:8080", &format!("127.0.0.1:{}", app.addr.port()))
        .replace("cargo run --release --", env!("CARGO_BIN_EXE_devx"));

    // The filter example names a category and a technology that exist, so
    // it shows templates.
    let filter = block
        .split(['\'', '"'])
        .find(|part| part.contains("category="))
        .expect("a filter example")
        .replace("localhost:8080", "");
    let (status, body) = app.get(&filter, None).await;
    assert_eq!(status, StatusCode::OK, "{filter}: {body}");
    assert!(!body["items"].as_array().unwrap().is_empty(), "{filter} finds a template: {body}");

    let first = run(&app, &script).await;
    let second = run(&app, &script).await;
    for (n, r) in [(1, &first), (2, &second)] {
        assert!(r.calls.len() >= 8, "run {n}: every call recorded: {r:#?}");
        for (url, status) in &r.calls {
            let expected_refusal = url.ends_with("/api/auth/register") && n == 2 && *status == 409;
            assert!((200..300).contains(status) || expected_refusal, "run {n}: {url} answered {status}: {r:#?}");
        }
        for var in ["TOKEN", "KEY", "CURSOR"] {
            let value = &r.vars[var];
            assert!(!value.is_empty() && value != "null", "run {n}: {var} is {value:?}: {r:#?}");
        }
        assert!(r.vars["KEY"].starts_with("devx_"), "run {n}: {r:#?}");
        assert!(r.stdout.contains("\"status\":\"ok\""), "run {n}: health: {r:#?}");
        assert!(r.stdout.contains("\"slug\":\"fastapi-service\""), "run {n}: the template: {r:#?}");
    }
    // The first run registers and creates the admin; the second logs in, and
    // `users create` says the admin exists (its only failure).
    assert_eq!(first.status_of("/api/auth/register"), [201]);
    assert!(first.status_of("/api/auth/login").is_empty());
    assert_eq!(first.last_status, 0, "{first:#?}");
    assert!(first.stdout.contains("created admin admin@example.com"), "{first:#?}");
    assert_eq!(second.status_of("/api/auth/register"), [409]);
    assert_eq!(second.status_of("/api/auth/login"), [200]);
    assert_ne!(second.last_status, 0);
    assert!(second.stderr.contains("already exists"), "{second:#?}");
    // Both tokens are live sessions of the same account.
    for r in [&first, &second] {
        let (status, me) = app.get("/api/auth/me", Some(&r.vars["TOKEN"])).await;
        assert_eq!((status, me["email"].as_str()), (StatusCode::OK, Some("ada@example.com")), "{me}");
    }
}
