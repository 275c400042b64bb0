//! The history tables range-partitioned by time: the migration keeps every
//! row (up and down), retention drops whole expired partitions (error logs'
//! too, after `retention.error_logs`) and creates the ones ahead, the plans keep pruning by time and tailing by seq through
//! an index, and the append-only guard still names the table on a partition.

use devx::migrate::{MigrateOptions, MigrationSet, Migrator};
use devx::retention::{self, RunOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::app::TestApp;
use crate::harness::TestDb;
use crate::support::{column, count, one, seed_owner};

/// The migration before the one that partitions the history tables, and
/// that one.
const BEFORE: &str = "20261209020000";
const PARTITIONS: &str = "20261209030000";

const HISTORY: &[(&str, &str)] = &[
    ("audit_logs", "created_at"),
    ("execution_logs", "logged_at"),
    ("deployment_log_lines", "time"),
    ("activity_logs", "created_at"),
    ("error_logs", "created_at"),
];

async fn counts(client: &Client) -> Vec<i64> {
    let mut out = Vec::new();
    for (table, _) in HISTORY {
        out.push(count(client, &format!("SELECT count(*) FROM devx.{table}")).await);
    }
    out
}

async fn relkind(client: &Client, table: &str) -> String {
    one(client, "SELECT relkind::text FROM pg_class WHERE oid = $1::text::regclass", &[&format!("devx.{table}")]).await
}

/// The name of the monthly partition of `table` holding `now() + offset`.
async fn month_partition(client: &Client, table: &str, offset: &str) -> String {
    one(
        client,
        "SELECT $1 || '_p' || to_char((now() + $2::text::interval) AT TIME ZONE 'UTC', 'YYYYMM')",
        &[&table, &offset],
    )
    .await
}

async fn exists(client: &Client, relation: &str) -> bool {
    one(client, "SELECT to_regclass($1) IS NOT NULL", &[&format!("devx.{relation}")]).await
}

#[tokio::test]
async fn rows_across_months_survive_migrating_up_and_down() {
    let db = TestDb::empty().await;
    let set = MigrationSet::embedded().unwrap();
    let options = MigrateOptions {
        lock_timeout: std::time::Duration::from_secs(5),
        wait_timeout: std::time::Duration::from_secs(20),
        poll_interval: std::time::Duration::from_millis(50),
    };
    let mut m = Migrator::new(db.client().await, set.clone(), options);
    m.up(Some(BEFORE)).await.unwrap();
    let client = db.client().await;

    // Rows in seven months, most of them in the past, with the execution and
    // deployment their log lines belong to.
    let (_, project) = seed_owner(&client).await;
    let task: Uuid =
        one(&client, "INSERT INTO devx.tasks (project_id, title) VALUES ($1, 't') RETURNING id", &[&project]).await;
    let execution: Uuid = one(
        &client,
        "INSERT INTO devx.task_executions (task_id, agent_type) VALUES ($1, 'claude-code') RETURNING id",
        &[&task],
    )
    .await;
    let deployment: Uuid =
        one(&client, "INSERT INTO devx.deployments (project_id) VALUES ($1) RETURNING id", &[&project]).await;
    client
        .batch_execute(&format!(
            "INSERT INTO devx.audit_logs (entity_type, entity_id, action, actor, created_at)
             SELECT 'devx.users', g::text, 'insert', 'system:test', now() - (g % 7) * interval '1 month' - interval '1 hour'
               FROM generate_series(1, 700) g;
             INSERT INTO devx.activity_logs (actor, action, created_at)
             SELECT 'anonymous', 'sign_in_failed', now() - (g % 7) * interval '1 month' - interval '1 hour'
               FROM generate_series(1, 350) g;
             INSERT INTO devx.error_logs (error_type, message, created_at)
             SELECT 'system', 'boom ' || g, now() - (g % 7) * interval '1 month' - interval '1 hour'
               FROM generate_series(1, 70) g;
             INSERT INTO devx.execution_logs (execution_id, seq, message, logged_at)
             SELECT '{execution}', g, 'line ' || g, now() - (g % 7) * interval '1 month' - interval '1 hour'
               FROM generate_series(1, 500) g;
             INSERT INTO devx.deployment_log_lines (deployment_id, seq, text, bytes_through, time)
             SELECT '{deployment}', g, 'line', 4 * g, now() - (g % 7) * interval '1 month' - interval '1 hour'
               FROM generate_series(1, 210) g;"
        ))
        .await
        .unwrap();
    let before = counts(&client).await;
    // The migrations' own settings left a few audit rows already.
    assert!(before[0] >= 700 && before[1..] == [500, 210, 350, 70], "{before:?}");
    let max_audit_id: i64 = one(&client, "SELECT max(id) FROM devx.audit_logs", &[]).await;

    m.up(Some(PARTITIONS)).await.unwrap();
    assert_eq!(counts(&client).await, before, "every row is copied");
    for (table, _) in HISTORY {
        assert_eq!(relkind(&client, table).await, "p", "{table} is partitioned");
        // Every month with rows got its own partition: none is in DEFAULT.
        assert_eq!(count(&client, &format!("SELECT count(*) FROM devx.{table}_default")).await, 0, "{table}");
        let months = count(&client, &format!("SELECT count(DISTINCT tableoid) FROM devx.{table}")).await;
        assert_eq!(months, 7, "{table}: one partition per month with rows");
        for ahead in ["0 months", "1 month", "2 months"] {
            let name = month_partition(&client, table, ahead).await;
            assert!(exists(&client, &name).await, "{name} is created ahead");
        }
    }
    let next: i64 = one(
        &client,
        "INSERT INTO devx.audit_logs (entity_type, entity_id, action, actor) VALUES ('t', '1', 'insert', 'x') RETURNING id",
        &[],
    )
    .await;
    assert_eq!(next, max_audit_id + 1, "the identity continues");

    m.down(1).await.unwrap();
    let mut after = before.clone();
    after[0] += 1;
    assert_eq!(counts(&client).await, after, "every row comes back");
    for (table, _) in HISTORY {
        assert_eq!(relkind(&client, table).await, "r", "{table} is a plain table again");
        assert!(!exists(&client, &format!("{table}_default")).await);
    }
    let next: i64 = one(
        &client,
        "INSERT INTO devx.audit_logs (entity_type, entity_id, action, actor) VALUES ('t', '2', 'insert', 'x') RETURNING id",
        &[],
    )
    .await;
    assert_eq!(next, max_audit_id + 2, "the identity continues after down too");
    let unique: bool =
        one(&client, "SELECT count(*) = count(DISTINCT (execution_id, seq)) FROM devx.execution_logs", &[]).await;
    assert!(unique);

    m.up(Some(PARTITIONS)).await.unwrap();
    after[0] += 1;
    assert_eq!(counts(&client).await, after, "and up again");
}

#[tokio::test]
async fn retention_drops_whole_expired_partitions_creates_them_ahead_and_keeps_the_rest() {
    let app = TestApp::spawn().await;
    let client = app.db.client().await;
    // Partitions 14 and 3 months back with a row each, a row 13 months back
    // (in DEFAULT: no partition holds it), a row just past the year in a
    // partition whose range is not all past it (kept: tables age out by whole
    // partitions), and a missing partition ahead.
    client
        .batch_execute(
            "SELECT devx.create_history_partition('audit_logs', 'created_at', now() - interval '14 months', 'month');
             SELECT devx.create_history_partition('audit_logs', 'created_at', now() - interval '3 months', 'month');
             SELECT devx.create_history_partition('audit_logs', 'created_at', now() - interval '12 months 1 second', 'month');
             INSERT INTO devx.audit_logs (entity_type, entity_id, action, actor, created_at) VALUES
                 ('t', 'old', 'insert', 'x', now() - interval '14 months'),
                 ('t', 'default', 'insert', 'x', now() - interval '13 months'),
                 ('t', 'partly', 'insert', 'x', now() - interval '12 months 1 second'),
                 ('t', 'young', 'insert', 'x', now() - interval '3 months');",
        )
        .await
        .unwrap();
    let old = month_partition(&client, "audit_logs", "-14 months").await;
    let young = month_partition(&client, "audit_logs", "-3 months").await;
    let ahead = month_partition(&client, "execution_logs", "2 months").await;
    client.batch_execute(&format!("DROP TABLE IF EXISTS devx.{ahead}")).await.unwrap();
    assert!(exists(&client, &old).await && exists(&client, &young).await && !exists(&client, &ahead).await);

    let dry = retention::run(&app.pool, &RunOptions { dry_run: true, batch_size: None }).await.unwrap();
    assert!(!dry.failed(), "{dry:?}");
    let audit = dry.table("audit_logs").unwrap();
    assert_eq!(audit.partitions_dropped, std::slice::from_ref(&old), "the dry run names what it would drop");
    assert_eq!(audit.rows, 1, "and counts only the rows the deletion would remove (the one in DEFAULT)");
    assert_eq!(dry.partitions_created, 0);
    assert!(exists(&client, &old).await && !exists(&client, &ahead).await, "a dry run changes nothing");

    let report = retention::run(&app.pool, &RunOptions::default()).await.unwrap();
    assert!(!report.failed(), "{report:?}");
    let audit = report.table("audit_logs").unwrap();
    assert_eq!(audit.partitions_dropped, std::slice::from_ref(&old));
    assert_eq!(audit.rows, 1);
    assert!(report.partitions_created >= 1, "{report:?}");
    assert!(!exists(&client, &old).await, "the expired partition is gone from pg_class");
    assert!(exists(&client, &young).await, "the young one stays");
    let left: Vec<String> =
        column(&client, "SELECT entity_id FROM devx.audit_logs WHERE entity_type = 't' ORDER BY entity_id", &[]).await;
    assert_eq!(left, ["partly", "young"], "the DEFAULT row is deleted, a partition's rows go with it whole");
    for (table, _) in HISTORY {
        for offset in ["0 months", "1 month", "2 months"] {
            let name = month_partition(&client, table, offset).await;
            assert!(exists(&client, &name).await, "{name} exists after a run");
        }
    }
    let summary: Value = one(
        &client,
        "SELECT new_values FROM devx.audit_logs
          WHERE entity_type = 'devx.audit_logs' AND actor = 'system:retention'",
        &[],
    )
    .await;
    assert_eq!(summary["rows"], 1);
    assert_eq!(summary["partitions_dropped"], json!([old]));

    // A second run finds nothing more to drop.
    let again = retention::run(&app.pool, &RunOptions::default()).await.unwrap();
    assert!(again.table("audit_logs").unwrap().partitions_dropped.is_empty());
    assert_eq!(again.partitions_created, 0, "creating ahead is idempotent");
}

#[tokio::test]
async fn a_partition_takes_its_rows_from_default_and_days_are_partitions_too() {
    let app = TestApp::spawn().await;
    let client = app.db.client().await;
    client
        .batch_execute(
            "INSERT INTO devx.audit_logs (entity_type, entity_id, action, actor, created_at)
             VALUES ('t', 'far', 'insert', 'x', '2031-03-10 12:00:00+00')",
        )
        .await
        .unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM devx.audit_logs_default WHERE entity_type = 't'").await, 1);
    let created: bool =
        one(&client, "SELECT devx.create_history_partition('audit_logs', 'created_at', '2031-03-01', 'month')", &[])
            .await;
    assert!(created);
    assert_eq!(count(&client, "SELECT count(*) FROM devx.audit_logs_p203103").await, 1, "the row moved");
    assert_eq!(count(&client, "SELECT count(*) FROM devx.audit_logs_default WHERE entity_type = 't'").await, 0);
    let again: bool =
        one(&client, "SELECT devx.create_history_partition('audit_logs', 'created_at', '2031-03-15', 'month')", &[])
            .await;
    assert!(!again, "idempotent");
    let overlapping: bool =
        one(&client, "SELECT devx.create_history_partition('audit_logs', 'created_at', '2031-03-15', 'day')", &[])
            .await;
    assert!(!overlapping, "a day inside an existing month is not created");

    let day: bool = one(
        &client,
        "SELECT devx.create_history_partition('execution_logs', 'logged_at', '2031-05-05 23:30:00+00', 'day')",
        &[],
    )
    .await;
    assert!(day);
    let bounds: String = one(
        &client,
        "SELECT range_start::text || ' ' || range_end::text FROM devx.history_partition_bounds('devx.execution_logs')
          WHERE partition_name = 'execution_logs_p20310505'",
        &[],
    )
    .await;
    assert_eq!(bounds, "2031-05-05 00:00:00+00 2031-05-06 00:00:00+00");

    // The setting makes the maintenance daily for that table.
    client
        .batch_execute(
            "INSERT INTO devx.system_config (key, value) VALUES ('retention.partition_interval.deployment_log_lines', '\"day\"')",
        )
        .await
        .unwrap();
    let unit: String =
        one(&client, "SELECT unit FROM devx.history_tables() WHERE table_name = 'deployment_log_lines'", &[]).await;
    assert_eq!(unit, "day");

    // Only range partitions of history tables can be dropped through the function.
    for (table, partition) in [("audit_logs", "audit_logs_default"), ("users", "users"), ("audit_logs", "users")] {
        let refused =
            client.execute("SELECT devx.drop_history_partition($1, $2)", &[&table, &partition]).await.unwrap_err();
        assert!(format!("{refused:?}").contains("is not a range partition"), "{refused:?}");
    }
}

/// Every (node type, relation) of a JSON plan; the relation is empty for a
/// node that reads none.
fn walk(plan: &Value, nodes: &mut Vec<(String, String)>) {
    let node = plan.get("Node Type").and_then(Value::as_str).unwrap_or_default();
    let relation = plan.get("Relation Name").and_then(Value::as_str).unwrap_or_default();
    nodes.push((node.to_string(), relation.to_string()));
    for child in plan.get("Plans").and_then(Value::as_array).into_iter().flatten() {
        walk(child, nodes);
    }
}

/// The relations a plan reads (sorted, once each) and its nodes.
async fn explain(client: &Client, sql: &str) -> (Vec<String>, Vec<(String, String)>) {
    let plan: Value = one(client, &format!("EXPLAIN (FORMAT JSON) {sql}"), &[]).await;
    let mut nodes = Vec::new();
    walk(&plan[0]["Plan"], &mut nodes);
    let mut relations: Vec<String> = nodes.iter().map(|(_, r)| r.clone()).filter(|r| !r.is_empty()).collect();
    relations.sort();
    relations.dedup();
    (relations, nodes)
}

/// Each partition holding rows is read through an index; an empty one (a
/// partition ahead, DEFAULT) may be scanned, there is nothing in it.
async fn assert_indexed(client: &Client, nodes: &[(String, String)]) {
    let mut indexed = 0;
    for (node, relation) in nodes.iter().filter(|(_, r)| !r.is_empty()) {
        let rows: f32 = one(
            client,
            "SELECT reltuples FROM pg_class WHERE oid = $1::text::regclass",
            &[&format!("devx.{relation}")],
        )
        .await;
        if rows > 0.0 {
            assert!(
                ["Index Scan", "Index Only Scan", "Bitmap Heap Scan"].contains(&node.as_str()),
                "{relation} ({rows} rows) is read by {node}: {nodes:?}"
            );
            indexed += 1;
        }
    }
    assert!(indexed >= 3, "the tail spans the partitions with rows: {nodes:?}");
}

#[tokio::test]
async fn plans_prune_by_time_and_tail_logs_through_an_index_per_partition() {
    let app = TestApp::spawn().await;
    let client = app.db.client().await;
    client
        .batch_execute(
            "SELECT devx.create_history_partition(t, c, '2030-01-01'::timestamptz + m * interval '1 month', 'month')
               FROM (VALUES ('audit_logs', 'created_at'), ('execution_logs', 'logged_at')) v (t, c),
                    generate_series(0, 3) m;
             INSERT INTO devx.audit_logs (entity_type, entity_id, action, actor, created_at)
             SELECT 'devx.users', g::text, 'insert', 'x', '2030-01-01'::timestamptz + g * interval '1 hour'
               FROM generate_series(0, 2800) g;
             SET session_replication_role = replica;
             INSERT INTO devx.execution_logs (execution_id, seq, message, logged_at)
             SELECT ('00000000-0000-4000-8000-' || lpad((g % 50)::text, 12, '0'))::uuid, g, 'line',
                    '2030-01-01'::timestamptz + g * interval '1 hour'
               FROM generate_series(1, 2800) g;
             SET session_replication_role = origin;
             ANALYZE devx.audit_logs; ANALYZE devx.execution_logs;",
        )
        .await
        .unwrap();

    // The admin trail's time filter, with the values in the statement (a
    // custom plan) and as parameters of a generic plan.
    let bounded = "SELECT * FROM devx.audit_logs a
                    WHERE a.created_at >= '2030-02-03 00:00:00+00' AND a.created_at < '2030-02-20 00:00:00+00'
                    ORDER BY a.created_at DESC, a.id DESC LIMIT 51";
    let (relations, _) = explain(&client, bounded).await;
    assert_eq!(relations, ["audit_logs_p203002"], "only February is read");
    client
        .batch_execute(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE trail(timestamptz, timestamptz) AS
                 SELECT * FROM devx.audit_logs a WHERE a.created_at >= $1 AND a.created_at < $2
                  ORDER BY a.created_at DESC, a.id DESC LIMIT 51;",
        )
        .await
        .unwrap();
    let (relations, _) = explain(&client, "EXECUTE trail('2030-03-02 00:00:00+00', '2030-04-10 00:00:00+00')").await;
    assert_eq!(relations, ["audit_logs_p203003", "audit_logs_p203004"], "March and April only");

    // An execution's tail after a seq: an index in every partition, never a
    // sequential scan.
    let tail = "SELECT seq, level, message, logged_at FROM devx.execution_logs
                 WHERE execution_id = '00000000-0000-4000-8000-000000000007' AND seq > 1000
                 ORDER BY seq LIMIT 100";
    let (_, nodes) = explain(&client, tail).await;
    assert_indexed(&client, &nodes).await;
    client
        .batch_execute(
            "PREPARE tail(uuid, int8, int8) AS
                 SELECT seq, level, message, logged_at FROM devx.execution_logs
                  WHERE execution_id = $1 AND seq > $2 ORDER BY seq LIMIT $3;",
        )
        .await
        .unwrap();
    let (_, nodes) = explain(&client, "EXECUTE tail('00000000-0000-4000-8000-000000000007', 1000, 100)").await;
    assert_indexed(&client, &nodes).await;
}

#[tokio::test]
async fn the_append_only_guard_refuses_updates_on_a_partition_naming_the_table() {
    let app = TestApp::spawn().await;
    let client = app.db.client().await;
    client
        .batch_execute(
            "INSERT INTO devx.activity_logs (actor, action) VALUES ('anonymous', 'sign_in_failed');
             INSERT INTO devx.audit_logs (entity_type, entity_id, action, actor) VALUES ('t', '1', 'insert', 'x');",
        )
        .await
        .unwrap();
    for table in ["activity_logs", "audit_logs"] {
        let partition: String =
            one(&client, &format!("SELECT tableoid::regclass::text FROM devx.{table} LIMIT 1"), &[]).await;
        assert_ne!(partition, format!("devx.{table}"), "the row lives in a partition");
        let err = client.execute(&format!("UPDATE {partition} SET actor = 'someone else'"), &[]).await.unwrap_err();
        let message = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_default();
        assert!(message.starts_with(&format!("devx.{table} is append-only")), "{message}");
    }
    // error_logs stays audited, under its own name.
    client.batch_execute("INSERT INTO devx.error_logs (error_type, message) VALUES ('system', 'boom')").await.unwrap();
    let audited = count(
        &client,
        "SELECT count(*) FROM devx.audit_logs WHERE entity_type = 'devx.error_logs' AND action = 'insert'",
    )
    .await;
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn error_logs_age_out_by_whole_partitions_after_their_period() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let token = Some(admin.token.as_str());
    let client = app.db.client().await;
    // A month five months back (its whole range is past the default 90 days
    // plus the grace) and the current month, an error in each.
    client
        .batch_execute(
            "SELECT devx.create_history_partition('error_logs', 'created_at', now() - interval '5 months', 'month');
             INSERT INTO devx.error_logs (error_type, message, created_at) VALUES
                 ('system', 'old', now() - interval '5 months'),
                 ('system', 'new', now());",
        )
        .await
        .unwrap();
    let old = month_partition(&client, "error_logs", "-5 months").await;
    let current = month_partition(&client, "error_logs", "0 months").await;
    let stored: Value =
        one(&client, "SELECT value FROM devx.system_config WHERE key = 'retention.error_logs'", &[]).await;
    assert_eq!(stored, "90 days", "the migration stores the default");

    // The period is an admin setting like the others: checked, then honoured.
    let (status, body) =
        app.call(Method::PUT, "/api/admin/config/retention.error_logs", token, Some(json!({"value": 90}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) =
        app.call(Method::PUT, "/api/admin/config/retention.error_logs", token, Some(json!({"value": "1 year"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = retention::run(&app.pool, &RunOptions::default()).await.unwrap();
    assert!(!report.failed(), "{report:?}");
    let errors = report.table("error_logs").unwrap_or_else(|| panic!("error_logs in {report:?}"));
    assert_eq!(errors.period, "1 year");
    assert!(errors.partitions_dropped.is_empty(), "five months is within a year: {report:?}");
    assert!(exists(&client, &old).await);

    let (status, body) =
        app.call(Method::PUT, "/api/admin/config/retention.error_logs", token, Some(json!({"value": "90 days"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = retention::run(&app.pool, &RunOptions::default()).await.unwrap();
    assert!(!report.failed(), "{report:?}");
    let errors = report.table("error_logs").unwrap();
    assert_eq!(errors.partitions_dropped, std::slice::from_ref(&old), "{report:?}");
    assert!(!exists(&client, &old).await, "the expired partition is dropped");
    assert!(exists(&client, &current).await, "the current one stays");
    let left: Vec<String> = column(&client, "SELECT message FROM devx.error_logs ORDER BY message", &[]).await;
    assert_eq!(left, ["new"]);
    let summary: Value = one(
        &client,
        "SELECT new_values FROM devx.audit_logs
          WHERE entity_type = 'devx.error_logs' AND entity_id = '*' AND actor = 'system:retention'",
        &[],
    )
    .await;
    assert_eq!(summary["partitions_dropped"], json!([old]), "the run's audit row names it");
}
