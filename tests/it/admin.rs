//! Administration over real HTTP (settings and their validation, the audit
//! trail, recent activity, system statistics) and retention, through the
//! library and through the `devx` binary, against backdated rows.

use chrono::{SecondsFormat, TimeDelta, Utc};
use devx::retention::{self, RetentionError, RunOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::app::{TestApp, assert_problem};
use crate::harness::{self, TestDb};
use crate::support::{all_pages, column, count, fields, one, seed_owner};

async fn put_config(app: &TestApp, token: Option<&str>, key: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::PUT, &format!("/api/admin/config/{key}"), token, Some(body)).await
}

async fn stored_value(client: &Client, key: &str) -> Option<Value> {
    client.query_opt("SELECT value FROM devx.system_config WHERE key = $1", &[&key]).await.unwrap().map(|r| r.get(0))
}

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[tokio::test]
async fn settings_are_listed_and_changed_and_bad_values_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let token = Some(admin.token.as_str());
    let client = app.db.client().await;

    // Every key, in order, each once, across pages.
    let items = all_pages(&app, &admin.token, "/api/admin/config?limit=5").await;
    let keys: Vec<&str> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "key order, no repeats");
    assert_eq!(keys.len() as i64, count(&client, "SELECT count(*) FROM devx.system_config").await);
    let by_key = |k: &str| items.iter().find(|i| i["key"] == k).unwrap_or_else(|| panic!("{k} listed")).clone();
    assert_eq!(by_key("retention.chat_messages")["value"], "6 months");
    assert_eq!(by_key("retention.execution_logs")["value"], "90 days");
    assert_eq!(by_key("retention.audit_logs")["value"], "1 year");
    assert_eq!(by_key("retention.error_logs")["value"], "90 days");
    assert_eq!(by_key("retention.enabled")["value"], true);
    assert_eq!(by_key("retention.interval")["value"], "1 hour");
    assert!(by_key("retention.user_data")["description"].is_string());

    let (status, entry) = put_config(&app, token, "retention.chat_messages", json!({"value": "3 months"})).await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["value"], "3 months");
    assert_eq!(entry["description"], "How long chat messages are kept", "description kept");
    let (status, entry) = put_config(&app, token, "retention.batch_size", json!({"value": 500})).await;
    assert_eq!(status, StatusCode::OK, "{entry}");

    let audit_before = count(&client, "SELECT count(*) FROM devx.audit_logs").await;
    let refused = [
        ("retention.chat_messages", json!({"value": "soon"}), vec!["value"]),
        ("retention.chat_messages", json!({"value": "-1 day"}), vec!["value"]),
        ("retention.chat_messages", json!({"value": "0 days"}), vec!["value"]),
        ("retention.chat_messages", json!({"value": "1 month -40 days"}), vec!["value"]),
        ("retention.chat_messages", json!({"value": "100000 years"}), vec!["value"]),
        ("retention.chat_messages", json!({"value": 90}), vec!["value"]),
        ("retention.chat_messages", json!({"value": null}), vec!["value"]),
        ("retention.interval", json!({"value": "often"}), vec!["value"]),
        ("retention.batch_size", json!({"value": -5}), vec!["value"]),
        ("retention.batch_size", json!({"value": 0}), vec!["value"]),
        ("retention.batch_size", json!({"value": 100_001}), vec!["value"]),
        ("retention.batch_size", json!({"value": "10"}), vec!["value"]),
        ("retention.batch_size", json!({"value": -5, "description": ""}), vec!["description", "value"]),
        ("retention.enabled", json!({"value": "yes"}), vec!["value"]),
        ("retention.chat_mesages", json!({"value": "1 day"}), vec!["key"]),
        ("Bad.Key", json!({"value": 1, "description": "x"}), vec!["key"]),
        ("ui.theme", json!({"value": "dark", "description": "x", "extra": 1}), vec!["extra"]),
        ("ui.theme", json!({"description": "x"}), vec!["value"]),
    ];
    for (key, body, expected) in refused {
        let (status, problem) = put_config(&app, token, key, body.clone()).await;
        assert_problem(status, &problem, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&problem), expected, "PUT {key} {body}: {problem}");
    }
    assert_eq!(stored_value(&client, "retention.chat_messages").await, Some(json!("3 months")));
    assert_eq!(stored_value(&client, "retention.batch_size").await, Some(json!(500)));
    assert_eq!(stored_value(&client, "retention.enabled").await, Some(json!(true)));
    assert_eq!(stored_value(&client, "retention.chat_mesages").await, None);
    // Without a description, a setting devx does not know cannot be created
    // yet (it could be changed once it exists): a conflict with the state.
    let (status, problem) = put_config(&app, token, "ui.theme", json!({"value": "dark"})).await;
    assert_problem(status, &problem, StatusCode::CONFLICT);
    assert_eq!(fields(&problem), ["description"]);
    assert_eq!(stored_value(&client, "ui.theme").await, None);
    assert_eq!(count(&client, "SELECT count(*) FROM devx.audit_logs").await, audit_before, "refusals wrote nothing");

    // A setting devx does not know: created with its description, then changed.
    let (status, entry) =
        put_config(&app, token, "ui.theme", json!({"value": {"dark": true}, "description": "Dashboard theme"})).await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert_eq!(entry["value"], json!({"dark": true}));
    let (status, entry) = put_config(&app, token, "ui.theme", json!({"value": {"dark": false}})).await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["description"], "Dashboard theme");

    // A known setting that went missing comes back with its own description.
    client.execute("DELETE FROM devx.system_config WHERE key = 'retention.enabled'", &[]).await.unwrap();
    let (status, entry) = put_config(&app, token, "retention.enabled", json!({"value": false})).await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert!(entry["description"].as_str().unwrap().contains("retention job"));
}

#[tokio::test]
async fn admin_routes_refuse_anonymous_callers_and_non_admins() {
    let app = TestApp::spawn().await;
    app.admin("root@example.com").await;
    let user = app.register("user@example.com").await;
    let routes = [
        (Method::GET, "/api/admin/config", None),
        (Method::PUT, "/api/admin/config/retention.batch_size", Some(json!({"value": 7}))),
        (Method::GET, "/api/admin/audit", None),
        (Method::GET, "/api/admin/activity", None),
        (Method::GET, "/api/admin/stats", None),
        (Method::GET, "/api/admin/jobs", None),
    ];
    for (method, path, body) in routes {
        let (status, problem) = app.call(method.clone(), path, None, body.clone()).await;
        assert_problem(status, &problem, StatusCode::UNAUTHORIZED);
        let (status, problem) = app.call(method.clone(), path, Some(&user.token), body.clone()).await;
        assert_problem(status, &problem, StatusCode::FORBIDDEN);
    }
    let client = app.db.client().await;
    assert_eq!(stored_value(&client, "retention.batch_size").await, Some(json!(1000)));
}

#[tokio::test]
async fn the_audit_trail_filters_and_pages_every_row_exactly_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let token = admin.token.as_str();
    let client = app.db.client().await;

    // A change through the API carries its author.
    let (status, _) = put_config(&app, Some(token), "retention.batch_size", json!({"value": 250})).await;
    assert_eq!(status, StatusCode::OK);
    // Many rows with the same time (one transaction), so that ties are paged by id.
    client
        .batch_execute(
            "INSERT INTO devx.audit_logs (entity_type, entity_id, action, actor, new_values, created_at)
             SELECT 'test.thing', g::text, 'insert', 'system:test', jsonb_build_object('n', g), now() - interval '1 hour'
               FROM generate_series(1, 7) g;
             INSERT INTO devx.audit_logs (entity_type, entity_id, action, actor, created_at) VALUES
                 ('test.window', 'a', 'delete', 'system:test', now() - interval '3 days'),
                 ('test.window', 'b', 'delete', 'system:test', now() - interval '2 days'),
                 ('test.window', 'c', 'delete', 'system:test', now() - interval '1 day');",
        )
        .await
        .unwrap();

    let expected: Vec<i64> =
        column(&client, "SELECT id FROM devx.audit_logs ORDER BY created_at DESC, id DESC", &[]).await;
    assert!(expected.len() > 12);
    let ids = |items: &[Value]| items.iter().map(|i| i["id"].as_i64().unwrap()).collect::<Vec<_>>();
    let items = all_pages(&app, token, "/api/admin/audit?limit=3").await;
    assert_eq!(ids(&items), expected, "newest first, every row once");

    let things = all_pages(&app, token, "/api/admin/audit?entity_type=test.thing&limit=2").await;
    let mut entity_ids: Vec<String> = things.iter().map(|i| i["entity_id"].as_str().unwrap().to_string()).collect();
    entity_ids.sort();
    assert_eq!(entity_ids, ["1", "2", "3", "4", "5", "6", "7"]);

    let path = "/api/admin/audit?entity_type=devx.system_config&entity_id=retention.batch_size";
    let items = all_pages(&app, token, path).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["actor"], format!("user:{}", admin.user_id));
    assert_eq!(items[0]["action"], "update");
    assert_eq!(items[0]["old_values"]["value"], 1000);
    assert_eq!(items[0]["new_values"]["value"], 250);

    let actor = format!("user:{}", admin.user_id);
    let mine = all_pages(&app, token, &format!("/api/admin/audit?actor={actor}&limit=2")).await;
    assert!(!mine.is_empty() && mine.iter().all(|i| i["actor"] == actor.as_str()));
    let in_db: i64 =
        client.query_one("SELECT count(*) FROM devx.audit_logs WHERE actor = $1", &[&actor]).await.unwrap().get(0);
    assert_eq!(mine.len() as i64, in_db);

    let deletes = all_pages(&app, token, "/api/admin/audit?action=delete&limit=2").await;
    assert_eq!(deletes.len(), 3);
    assert!(deletes.iter().all(|i| i["action"] == "delete"));

    let now = Utc::now();
    let since = rfc3339(now - TimeDelta::hours(60));
    let until = rfc3339(now - TimeDelta::hours(12));
    let window =
        all_pages(&app, token, &format!("/api/admin/audit?entity_type=test.window&since={since}&until={until}")).await;
    let got: Vec<&str> = window.iter().map(|i| i["entity_id"].as_str().unwrap()).collect();
    assert_eq!(got, ["c", "b"]);

    // A window that ends before it starts holds nothing.
    let (status, page) = app.get(&format!("/api/admin/audit?since={until}&until={since}"), Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"], json!([]));
    for bad in ["action=bogus", "limit=0", "cursor=garbage", "colour=red", "since=yesterday"] {
        let (status, problem) = app.get(&format!("/api/admin/audit?{bad}"), Some(token)).await;
        assert_problem(status, &problem, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn activity_is_the_last_seven_days_of_the_trail() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let client = app.db.client().await;
    client
        .batch_execute(
            "INSERT INTO devx.audit_logs (entity_type, entity_id, action, actor, created_at) VALUES
                 ('test.old', 'x', 'update', 'system:test', now() - interval '8 days'),
                 ('test.new', 'y', 'update', 'system:test', now() - interval '6 days')",
        )
        .await
        .unwrap();
    let items = all_pages(&app, &admin.token, "/api/admin/activity?limit=2").await;
    let expected: Vec<i64> = column(
        &client,
        "SELECT id FROM devx.audit_logs WHERE created_at > now() - interval '7 days' ORDER BY created_at DESC, id DESC",
        &[],
    )
    .await;
    let got: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(got, expected);
    assert!(items.iter().any(|i| i["entity_type"] == "test.new"));
    assert!(!items.iter().any(|i| i["entity_type"] == "test.old"));
}

#[tokio::test]
async fn stats_count_by_status_and_size_the_database() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let user = app.register("user@example.com").await;
    let client = app.db.client().await;
    let owner: Uuid = user.user_id.parse().unwrap();
    let project: Uuid = client
        .query_one("INSERT INTO devx.projects (owner_id, name) VALUES ($1, 'a') RETURNING id", &[&owner])
        .await
        .unwrap()
        .get(0);
    client
        .execute(
            "INSERT INTO devx.projects (owner_id, name, status) VALUES ($1, 'b', 'active'), ($1, 'c', 'archived')",
            &[&owner],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO devx.containers (container_id, project_id, owner_id, name, status)
             VALUES ('rt-1', $1, $2, 'web', 'running'), ('rt-2', $1, $2, 'db', 'stopped')",
            &[&project, &owner],
        )
        .await
        .unwrap();
    client
        .execute("INSERT INTO devx.deployments (project_id, status) VALUES ($1, 'failed')", &[&project])
        .await
        .unwrap();
    client
        .execute("INSERT INTO devx.tasks (project_id, title) VALUES ($1, 't1'), ($1, 't2')", &[&project])
        .await
        .unwrap();

    let (status, stats) = app.get("/api/admin/stats", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["users"], json!({"total": 2, "active": 2, "admins": 1, "closed": 0}));
    assert_eq!(stats["projects_by_status"], json!({"active": 2, "archived": 1, "deleted": 0}));
    assert_eq!(stats["containers_by_status"], json!({"created": 0, "running": 1, "stopped": 1, "deleted": 0}));
    assert_eq!(stats["deployments_by_status"]["failed"], 1);
    assert_eq!(stats["deployments_by_status"]["running"], 0);
    assert_eq!(stats["deployments_by_status"]["queued"], 0, "every status, the queue's too");
    assert_eq!(stats["deployments_by_status"]["cancelled"], 0);
    assert_eq!(stats["tasks_by_status"]["pending"], 2);
    assert_eq!(stats["database"]["name"], app.db.name());
    assert!(stats["database"]["size_bytes"].as_i64().unwrap() > 0);
    let tables = stats["largest_tables"].as_array().unwrap();
    assert!(!tables.is_empty() && tables.len() <= 10);
    assert!(tables.iter().all(|t| t["schema"].is_string() && t["table"].is_string() && t["total_bytes"].is_i64()));
}

/// What every retention rule finds in [`backdated_rows`].
struct Fixture {
    /// The account closed eight years ago, and its project.
    purged_user: Uuid,
    purged_project: Uuid,
    /// The account closed a year ago.
    kept_user: Uuid,
}

/// Rows on both sides of every retention period (the defaults: chat 6
/// months, files and containers 1 year, execution logs 90 days, closed
/// accounts 7 years, audit 1 year).
async fn backdated_rows(client: &Client) -> Fixture {
    let (owner, project) = seed_owner(client).await;
    // Chat: 6 older than 6 months (one just over), 4 younger (one just under).
    client
        .execute(
            "INSERT INTO devx.chat_messages (project_id, session_id, role, content, created_at)
             SELECT $1::uuid, 's1', 'user', 'old ' || g, now() - interval '7 months' FROM generate_series(1, 5) g
             UNION ALL SELECT $1::uuid, 's1', 'user', 'just old', now() - interval '6 months 1 hour'
             UNION ALL SELECT $1::uuid, 's1', 'user', 'young ' || g, now() - interval '5 months' FROM generate_series(1, 2) g
             UNION ALL SELECT $1::uuid, 's1', 'user', 'just young', now() - interval '6 months' + interval '1 hour'
             UNION ALL SELECT $1::uuid, 's1', 'user', 'new', now()",
            &[&project],
        )
        .await
        .unwrap();
    // Files: 3 deleted two years ago go; one deleted recently and two live old ones stay.
    client
        .execute(
            "INSERT INTO devx.file_storage (project_id, file_path, file_name, is_deleted, created_at, updated_at)
             SELECT $1::uuid, '/gone/' || g, 'f', true, now() - interval '3 years', now() - interval '2 years'
               FROM generate_series(1, 3) g
             UNION ALL SELECT $1::uuid, '/recently-deleted', 'f', true, now() - interval '3 years', now() - interval '6 months'
             UNION ALL SELECT $1::uuid, '/live/' || g, 'f', false, now() - interval '3 years', now() - interval '2 years'
               FROM generate_series(1, 2) g",
            &[&project],
        )
        .await
        .unwrap();
    // Containers: 3 stopped and 1 deleted two years ago go; an old running one
    // and a recently stopped one stay.
    client
        .execute(
            "INSERT INTO devx.containers (container_id, project_id, owner_id, name, status, created_at, updated_at)
             SELECT 'old-stopped-' || g, $1::uuid, $2::uuid, 'c', 'stopped', now() - interval '3 years', now() - interval '2 years'
               FROM generate_series(1, 3) g
             UNION ALL SELECT 'old-deleted', $1::uuid, $2::uuid, 'c', 'deleted', now() - interval '3 years', now() - interval '2 years'
             UNION ALL SELECT 'old-running', $1::uuid, $2::uuid, 'c', 'running', now() - interval '3 years', now() - interval '2 years'
             UNION ALL SELECT 'new-stopped', $1::uuid, $2::uuid, 'c', 'stopped', now() - interval '2 months', now() - interval '1 month'",
            &[&project, &owner],
        )
        .await
        .unwrap();
    // Execution logs: 3 lines older than 90 days go, 2 stay.
    let task: Uuid =
        one(client, "INSERT INTO devx.tasks (project_id, title) VALUES ($1, 'build') RETURNING id", &[&project]).await;
    let execution: Uuid = one(
        client,
        "INSERT INTO devx.task_executions (task_id, agent_type) VALUES ($1, 'codegen') RETURNING id",
        &[&task],
    )
    .await;
    client
        .execute(
            "INSERT INTO devx.execution_logs (execution_id, seq, message, logged_at)
             SELECT $1, g, 'line ' || g, CASE WHEN g <= 3 THEN now() - interval '100 days' ELSE now() - interval '10 days' END
               FROM generate_series(1, 5) g",
            &[&execution],
        )
        .await
        .unwrap();
    // Audit: 3 rows two years old go, one 11 months old stays.
    client
        .batch_execute(
            "INSERT INTO devx.audit_logs (entity_type, entity_id, action, actor, created_at)
             SELECT 'test.ancient', g::text, 'update', 'system:test', now() - interval '2 years' FROM generate_series(1, 3) g
             UNION ALL SELECT 'test.recent', '1', 'update', 'system:test', now() - interval '11 months'",
        )
        .await
        .unwrap();
    // Closed accounts: one closed 8 years ago is purged with its data, one closed a year ago stays.
    let purged_user: Uuid = one(
        client,
        "INSERT INTO devx.users (email, is_active, deleted_at, created_at)
             VALUES ('gone@example.com', false, now() - interval '8 years', now() - interval '9 years') RETURNING id",
        &[],
    )
    .await;
    let purged_project: Uuid =
        one(client, "INSERT INTO devx.projects (owner_id, name) VALUES ($1, 'theirs') RETURNING id", &[&purged_user])
            .await;
    client
        .execute(
            "INSERT INTO devx.chat_messages (project_id, session_id, role, content) VALUES ($1, 's2', 'user', 'theirs')",
            &[&purged_project],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO devx.containers (container_id, project_id, owner_id, name, status)
             VALUES ('theirs', $1, $2, 'c', 'running')",
            &[&purged_project, &purged_user],
        )
        .await
        .unwrap();
    let kept_user: Uuid = one(client, "INSERT INTO devx.users (email, is_active, deleted_at) VALUES ('closed@example.com', false, now() - interval '1 year')
             RETURNING id",
            &[]).await;
    client.execute("INSERT INTO devx.projects (owner_id, name) VALUES ($1, 'kept')", &[&kept_user]).await.unwrap();
    Fixture { purged_user, purged_project, kept_user }
}

const COUNTED: &[&str] = &[
    "devx.users",
    "devx.projects",
    "devx.chat_messages",
    "devx.file_storage",
    "devx.containers",
    "devx.tasks",
    "devx.execution_logs",
    "devx.audit_logs",
];

async fn row_counts(client: &Client) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for table in COUNTED {
        out.push((*table, count(client, &format!("SELECT count(*) FROM {table}")).await));
    }
    out
}

#[tokio::test]
async fn retention_removes_exactly_the_aged_rows_in_batches_and_a_dry_run_nothing() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    let pool = crate::app::pool(&db).await;
    let fixture = backdated_rows(&client).await;
    client.execute("UPDATE devx.system_config SET value = '2' WHERE key = 'retention.batch_size'", &[]).await.unwrap();
    let expected = [
        ("chat_messages", 6),
        ("file_records", 3),
        ("containers", 4),
        ("execution_logs", 3),
        ("closed_accounts", 1),
        ("audit_logs", 3),
    ];

    let before = row_counts(&client).await;
    let report = retention::run(&pool, &RunOptions { dry_run: true, batch_size: None }).await.unwrap();
    assert!(report.dry_run && !report.failed(), "{report:?}");
    for (name, rows) in expected {
        let t = report.table(name).unwrap_or_else(|| panic!("{name} reported"));
        assert_eq!((t.rows, t.batches), (rows, 0), "dry run, {name}: {t:?}");
        assert!(t.cutoff.is_some());
    }
    assert_eq!(row_counts(&client).await, before, "a dry run changes nothing");

    let report = retention::run(&pool, &RunOptions::default()).await.unwrap();
    assert!(!report.dry_run && !report.failed(), "{report:?}");
    assert_eq!(report.batch_size, 2);
    for (name, rows) in expected {
        let t = report.table(name).unwrap();
        assert_eq!(t.rows, rows, "{name}: {t:?}");
        // Batches of 2, until one deletes fewer than 2.
        assert_eq!(u64::from(t.batches), rows / 2 + 1, "{name}: {t:?}");
    }
    assert!(report.table("chat_messages").unwrap().batches > 1, "more than one batch ran");
    assert_eq!(report.total_rows(), 20);

    // Exactly the aged rows went; everything younger stayed.
    let remaining = |sql: &'static str| count(&client, sql);
    assert_eq!(
        remaining("SELECT count(*) FROM devx.chat_messages WHERE created_at < now() - interval '6 months'").await,
        0
    );
    let chat: Vec<String> =
        column(&client, "SELECT content FROM devx.chat_messages ORDER BY created_at, content", &[]).await;
    assert_eq!(chat, ["just young", "young 1", "young 2", "new"], "the purged account's message went with it");
    let files: Vec<String> = column(&client, "SELECT file_path FROM devx.file_storage ORDER BY file_path", &[]).await;
    assert_eq!(files, ["/live/1", "/live/2", "/recently-deleted"]);
    let containers: Vec<String> =
        column(&client, "SELECT container_id FROM devx.containers ORDER BY container_id", &[]).await;
    assert_eq!(containers, ["new-stopped", "old-running"]);
    let seqs: Vec<i64> = column(&client, "SELECT seq FROM devx.execution_logs ORDER BY seq", &[]).await;
    assert_eq!(seqs, [4, 5]);
    assert_eq!(remaining("SELECT count(*) FROM devx.audit_logs WHERE entity_type = 'test.ancient'").await, 0);
    assert_eq!(remaining("SELECT count(*) FROM devx.audit_logs WHERE entity_type = 'test.recent'").await, 1);

    // The account closed 8 years ago is gone with everything it owned; the one closed a year ago stays.
    let user_exists = |id: Uuid| {
        let client = &client;
        async move { client.query_opt("SELECT 1 FROM devx.users WHERE id = $1", &[&id]).await.unwrap().is_some() }
    };
    assert!(!user_exists(fixture.purged_user).await);
    assert!(user_exists(fixture.kept_user).await);
    let purged_projects: i64 = client
        .query_one(
            "SELECT count(*) FROM devx.projects WHERE id = $1 OR owner_id = $2",
            &[&fixture.purged_project, &fixture.purged_user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(purged_projects, 0);
    assert_eq!(remaining("SELECT count(*) FROM devx.containers WHERE container_id = 'theirs'").await, 0);
    assert_eq!(remaining("SELECT count(*) FROM devx.projects WHERE name = 'kept'").await, 1);

    // The deletions are in the audit trail, by retention.
    let by_retention: i64 = client
        .query_one(
            "SELECT count(*) FROM devx.audit_logs
              WHERE actor = 'system:retention' AND action = 'delete' AND entity_type = 'devx.containers'
                AND entity_id <> '*'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(by_retention, 5, "4 aged containers and the purged account's one");
    let user_deletion: String = client
        .query_one(
            "SELECT actor FROM devx.audit_logs WHERE entity_type = 'devx.users' AND entity_id = $1 AND action = 'delete'",
            &[&fixture.purged_user.to_string()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(user_deletion, retention::ACTOR);

    // Each table the run deleted from has one summary row: what went and the cutoff.
    let summaries = client
        .query(
            "SELECT entity_type, (new_values ->> 'rows')::int8, new_values ->> 'retention' FROM devx.audit_logs
              WHERE entity_id = '*' AND actor = 'system:retention' ORDER BY entity_type",
            &[],
        )
        .await
        .unwrap();
    let summaries: Vec<(String, i64, String)> = summaries.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    for (name, rows) in expected {
        assert!(
            summaries.iter().any(|(_, n, rule)| rule == name && *n == i64::try_from(rows).unwrap()),
            "{name}: {summaries:?}"
        );
    }
    assert!(summaries.iter().any(|(table, _, _)| table == "devx.execution_logs"), "append-only tables too");

    // Nothing is left to do.
    let again = retention::run(&pool, &RunOptions { dry_run: true, batch_size: None }).await.unwrap();
    assert_eq!(again.total_rows(), 0, "{again:?}");
}

#[tokio::test]
async fn retention_skips_bad_periods_and_concurrent_runs() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    let pool = crate::app::pool(&db).await;
    backdated_rows(&client).await;
    // Written behind the API's back: a period that would delete everything, and one that is no period.
    client
        .batch_execute(
            "UPDATE devx.system_config SET value = '\"0 days\"' WHERE key = 'retention.chat_messages';
             UPDATE devx.system_config SET value = '\"whenever\"' WHERE key = 'retention.file_records';",
        )
        .await
        .unwrap();

    // While another session holds the retention lock, a run is refused; a dry run is not.
    let other = db.client().await;
    other.execute("SELECT pg_advisory_lock(hashtext('devx.retention'))", &[]).await.unwrap();
    let busy = retention::run(&pool, &RunOptions::default()).await;
    assert!(matches!(busy, Err(RetentionError::Busy)), "{busy:?}");
    assert!(retention::run(&pool, &RunOptions { dry_run: true, batch_size: None }).await.is_ok());
    other.execute("SELECT pg_advisory_unlock(hashtext('devx.retention'))", &[]).await.unwrap();

    let report = retention::run(&pool, &RunOptions { dry_run: false, batch_size: Some(100) }).await.unwrap();
    assert!(report.failed());
    let chat = report.table("chat_messages").unwrap();
    assert!(chat.error.as_deref().unwrap().contains("not a positive period"), "{chat:?}");
    let files = report.table("file_records").unwrap();
    assert!(files.error.as_deref().unwrap().contains("not a PostgreSQL interval"), "{files:?}");
    assert_eq!((chat.rows, files.rows), (0, 0));
    assert_eq!(count(&client, "SELECT count(*) FROM devx.file_storage").await, 6);
    assert_eq!(report.table("containers").unwrap().rows, 4, "the other tables still ran");
    assert_eq!(report.table("containers").unwrap().batches, 1);
}

#[tokio::test]
async fn the_cli_prints_what_it_would_remove_and_then_removes_it() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    backdated_rows(&client).await;
    let before = row_counts(&client).await;

    let url = db.url();
    let dry = tokio::task::spawn_blocking({
        let url = url.clone();
        move || harness::devx_command().env("DATABASE_URL", url).args(["retention", "run", "--dry-run"]).output()
    })
    .await
    .unwrap()
    .expect("devx runs");
    let stdout = String::from_utf8_lossy(&dry.stdout);
    let stderr = String::from_utf8_lossy(&dry.stderr);
    assert!(dry.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for (name, rows) in [
        ("chat_messages", "6 rows"),
        ("file_records", "3 rows"),
        ("containers", "4 rows"),
        ("execution_logs", "3 rows"),
        ("closed_accounts", "1 row "),
        ("audit_logs", "3 rows"),
    ] {
        let line =
            stdout.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"));
        assert!(line.contains(&format!("would remove {rows}")), "{line}");
    }
    assert!(stdout.contains("total: would remove 20 rows"), "{stdout}");
    assert_eq!(row_counts(&client).await, before, "the dry run changed nothing");

    let real = tokio::task::spawn_blocking(move || {
        harness::devx_command().env("DATABASE_URL", url).args(["retention", "run", "--batch-size", "4"]).output()
    })
    .await
    .unwrap()
    .expect("devx runs");
    let stdout = String::from_utf8_lossy(&real.stdout);
    assert!(real.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&real.stderr));
    let chat = stdout.lines().find(|l| l.starts_with("chat_messages")).unwrap();
    assert!(chat.contains("removed 6 rows") && chat.contains("in 2 batches"), "{chat}");
    assert!(stdout.contains("total: removed 20 rows"), "{stdout}");
    assert_eq!(count(&client, "SELECT count(*) FROM devx.chat_messages").await, 4);
}

/// An error log's whole life is in the audit trail: created, three recovery
/// attempts and the resolve, each an audit row naming the caller.
#[tokio::test]
async fn an_error_logs_recoveries_and_resolve_are_audited() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let t = Some(ada.token.as_str());
    let (status, error) = app.post("/api/errors", t, json!({"error_type": "api", "message": "boom"})).await;
    assert_eq!(status, StatusCode::CREATED, "{error}");
    let id = error["id"].as_str().unwrap().to_string();
    for outcome in ["failed", "failed", "failed"] {
        let (status, body) =
            app.post(&format!("/api/errors/{id}/recovery-attempt"), t, json!({"outcome": outcome})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = app.post(&format!("/api/errors/{id}/resolve"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let client = app.db.client().await;
    let trail = client
        .query(
            "SELECT action, actor FROM devx.audit_logs WHERE entity_type = 'devx.error_logs' AND entity_id = $1
              ORDER BY id",
            &[&id],
        )
        .await
        .unwrap();
    let actions: Vec<String> = trail.iter().map(|r| r.get(0)).collect();
    assert_eq!(actions.first().map(String::as_str), Some("insert"), "{actions:?}");
    assert!(actions.len() >= 5, "created, 3 attempts, resolved: {actions:?}");
    assert!(trail.iter().all(|r| r.get::<_, String>(1) == format!("user:{}", ada.user_id)));
}
