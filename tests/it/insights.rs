//! Database insights (`devx db insights`, `GET /api/admin/insights`) against
//! real trouble made in a test database, and the Prometheus metrics at
//! `GET /metrics`.

use std::future::Future;
use std::time::Duration;

use devx::config::Secret;
use devx::diagnostics::insights::{self, Insight, Report, Severity, Thresholds};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::app::{self, TestApp, assert_problem};
use crate::harness::{PrivateServer, TestDb, devx_command};
use crate::outage;

async fn report(db: &TestDb, limits: &Thresholds) -> Report {
    let pool = app::pool(db).await;
    let client = pool.client().await.unwrap();
    let report = insights::report(&client, limits).await.expect("insights run");
    drop(client);
    pool.close();
    report
}

fn find<'a>(report: &'a Report, kind: &str, object: &str) -> Option<&'a Insight> {
    report.findings.iter().find(|f| f.kind == kind && f.object == object)
}

/// Runs insights until `ready` holds (statistics reach the views a moment
/// after the backend that made them reports them), for at most 20 seconds.
async fn report_until(db: &TestDb, limits: &Thresholds, ready: impl Fn(&Report) -> bool) -> Report {
    let mut last = None;
    for _ in 0..100 {
        let r = report(db, limits).await;
        if ready(&r) {
            return r;
        }
        last = Some(r);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("never seen; last report:\n{}", last.unwrap().render_text());
}

async fn with_timeout<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f).await.unwrap_or_else(|_| panic!("{what} timed out"))
}

#[tokio::test]
async fn duplicate_and_unused_indexes_and_full_sequences_are_reported_with_advice() {
    let db = TestDb::migrated().await;
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE devx.insight_probe (id bigint PRIMARY KEY, a int, b int, c int);
             CREATE INDEX insight_probe_a_idx ON devx.insight_probe (a);
             CREATE INDEX insight_probe_a_b_idx ON devx.insight_probe (a, b);
             CREATE INDEX insight_probe_c_idx ON devx.insight_probe (c);
             CREATE INDEX insight_probe_c_again_idx ON devx.insight_probe (c);
             CREATE INDEX insight_probe_b_idx ON devx.insight_probe (b);
             CREATE INDEX insight_probe_small_idx ON devx.insight_probe (a) WHERE a < 0;
             -- Big enough (over 1 MB) for an unused index to be worth reporting.
             INSERT INTO devx.insight_probe SELECT g, g % 1000, g, g % 7 FROM generate_series(1, 60000) g;
             CREATE SEQUENCE devx.insight_probe_seq MAXVALUE 100;
             SELECT setval('devx.insight_probe_seq', 80);
             CREATE TABLE devx.insight_serial (id serial PRIMARY KEY);
             SELECT setval('devx.insight_serial_id_seq', 2000000000);",
        )
        .await
        .unwrap();

    let r = report(&db, &Thresholds::default()).await;

    let prefix = find(&r, "duplicate-index", "devx.insight_probe_a_idx").expect("a prefix of another index");
    assert_eq!(prefix.severity, Severity::Warning);
    assert!(prefix.detail.contains("devx.insight_probe_a_b_idx"), "{prefix:?}");
    assert!(prefix.advice.contains("DROP INDEX CONCURRENTLY devx.insight_probe_a_idx"), "{prefix:?}");
    let twin = find(&r, "duplicate-index", "devx.insight_probe_c_again_idx").expect("the newer of two twins");
    assert!(twin.detail.contains("devx.insight_probe_c_idx"), "{twin:?}");
    assert!(find(&r, "duplicate-index", "devx.insight_probe_c_idx").is_none(), "only one twin is redundant");
    assert!(find(&r, "duplicate-index", "devx.insight_probe_a_b_idx").is_none(), "the covering index stays");
    assert!(find(&r, "duplicate-index", "devx.insight_probe_b_idx").is_none(), "(b) is not a prefix of (a, b)");
    assert!(
        !r.findings.iter().any(|f| f.kind == "duplicate-index" && !f.object.contains("insight_probe")),
        "the migrations themselves declare no duplicate index: {}",
        r.render_text()
    );

    let unused = find(&r, "unused-index", "devx.insight_probe_b_idx").expect("an index never scanned");
    assert!(unused.detail.contains("never scanned") && unused.detail.contains("MB"), "{unused:?}");
    assert!(find(&r, "unused-index", "devx.insight_probe_small_idx").is_none(), "too small to matter");
    assert!(unused.advice.contains("DROP INDEX CONCURRENTLY devx.insight_probe_b_idx"), "{unused:?}");
    assert!(find(&r, "unused-index", "devx.insight_probe_pkey").is_none(), "primary keys enforce something");
    assert!(
        !r.findings
            .iter()
            .any(|f| f.kind == "unused-index" && (f.object.ends_with("_pkey") || f.object.ends_with("_key"))),
        "indexes behind keys are not reported as unused"
    );

    let seq = find(&r, "sequence-near-limit", "devx.insight_probe_seq").expect("80 of 100");
    assert!(seq.detail.contains("80.0%"), "{seq:?}");
    assert!(seq.advice.contains("ALTER SEQUENCE devx.insight_probe_seq"), "{seq:?}");
    let serial = find(&r, "sequence-near-limit", "devx.insight_serial_id_seq").expect("an int4 column near its end");
    assert!(serial.detail.contains("devx.insight_serial.id"), "{serial:?}");
    assert!(serial.advice.contains("bigint"), "{serial:?}");

    if r.statements.available {
        assert!(matches!(r.statements.state, "enabled" | "created"));
    } else {
        let missing = r.findings.iter().find(|f| f.kind == "pg-stat-statements-unavailable").expect("says so");
        assert!(missing.advice.contains("shared_preload_libraries = 'pg_stat_statements'"), "{missing:?}");
        assert!(missing.advice.contains("CREATE EXTENSION pg_stat_statements"), "{missing:?}");
        assert!(r.render_text().contains("not available"));
    }
    assert!(r.connections.by_state.iter().map(|s| s.count).sum::<i64>() >= 1, "this connection at least");
    assert!(r.connections.server_max > 0);
    assert!(!r.cache_hit.shared_buffers.is_empty());
    assert!(r.warnings() >= 3);
}

/// pg_stat_statements where devx manages the server: the embedded private
/// server preloads it, and insights creates the extension and reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_queries_come_from_pg_stat_statements_on_the_embedded_server() {
    let Some(binaries) = devx::embedded::find_binaries() else {
        eprintln!("skipped: no PostgreSQL server binaries on this machine");
        return;
    };
    if !binaries.pg_stat_statements_available() {
        eprintln!("skipped: pg_stat_statements is not installed on this machine");
        return;
    }
    let server = PrivateServer::start("devx-insights-").await.expect("the binaries were found");
    let result = async {
        let pool = devx::db::Db::connect(&server.config.database, &server.server.target).await.expect("pool connects");
        let client = pool.client().await.unwrap();
        let limits = Thresholds { slow_query_min_calls: 3, ..Thresholds::default() };
        let first = insights::report(&client, &limits).await.unwrap();
        assert_eq!(first.statements.state, "created", "{:?}", first.statements);
        for _ in 0..3 {
            devx::db::Queryable::query(&client, "SELECT pg_sleep(0.025)", &[]).await.unwrap();
        }
        let r = insights::report(&client, &limits).await.unwrap();
        assert_eq!(r.statements.state, "enabled");
        assert!(r.statements.available && r.statements.version.is_some());
        assert!(!r.findings.iter().any(|f| f.kind == "pg-stat-statements-unavailable"));
        let sleep = r.slow_queries.iter().find(|q| q.query.contains("pg_sleep")).expect("the slow statement");
        assert_eq!(sleep.calls, 3);
        assert!(sleep.mean_ms >= 25.0, "{sleep:?}");
        assert!(r.frequent_queries.iter().all(|q| q.calls >= 1));
        let slow = r.findings.iter().find(|f| f.kind == "slow-query").expect("a slow-query finding");
        assert_eq!(slow.object, format!("queryid {}", sleep.queryid.unwrap()));
        assert!(slow.advice.contains("EXPLAIN (ANALYZE, BUFFERS)"), "{slow:?}");
        assert!(r.render_text().contains("slowest by mean time:"));
        drop(client);
        pool.close();
    };
    let outcome = tokio::time::timeout(Duration::from_secs(60), result).await;
    server.stop().await;
    outcome.expect("in time");
}

#[tokio::test]
async fn tables_read_by_sequential_scans_and_bloated_tables_are_reported() {
    let db = TestDb::migrated().await;
    {
        let worker = db.client().await;
        worker
            .batch_execute(
                "CREATE TABLE devx.insight_scanned (id int, label text) WITH (autovacuum_enabled = false);
                 INSERT INTO devx.insight_scanned SELECT g, 'row ' || g FROM generate_series(1, 30000) g;
                 DELETE FROM devx.insight_scanned WHERE id <= 10000;",
            )
            .await
            .unwrap();
        for _ in 0..12 {
            worker.query("SELECT count(*) FROM devx.insight_scanned WHERE label = 'row 20000'", &[]).await.unwrap();
        }
        // Dropping the connection ends its backend, which reports its statistics.
    }
    let r = report_until(&db, &Thresholds::default(), |r| {
        find(r, "seq-scans", "devx.insight_scanned").is_some()
            && find(r, "table-bloat", "devx.insight_scanned").is_some()
    })
    .await;
    let scans = find(&r, "seq-scans", "devx.insight_scanned").unwrap();
    assert_eq!(scans.severity, Severity::Warning);
    assert!(scans.detail.contains("sequential scans"), "{scans:?}");
    assert!(scans.advice.contains("CREATE INDEX CONCURRENTLY"), "{scans:?}");
    let bloat = find(&r, "table-bloat", "devx.insight_scanned").unwrap();
    assert!(bloat.detail.contains("estimate"), "the ratio is said to be an estimate: {bloat:?}");
    assert!(bloat.advice.contains("VACUUM (ANALYZE) devx.insight_scanned"), "{bloat:?}");
    assert!(find(&r, "seq-scans", "devx.users").is_none(), "small tables are cheap to scan");
}

#[tokio::test]
async fn blocked_and_long_running_queries_name_their_pids() {
    let db = TestDb::migrated().await;
    let holder = db.client().await;
    holder
        .batch_execute(
            "CREATE TABLE devx.insight_lock (id int PRIMARY KEY, n int);
             INSERT INTO devx.insight_lock VALUES (1, 0);",
        )
        .await
        .unwrap();
    let holder_pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    holder.batch_execute("BEGIN; UPDATE devx.insight_lock SET n = n + 1 WHERE id = 1;").await.unwrap();

    let waiter = db.client().await;
    let waiter_pid: i32 = waiter.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    let blocked_update = tokio::spawn(async move {
        waiter.execute("UPDATE devx.insight_lock SET n = n + 10 WHERE id = 1", &[]).await.map(|_| waiter)
    });

    let r = with_timeout(
        "blocked detection",
        report_until(&db, &Thresholds::default(), |r| r.blocked.iter().any(|b| b.pid == waiter_pid)),
    )
    .await;
    let blocked = r.blocked.iter().find(|b| b.pid == waiter_pid).unwrap();
    assert_eq!(blocked.blocked_by, vec![holder_pid]);
    assert!(blocked.query.contains("n + 10"), "{blocked:?}");
    assert_eq!(blocked.blocker_state.as_deref(), Some("idle in transaction"));
    let finding = find(&r, "blocked-query", &format!("pid {waiter_pid}")).expect("a finding for the blocked pid");
    assert_eq!(finding.severity, Severity::Warning);
    assert!(finding.detail.contains(&holder_pid.to_string()), "{finding:?}");
    assert!(finding.advice.contains(&format!("pg_terminate_backend({holder_pid})")), "{finding:?}");
    let text = r.render_text();
    assert!(text.contains(&format!("pid {waiter_pid} waits")), "{text}");

    // With a short threshold the waiting statement is long-running and the
    // holder is idle in its transaction.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = report(&db, &Thresholds::new(Duration::from_millis(200))).await;
    assert!(find(&r, "long-running-query", &format!("pid {waiter_pid}")).is_some(), "{}", r.render_text());
    let idle = find(&r, "idle-in-transaction", &format!("pid {holder_pid}")).expect("the holder");
    assert!(idle.advice.contains("idle_in_transaction_session_timeout"), "{idle:?}");
    assert!(r.long_running.iter().any(|q| q.pid == waiter_pid && q.seconds >= 0.2));
    // ...and not with the default minute.
    let r = report(&db, &Thresholds::default()).await;
    assert!(r.long_running.is_empty(), "{:?}", r.long_running);

    holder.batch_execute("ROLLBACK").await.unwrap();
    let waiter = with_timeout("the blocked update", blocked_update).await.unwrap().expect("the update ran");
    let n: i32 = waiter.query_one("SELECT n FROM devx.insight_lock", &[]).await.unwrap().get(0);
    assert_eq!(n, 10);
}

#[tokio::test]
async fn the_insights_api_is_for_admins() {
    let app = TestApp::spawn().await;
    let user = app.register("dev@example.com").await;
    let admin = app.admin("ops@example.com").await;

    let (status, body) = app.get("/api/admin/insights", None).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.get("/api/admin/insights", Some(&user.token)).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);

    let (status, body) = app.get("/api/admin/insights", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["database"], app.db.name());
    assert_eq!(body["long_query_seconds"], 60.0);
    for key in ["slow_queries", "frequent_queries", "long_running", "blocked", "findings"] {
        assert!(body[key].is_array(), "{key}: {body}");
    }
    assert!(body["connections"]["by_state"].as_array().unwrap().iter().any(|s| s["state"] == "active"));
    assert!(body["cache_hit"]["shared_buffers"].is_string());
    assert!(body["statements"]["state"].is_string());
    for f in body["findings"].as_array().unwrap() {
        for key in ["kind", "severity", "object", "detail", "advice"] {
            assert!(f[key].as_str().is_some_and(|s| !s.is_empty()), "{key} in {f}");
        }
    }

    let (status, body) = app.get("/api/admin/insights?long_query_seconds=5", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["long_query_seconds"], 5.0);
    let (status, body) = app.get("/api/admin/insights?long_query_seconds=-1", Some(&admin.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
}

async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String) {
    let resp = app.request(Method::GET, "/metrics", token).send().await.unwrap();
    let status = resp.status();
    if status == StatusCode::OK {
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    }
    (status, resp.text().await.unwrap())
}

/// The value of the series whose line starts with `series ` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_mirror_the_database_layer() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/templates/axum-service", None).await.0, StatusCode::OK);
    }
    assert_eq!(app.get("/api/templates/no-such-template", None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/nothing-here", None).await.0, StatusCode::NOT_FOUND);
    devx::metrics::record_retention_deleted("devx.insights_test_rows", 3);

    let (status, text) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        value(&text, r#"devx_http_requests_total{method="GET",route="/api/templates/{slug}",status="200"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"devx_http_requests_total{method="GET",route="/api/templates/{slug}",status="404"}"#),
        Some(1.0)
    );
    assert!(text.contains(r#"devx_http_request_duration_seconds_bucket{method="GET",route="/api/templates/{slug}",status="200",le="+Inf"} 3"#), "{text}");
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(
        !text.contains("axum-service") && !text.contains("no-such-template") && !text.contains("nothing-here"),
        "raw paths never become labels"
    );

    for gauge in ["devx_db_pool_max_size", "devx_db_pool_size", "devx_db_pool_available", "devx_db_pool_waiting"] {
        assert!(value(&text, gauge).is_some(), "{gauge} in {text}");
    }
    assert_eq!(value(&text, "devx_db_pool_max_size"), Some(8.0));
    assert!(value(&text, "devx_db_queries_total").unwrap() > 0.0);
    assert!(value(&text, "devx_db_query_errors_total").is_some());
    assert!(value(&text, "devx_db_slow_queries_total").is_some());
    assert!(value(&text, "devx_db_query_duration_seconds_count").unwrap() > 0.0);
    assert!(text.contains(r#"devx_db_query_duration_seconds_bucket{le="0.0016"}"#), "{text}");
    assert_eq!(value(&text, "devx_database_up"), Some(1.0));
    assert_eq!(value(&text, "devx_migrations_pending"), Some(0.0));
    assert_eq!(value(&text, r#"devx_tasks{status="pending"}"#), Some(0.0));
    assert_eq!(value(&text, r#"devx_retention_deleted_rows_total{table="devx.insights_test_rows"}"#), Some(3.0));
    assert!(value(&text, "process_resident_memory_bytes").unwrap() > 0.0);
    assert!(text.contains(r#"devx_build_info{version=""#));

    // A second scrape sees the first one counted, under its own route.
    let (_, text) = scrape(&app, None).await;
    assert_eq!(value(&text, r#"devx_http_requests_total{method="GET",route="/metrics",status="200"}"#), Some(1.0));

    // Not an API route: kept out of the OpenAPI document.
    let (_, doc) = app.get("/api/openapi.json", None).await;
    assert!(doc["paths"].get("/metrics").is_none());
}

#[tokio::test]
async fn a_scrape_answers_while_the_database_is_down() {
    let app = TestApp::spawn_private("devx-outage-", |_| {}).await;
    outage::take_database_down(&app).await;
    let (status, text) = with_timeout("a scrape", scrape(&app, None)).await;
    outage::bring_database_back(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(value(&text, "devx_database_up"), Some(0.0), "{text}");
    assert!(value(&text, "process_resident_memory_bytes").is_some());
    assert!(value(&text, "devx_db_pool_max_size").is_some());
}

#[tokio::test]
async fn a_metrics_token_guards_the_scrape() {
    let app = TestApp::spawn_with(|c| c.http.metrics_token = Some(Secret::new("scrape-token-1"))).await;
    let (status, body) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let resp = app.request(Method::GET, "/metrics", None).send().await.unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body: Value = resp.json().await.unwrap();
    assert_problem(StatusCode::UNAUTHORIZED, &body, StatusCode::UNAUTHORIZED);
    assert_eq!(scrape(&app, Some("scrape-token-2")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(scrape(&app, Some("scrape-token-10")).await.0, StatusCode::UNAUTHORIZED);
    let (status, text) = scrape(&app, Some("scrape-token-1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("devx_http_requests_total"), "{text}");
    assert!(!text.contains("scrape-token-1"));
}

#[tokio::test]
async fn the_cli_prints_every_section_and_exits_3_on_warnings() {
    let db = TestDb::migrated().await;
    let run = |args: &[&str]| {
        let out = devx_command().args(["db", "insights"]).args(args).env("DATABASE_URL", db.url()).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // Exit code follows the findings: 3 if any is a warning, else 0.
    let (code, stdout, stderr) = run(&["--json"]);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    let warnings = json["findings"].as_array().unwrap().iter().filter(|f| f["severity"] == "warning").count();
    assert_eq!(code, Some(if warnings > 0 { 3 } else { 0 }), "{stdout}");
    assert_eq!(json["database"], db.name());

    db.client()
        .await
        .batch_execute(
            "CREATE INDEX cli_probe_a ON devx.tasks (title);
             CREATE INDEX cli_probe_b ON devx.tasks (title);",
        )
        .await
        .unwrap();
    let (code, stdout, stderr) = run(&["--long-query", "30s"]);
    assert_eq!(code, Some(3), "a duplicate index is a warning: {stdout} {stderr}");
    for section in [
        "== Queries (pg_stat_statements)",
        "== Long-running queries (over 30.0 s)",
        "== Blocked queries",
        "== Connections by state",
        "== Cache hit ratio",
        "== Findings",
    ] {
        assert!(stdout.contains(section), "{section} missing from:\n{stdout}");
    }
    assert!(stdout.contains("[warning] duplicate-index devx.cli_probe_b"), "{stdout}");
    assert!(
        stdout.contains("what to do: drop it in a migration with `DROP INDEX CONCURRENTLY devx.cli_probe_b;`"),
        "{stdout}"
    );

    let (code, _, stderr) = run(&["--long-query", "soon"]);
    assert_eq!(code, Some(2), "bad usage: {stderr}");
}
