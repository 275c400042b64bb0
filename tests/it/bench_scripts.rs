//! The benchmark's pgbench scripts (`bench/pgbench/*.sql`) are the statements
//! devx sends: for each scenario the request is made once against a real
//! server with every statement counted as slow (so devx keeps each text it
//! sent), and the script's statements must match those texts one for one,
//! a devx parameter (`$n`) standing for whatever expression the script puts
//! in its place (a pgbench variable, or an id computed from one). A script
//! that drifts from the code (a removed condition, another column list, a
//! statement devx no longer sends) fails here, so the baseline stays the
//! same work as devx does.
//!
//! `bench/partitions` runs here too, in its smoke mode, so that its SQL and
//! its steps keep working against the current schema.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use regex::Regex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::{Session, TestApp};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("an id in {v}")).to_string()
}

/// How many times devx sent each statement text so far.
fn sent(app: &TestApp) -> BTreeMap<String, u64> {
    app.state.db.stats().slow_queries.into_iter().map(|q| (q.sql, q.count)).collect()
}

/// The statements sent between two readings, each as often as it was sent,
/// leaving out the ones a background job sends on its own schedule (the
/// batched last-use writes).
fn sent_since(before: &BTreeMap<String, u64>, app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    for (sql, count) in sent(app) {
        let new = count - before.get(&sql).copied().unwrap_or(0);
        if sql.contains("last_activity = ") || sql.contains("last_used_at = ") {
            continue;
        }
        out.extend(std::iter::repeat_n(sql, new as usize));
    }
    out
}

/// A script's SQL statements: comments, meta-commands (`\set`), the
/// transaction's BEGIN and COMMIT (devx's driver sends those itself) and a
/// trailing `\gset` left out.
fn script_statements(text: &str) -> Vec<String> {
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("--") && !l.trim_start().starts_with('\\'))
        .map(|l| format!("{l}\n"))
        .collect();
    let gset = Regex::new(r"\\gset(\s+\w+)?\s*$").unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in body.lines() {
        let ends = line.trim_end().ends_with(';') || gset.is_match(line);
        let line = gset.replace(line, "");
        current.push_str(line.trim_end().trim_end_matches(';'));
        current.push(' ');
        if ends {
            let s = current.trim().to_string();
            current.clear();
            if s != "BEGIN" && s != "COMMIT" && !s.is_empty() {
                out.push(s);
            }
        }
    }
    assert!(current.trim().is_empty(), "an unterminated statement: {current}");
    out
}

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// A pattern for one of devx's statements: its text, each `$n` any
/// expression (balanced enough for these scripts: non-greedy).
fn pattern(devx_sql: &str) -> Regex {
    let param = Regex::new(r"\$\d+").unwrap();
    let squeezed = squeeze(devx_sql);
    let mut re = String::from("^");
    let mut last = 0;
    for m in param.find_iter(&squeezed) {
        re.push_str(&regex::escape(&squeezed[last..m.start()]));
        re.push_str("(.+?)");
        last = m.end();
    }
    re.push_str(&regex::escape(&squeezed[last..]));
    re.push('$');
    Regex::new(&re).unwrap()
}

/// The scripts checked so far, and how each that differs does.
#[derive(Default)]
struct Checks {
    checked: Vec<String>,
    drift: Vec<String>,
}

/// Every statement of the script matches one devx sent, and every one devx
/// sent is in the script, as many times; a difference is added to `drift`.
fn check_script(checks: &mut Checks, script: &str, devx: Vec<String>) {
    checks.checked.push(script.to_string());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/pgbench").join(script);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut unmatched: Vec<String> = devx;
    let mut extra = Vec::new();
    for statement in script_statements(&text) {
        let squeezed = squeeze(&statement);
        match unmatched.iter().position(|sql| pattern(sql).is_match(&squeezed)) {
            Some(i) => {
                unmatched.remove(i);
            }
            None => extra.push(statement),
        }
    }
    if !(extra.is_empty() && unmatched.is_empty()) {
        checks.drift.push(format!(
            "bench/pgbench/{script} differs from what devx sends.\n\nIn the script only:\n{}\n\nSent by devx only:\n{}",
            extra.join("\n\n"),
            unmatched.join("\n\n"),
        ));
    }
}

/// One request's statements.
async fn statements_of<F, Fut>(app: &TestApp, request: F) -> Vec<String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let before = sent(app);
    request().await;
    sent_since(&before, app)
}

struct Fixture {
    dev: Session,
    project: String,
    hot: String,
    cursor: String,
    desc_cursor: String,
    execution: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let dev = app.register("bench@example.com").await;
    let t = Some(dev.token.as_str());
    let (status, project) = app.post("/api/projects", t, json!({"name": "bench project"})).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let (_, hot) = app.post("/api/projects", t, json!({"name": "hot"})).await;
    for i in 0..25 {
        let (status, m) = app
            .post(
                &format!("/api/projects/{}/messages", id(&hot)),
                t,
                json!({"role": "user", "content": format!("m{i}"), "session_id": "s1"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{m}");
    }
    let (_, page) = app.get(&format!("/api/projects/{}/messages?limit=20", id(&hot)), t).await;
    let cursor = page["next_cursor"].as_str().unwrap_or_else(|| panic!("a next page: {page}")).to_string();
    let (_, page) = app.get(&format!("/api/projects/{}/messages?order=desc&limit=20", id(&hot)), t).await;
    let desc_cursor = page["next_cursor"].as_str().unwrap_or_else(|| panic!("a next page: {page}")).to_string();
    let (_, task) = app.post("/api/tasks", t, json!({"project_id": id(&project), "title": "logs"})).await;
    let (status, x) =
        app.post(&format!("/api/tasks/{}/executions", id(&task)), t, json!({"agent_type": "claude-code"})).await;
    assert_eq!(status, StatusCode::CREATED, "{x}");
    Fixture { project: id(&project), hot: id(&hot), cursor, desc_cursor, execution: id(&x), dev }
}

#[tokio::test]
async fn every_pgbench_script_sends_the_statements_devx_sends() {
    let app = TestApp::spawn_with(|c| c.database.slow_query_threshold = Duration::ZERO).await;
    let f = fixture(&app).await;
    let t = Some(f.dev.token.as_str());
    let mut checks = Checks::default();
    // The session's last use is written once by the batch; requests after it
    // send nothing for it.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let get = statements_of(&app, || async {
        let (status, body) = app.get(&format!("/api/projects/{}", f.project), t).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    })
    .await;
    check_script(&mut checks, "get_project.sql", get);

    let list = statements_of(&app, || async {
        let (status, body) = app.get("/api/projects?limit=20", t).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    })
    .await;
    check_script(&mut checks, "list_projects.sql", list);

    let page1 = statements_of(&app, || async {
        let (status, body) = app.get(&format!("/api/projects/{}/messages?limit=20", f.hot), t).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    })
    .await;
    check_script(&mut checks, "chat_page1.sql", page1);

    let later = statements_of(&app, || async {
        let path = format!("/api/projects/{}/messages?limit=20&cursor={}", f.hot, f.cursor);
        let (status, body) = app.get(&path, t).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    })
    .await;
    check_script(&mut checks, "chat_page5000.sql", later);

    let newest = statements_of(&app, || async {
        let (status, body) = app.get(&format!("/api/projects/{}/messages?order=desc&limit=20", f.hot), t).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    })
    .await;
    check_script(&mut checks, "chat_desc_page1.sql", newest);

    let earlier = statements_of(&app, || async {
        let path = format!("/api/projects/{}/messages?order=desc&limit=20&cursor={}", f.hot, f.desc_cursor);
        let (status, body) = app.get(&path, t).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    })
    .await;
    check_script(&mut checks, "chat_desc_page5000.sql", earlier);

    let create = statements_of(&app, || async {
        let (status, body) = app.post("/api/projects", t, json!({"name": "bench project"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    })
    .await;
    check_script(&mut checks, "create_project.sql", create);

    let lines: Vec<Value> = (0..100).map(|_| json!({"message": "bench log line"})).collect();
    let append = statements_of(&app, || async {
        let (status, body) =
            app.post(&format!("/api/executions/{}/logs", f.execution), t, json!({"lines": lines})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    })
    .await;
    check_script(&mut checks, "append_logs.sql", append.clone());
    check_script(&mut checks, "append_batch.sql", append);

    let (_, task) = app.post("/api/tasks", t, json!({"project_id": f.project, "title": "claim me"})).await;
    assert!(task["id"].is_string(), "{task}");
    let mut claimed = Value::Null;
    let claim = statements_of(&app, || async {
        let (status, body) = app.post("/api/tasks/claim", t, json!({"agent_type": "claude-code"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        claimed = body;
    })
    .await;
    check_script(&mut checks, "claim_next.sql", claim.clone());

    let execution =
        claimed["execution"]["id"].as_str().unwrap_or_else(|| panic!("an execution in {claimed}")).to_string();
    let complete = statements_of(&app, || async {
        let (status, body) = app.post(&format!("/api/executions/{execution}/complete"), t, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    })
    .await;
    let mut cycle = claim;
    cycle.extend(complete);
    check_script(&mut checks, "claim_complete.sql", cycle);
    assert!(checks.drift.is_empty(), "{}", checks.drift.join("\n\n----\n\n"));
    // Every script is one of these: a new one gets its scenario here.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/pgbench");
    let mut scripts: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    scripts.sort();
    checks.checked.sort();
    assert_eq!(scripts, checks.checked, "every bench/pgbench script is checked against devx");
}

/// `bench/partitions` in smoke mode (10,000 rows, two short rounds, on the
/// test server in a scratch database of its own): every step runs (load,
/// the audited updates, the drop, the batched DELETE and VACUUM, putting the
/// month back between rounds), the report has every figure, and the scratch
/// database is gone afterwards.
#[tokio::test]
async fn the_partition_benchmark_runs_in_smoke_mode() {
    let server = crate::harness::server_config();
    let host = match server.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "127.0.0.1".to_string(),
    };
    let port = server.get_ports().first().copied().unwrap_or(5432);
    let user = server.get_user().unwrap_or("postgres").to_string();
    // Named like the harness's databases, so a leftover is swept with them.
    let db = format!("devx_t_{}_partbench", std::process::id());
    let out = tempfile::tempdir().unwrap();
    let results = out.path().join("partitions.md");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/partitions");
    let mut cmd = crate::harness::clean_command(&script);
    cmd.env("BENCH_PART_ROWS", "10000")
        .env("BENCH_REPEAT", "2")
        .env("BENCH_PART_DURATION", "1")
        .env("BENCH_PART_CLIENTS", "2")
        .env("BENCH_PART_PROJECTS", "10")
        .env("BENCH_PART_MONTHS", "2")
        .env("BENCH_PART_SERVER", "shared")
        .env("BENCH_PART_DB", &db)
        .env("BENCH_PART_RESULTS", &results)
        .env("BENCH_PART_OUT", out.path().join("out"))
        .env("BENCH_DEVX_BIN", env!("CARGO_BIN_EXE_devx"))
        .env("PGHOST", host)
        .env("PGPORT", port.to_string())
        .env("PGUSER", user);
    if let Some(password) = server.get_password() {
        cmd.env("PGPASSWORD", String::from_utf8_lossy(password).into_owned());
    }
    let run = tokio::process::Command::from(cmd).output().await.expect("bash runs bench/partitions");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bench/partitions failed:\n{stderr}");
    let report = std::fs::read_to_string(&results).expect("the report is written");
    for expected in [
        "| 10,000 | ",
        "partitioned: detach + drop the partition",
        "unpartitioned: batched DELETE",
        "unpartitioned: the VACUUM after it",
        "2 rounds per size",
    ] {
        assert!(report.contains(expected), "{expected:?} in:\n{report}");
    }
    assert!(!report.contains("n/a"), "every figure was measured:\n{report}");
    // Both tables lost the same month's rows, and the drop's row count is a
    // count, not a placeholder.
    let removed: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("| ") && (l.contains("detach + drop") || l.contains("batched DELETE")))
        .map(|l| l.split(" | ").nth(2).unwrap_or_default())
        .collect();
    assert_eq!(removed.len(), 2, "{report}");
    assert_eq!(removed[0], removed[1], "the same rows go both ways:\n{report}");
    assert!(removed[0].replace(',', "").parse::<u64>().is_ok_and(|n| n > 1000), "{report}");
    let admin = crate::harness::admin_client().await;
    let left: i64 =
        admin.query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&db]).await.unwrap().get(0);
    assert_eq!(left, 0, "the scratch database is dropped");
}
