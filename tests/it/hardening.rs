//! Holding up under faults and abuse: abandoned statements are cancelled,
//! sessions carry their timeouts.

use std::time::Duration;

use devx::config::Config;
use devx::db::Queryable;
use reqwest::StatusCode;
use serde_json::json;
use tokio_postgres::Client;

use crate::app::{Session, TestApp};
use crate::harness::{self, PrivateServer};
use crate::support::{lock_user_row, lock_waiters};

/// Until no backend of `database` waits on a lock (the abandoned UPDATE is cancelled).
async fn until_no_lock_waiters(database: &str) {
    for _ in 0..100 {
        if lock_waiters(database).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the abandoned statement is still waiting for its lock");
}

/// An app whose pool has one connection and no lock or statement timeout
/// (only the cancellation may end a blocked statement), tuned further by
/// `tune`; a user; and a connection holding that user's row lock in an open
/// transaction, until it runs `ROLLBACK`.
async fn one_connection_and_a_locked_user(tune: impl FnOnce(&mut Config)) -> (TestApp, Session, Client) {
    let app = TestApp::spawn_with(|c| {
        c.database.pool_max = 1;
        c.database.pool_min = 1;
        c.database.lock_timeout = Duration::ZERO;
        c.database.statement_timeout = Duration::ZERO;
        tune(c);
    })
    .await;
    let dev = app.register("dev@example.com").await;
    let locker = lock_user_row(&app, &dev.user_id).await;
    (app, dev, locker)
}

/// A request that gives up (here: the server's request timeout) must not
/// leave its statement running and its connection busy in the pool: with a
/// pool of one, the next request would queue behind it.
#[tokio::test]
async fn a_statement_abandoned_by_its_request_is_cancelled_and_the_pool_stays_usable() {
    let (app, dev, locker) =
        one_connection_and_a_locked_user(|c| c.http.request_timeout = Duration::from_secs(1)).await;

    // Blocked behind the row lock until the request timeout gives up on it.
    let (status, body) = app.patch("/api/auth/me", Some(&dev.token), json!({"name": "Renamed"})).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    until_no_lock_waiters(app.db.name()).await;

    // The lock is still held, yet the pool's one connection serves at once.
    let (status, me) = app.get("/api/auth/me", Some(&dev.token)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "Test", "the abandoned rename did not happen");
    locker.batch_execute("ROLLBACK").await.unwrap();

    // And the rename works once nobody holds the row.
    let (status, me) = app.patch("/api/auth/me", Some(&dev.token), json!({"name": "Renamed"})).await;
    assert_eq!(status, StatusCode::OK, "{me}");
}

/// The same when the client hangs up instead of the server timing out.
#[tokio::test]
async fn a_statement_abandoned_by_a_client_that_hangs_up_is_cancelled() {
    let (app, dev, locker) = one_connection_and_a_locked_user(|_| {}).await;

    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    let gave_up =
        impatient.patch(app.url("/api/auth/me")).bearer_auth(&dev.token).json(&json!({"name": "Renamed"})).send().await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()), "the client gives up while the statement waits");
    until_no_lock_waiters(app.db.name()).await;

    let (status, me) = app.get("/api/auth/me", Some(&dev.token)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    locker.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn every_session_carries_its_lock_and_idle_transaction_timeouts() {
    let app = TestApp::spawn_with(|c| {
        c.database.lock_timeout = Duration::from_millis(1500);
        c.database.idle_in_transaction_timeout = Duration::from_secs(20);
    })
    .await;
    let client = app.pool.client().await.unwrap();
    let lock: String = client.query_scalar("SHOW lock_timeout", &[]).await.unwrap();
    let idle: String = client.query_scalar("SHOW idle_in_transaction_session_timeout", &[]).await.unwrap();
    let statement: String = client.query_scalar("SHOW statement_timeout", &[]).await.unwrap();
    assert_eq!((lock.as_str(), idle.as_str(), statement.as_str()), ("1500ms", "20s", "30s"));
}

/// Hashing is bounded: with one hashing thread and room for one waiter, a
/// burst of sign-ins gets some 503s with `Retry-After` at once, never a
/// 500, and the ones admitted sign in.
#[tokio::test]
async fn a_burst_of_sign_ins_past_the_hashing_queue_gets_503_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.http.hash_concurrency = 1;
        c.http.hash_queue = 1;
    })
    .await;
    app.register("dev@example.com").await;
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let request = app
            .http
            .post(app.url("/api/auth/login"))
            .json(&json!({"email": "dev@example.com", "password": "correct horse battery"}));
        burst.spawn(async move {
            let response = request.send().await.unwrap();
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, retry_after, body)
        });
    }
    let answers = burst.join_all().await;
    let overloaded: Vec<_> = answers.iter().filter(|(s, _, _)| *s == StatusCode::SERVICE_UNAVAILABLE).collect();
    let signed_in = answers.iter().filter(|(s, _, _)| *s == StatusCode::OK).count();
    assert_eq!(overloaded.len() + signed_in, answers.len(), "only 200 and 503: {answers:?}");
    assert!(!overloaded.is_empty() && signed_in >= 1, "{answers:?}");
    for (_, retry_after, body) in overloaded {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body["type"], "/problems/overloaded", "{body}");
    }
}

/// On SIGTERM (here: the shutdown future), `/readyz` turns 503 at once
/// while requests are still answered, for the drain period.
#[tokio::test]
async fn draining_turns_readiness_off_while_requests_are_still_served() {
    let mut app = TestApp::spawn_with(|c| c.http.shutdown_drain = Duration::from_secs(3)).await;
    assert_eq!(app.get("/readyz", None).await.0, StatusCode::OK);
    app.begin_shutdown();
    let mut status = StatusCode::OK;
    for _ in 0..100 {
        status = app.get("/readyz", None).await.0;
        if status != StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, probe) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{probe}");
    assert!(probe["reason"].as_str().unwrap().contains("shutting down"), "{probe}");
    let (status, page) = app.get("/api/templates?limit=1", None).await;
    assert_eq!(status, StatusCode::OK, "still serving while draining: {page}");
    assert_eq!(app.get("/livez", None).await.0, StatusCode::OK);
}

/// With every request connection taken, the probes and the scrape still
/// answer from their own connection, and report the database as up.
#[tokio::test]
async fn probes_and_metrics_answer_while_the_request_pool_is_exhausted() {
    let app = TestApp::spawn_with(|c| {
        c.database.pool_min = 1;
        c.database.pool_max = 2;
    })
    .await;
    let held = [app.pool.client().await.unwrap(), app.pool.client().await.unwrap()];
    let (status, body) = app.get("/api/templates/no-such/x", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    assert_eq!(app.get("/livez", None).await.0, StatusCode::OK);
    let (status, probe) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{probe}");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "devx_database_up 1"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "devx_db_pool_in_use 2"), "{metrics}");
    let (status, health) = app.get("/health", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    drop(held);
}

/// Every authenticated request looks its credential up first; a connection
/// killed under it (failover, `pg_terminate_backend`) costs no request.
#[tokio::test]
async fn authenticated_reads_survive_killed_connections_every_time() {
    let _ = tracing_subscriber::fmt().with_env_filter("devx=debug").with_test_writer().try_init();
    let app = TestApp::spawn_private("devx-kill-", |_| {}).await;
    let dev = app.register("dev@example.com").await;
    for round in 0..25 {
        crate::outage::kill_connections(&app).await;
        let (status, body) = app.get("/api/auth/me", Some(&dev.token)).await;
        assert_eq!(status, StatusCode::OK, "round {round}: {body}");
    }
}

/// Numbers JSON allows but f64 cannot hold exactly (or at all).
const EXTREME_NUMBERS: [&str; 7] = [
    "1.7976931348623157e308",
    "-1.7976931348623157e308",
    "1e-400",
    "-0",
    "18446744073709551616",
    "123456789012345678901234567890",
    "0.1",
];

/// Whether two JSON numbers are the same number (PostgreSQL keeps the
/// value, not the spelling: `1e-400` comes back as `0.000…1`).
fn same_number(sent: &str, got: &serde_json::Value) -> bool {
    let got = got.to_string();
    // Big integers must keep every digit; the others are compared as numbers
    // (the same parser reads both spellings; -0 and 0 are equal).
    if !sent.contains(['e', '.', '-']) {
        got == sent
    } else {
        got.parse::<f64>().is_ok_and(|g| sent.parse::<f64>().is_ok_and(|s| s == g))
    }
}

/// Stored JSON numbers are read back without loss and without a panic, in
/// every kind of free-form field (project settings and metadata, task
/// requirements, error context, chat metadata, container labels).
#[tokio::test]
async fn extreme_json_numbers_are_stored_and_read_back_in_free_form_fields() {
    let app = TestApp::spawn().await;
    let dev = app.register("dev@example.com").await;
    for (i, n) in EXTREME_NUMBERS.iter().enumerate() {
        let value: serde_json::Value = serde_json::from_str(&format!("{{\"n\": {n}}}")).unwrap();
        let (status, project) = app
            .post(
                "/api/projects",
                Some(&dev.token),
                json!({"name": format!("numbers {i}"), "settings": value, "metadata": value}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{n}: {project}");
        let id = project["id"].as_str().unwrap();
        let (status, back) = app.get(&format!("/api/projects/{id}"), Some(&dev.token)).await;
        assert_eq!(status, StatusCode::OK, "{n}: {back}");
        assert!(same_number(n, &back["settings"]["n"]), "{n} came back as {}", back["settings"]["n"]);
        assert!(same_number(n, &back["metadata"]["n"]), "{n} came back as {}", back["metadata"]["n"]);

        let (status, task) = app
            .post("/api/tasks", Some(&dev.token), json!({"project_id": id, "title": "t", "requirements": value}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{n}: {task}");
        let (_, task) = app.get(&format!("/api/tasks/{}", task["id"].as_str().unwrap()), Some(&dev.token)).await;
        assert!(same_number(n, &task["requirements"]["n"]), "{n}: {task}");

        let (status, error) = app
            .post("/api/errors", Some(&dev.token), json!({"error_type": "api", "message": "m", "context": value}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{n}: {error}");
        let (_, error) = app.get(&format!("/api/errors/{}", error["id"].as_str().unwrap()), Some(&dev.token)).await;
        assert!(same_number(n, &error["context"]["n"]), "{n}: {error}");

        let (status, message) = app
            .post(
                &format!("/api/projects/{id}/messages"),
                Some(&dev.token),
                json!({"session_id": "s", "role": "user", "content": "hi", "metadata": value}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{n}: {message}");
        let (_, page) = app.get(&format!("/api/projects/{id}/messages"), Some(&dev.token)).await;
        assert!(same_number(n, &page["items"][0]["metadata"]["n"]), "{n}: {page}");

        let (status, container) = app
            .post(
                &format!("/api/projects/{id}/containers"),
                Some(&dev.token),
                json!({"container_id": format!("c-{i}"), "name": "c", "labels": value, "metadata": value}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{n}: {container}");
        let (_, container) =
            app.get(&format!("/api/containers/{}", container["id"].as_str().unwrap()), Some(&dev.token)).await;
        assert!(same_number(n, &container["labels"]["n"]), "{n}: {container}");
    }
}

/// The decoding path every jsonb column shares, at the database: values
/// PostgreSQL stores as exact numerics read back into `serde_json::Value`.
#[tokio::test]
async fn jsonb_numbers_round_trip_through_the_statement_layer() {
    let app = TestApp::spawn().await;
    let client = app.pool.client().await.unwrap();
    for n in EXTREME_NUMBERS {
        let sent: serde_json::Value = serde_json::from_str(n).unwrap();
        let got: serde_json::Value = client.query_scalar("SELECT $1::jsonb", &[&sent]).await.unwrap();
        assert!(same_number(n, &got), "{n} came back as {got}");
        let got: serde_json::Value =
            client.query_scalar(&format!("SELECT '{n}'::jsonb"), &[]).await.unwrap_or_else(|e| panic!("{n}: {e}"));
        assert!(same_number(n, &got), "{n} written by SQL came back as {got}");
    }
}

/// `devx migrate up` killed during `CREATE INDEX CONCURRENTLY` leaves an
/// invalid index; `migrate check` reports it, and the next `up` rebuilds it
/// before recording the migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_killed_during_a_concurrent_index_build_leaves_no_invalid_index_behind() {
    let Some(server) = PrivateServer::start("devx-fault-").await else {
        eprintln!("skipped: no PostgreSQL server binaries on this machine");
        return;
    };
    let migrations = tempfile::tempdir().unwrap();
    let write = |name: &str, sql: &str| std::fs::write(migrations.path().join(name), sql).unwrap();
    write(
        "20260101000000_big.up.sql",
        "CREATE SCHEMA IF NOT EXISTS devx; CREATE TABLE devx.big (x int);
         INSERT INTO devx.big SELECT g FROM generate_series(1, 100000) g;",
    );
    write("20260101000000_big.down.sql", "DROP TABLE devx.big;");
    write(
        "20260101000001_big_index.up.sql",
        "-- devx:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS big_x_idx ON devx.big (x);\n",
    );
    write(
        "20260101000001_big_index.down.sql",
        "-- devx:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS devx.big_x_idx;\n",
    );
    let migrate = |args: &[&str]| {
        let mut cmd = server.devx();
        cmd.arg("migrate").arg("--dir").arg(migrations.path()).args(args);
        cmd
    };

    let made = migrate(&["up", "--to", "20260101000000"]).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    // An open transaction that has written to the table holds the build
    // after it has created the (still invalid) index and before it can
    // finish, so the kill below always lands mid-build, whatever the load.
    let holder = server.client().await;
    holder.batch_execute("BEGIN; INSERT INTO devx.big VALUES (0)").await.unwrap();
    let mut child =
        migrate(&["up"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let watcher = server.client().await;
    let mut builder = None;
    for _ in 0..600 {
        let row = watcher
            .query_opt(
                "SELECT pid FROM pg_stat_activity
                  WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' AND state = 'active' AND backend_type = 'client backend'
                  LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        if let Some(row) = row {
            builder = Some(row.get::<_, i32>(0));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let builder = builder.expect("the index build starts");
    // Kill the migrator, and its session with it, mid-build.
    child.kill().unwrap();
    let _ = child.wait();
    watcher.execute("SELECT pg_terminate_backend($1)", &[&builder]).await.unwrap();
    holder.batch_execute("ROLLBACK").await.unwrap();
    let valid = || async {
        watcher
            .query_opt(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'big_x_idx'",
                &[],
            )
            .await
            .unwrap()
            .map(|r| r.get::<_, bool>(0))
    };
    let mut state = valid().await;
    for _ in 0..100 {
        if state == Some(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        state = valid().await;
    }
    assert_eq!(state, Some(false), "the killed build left the index behind, invalid");

    let check = migrate(&["check"]).output().unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(3), "{said}");
    assert!(said.contains("devx.big_x_idx is invalid"), "{said}");

    let up = migrate(&["up"]).output().unwrap();
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    assert_eq!(valid().await, Some(true), "rebuilt");
    let check = migrate(&["check"]).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", String::from_utf8_lossy(&check.stdout));
    drop(watcher);
    server.stop().await;
}

/// `devx serve` runs with a role that may only read and write rows, given
/// by `devx db grants --apply`: the API's smoke path works, and the role
/// cannot change the schema.
#[tokio::test]
async fn the_api_works_under_a_role_with_only_the_granted_privileges() {
    let db = crate::harness::TestDb::migrated().await;
    let role = format!("devx_t_app_{}_{}", std::process::id(), db.name().rsplit('_').next().unwrap_or("x"));
    let admin = harness::admin_client().await;
    admin.batch_execute(&format!("CREATE ROLE \"{role}\" LOGIN")).await.unwrap();
    let db_url = db.url();
    let role_in_test = role.clone();
    let outcome = tokio::spawn(async move {
        let role = role_in_test;
        let printed = crate::harness::devx_command()
            .env("DATABASE_URL", &db_url)
            .args(["db", "grants", "--role", &role])
            .output()
            .unwrap();
        let sql = String::from_utf8_lossy(&printed.stdout).to_string();
        assert!(
            printed.status.success() && sql.contains("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES"),
            "{sql}"
        );
        let applied = crate::harness::devx_command()
            .env("DATABASE_URL", &db_url)
            .args(["db", "grants", "--role", &role, "--apply"])
            .output()
            .unwrap();
        assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));

        let app = TestApp::spawn_on(db, |c| {
            if let devx::config::DbSource::Explicit(target) = &mut c.database.source {
                target.user(&role);
            }
        })
        .await;
        let whoami: String =
            app.pool.client().await.unwrap().query_scalar("SELECT current_user::text", &[]).await.unwrap();
        assert_eq!(whoami, role);
        let dev = app.register("dev@example.com").await;
        let (status, project) = app.post("/api/projects", Some(&dev.token), json!({"name": "least"})).await;
        assert_eq!(status, StatusCode::CREATED, "{project}");
        let id = project["id"].as_str().unwrap();
        let (status, task) =
            app.post("/api/tasks", Some(&dev.token), json!({"project_id": id, "title": "build"})).await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        let (status, _) = app.patch(&format!("/api/projects/{id}"), Some(&dev.token), json!({"name": "renamed"})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(app.get("/readyz", None).await.0, StatusCode::OK, "the ledger is readable");
        let (status, page) = app.get("/api/templates?limit=2", None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let (status, _) = app.delete(&format!("/api/projects/{id}"), Some(&dev.token)).await;
        assert!(status.is_success());
        // The audit trail was written on the role's behalf by the triggers.
        let audited: i64 = app
            .pool
            .client()
            .await
            .unwrap()
            .query_scalar("SELECT count(*) FROM devx.audit_logs WHERE entity_type = 'devx.projects'", &[])
            .await
            .unwrap();
        assert!(audited >= 2);
        let refused = app.pool.client().await.unwrap().batch_execute("CREATE TABLE devx.nope (x int)").await;
        assert!(refused.is_err(), "the serving role cannot change the schema");
    })
    .await;
    // The role outlives the test's database: drop it whatever happened.
    admin.batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\"")).await.ok();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
