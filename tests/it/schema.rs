//! Invariants of the schema the migrations build: the database guards its own
//! integrity, so these tests talk SQL to a freshly migrated database.

use tokio_postgres::Client;
use uuid::Uuid;

use crate::harness::TestDb;
use crate::support::{column, seed_owner};

/// The constraint PostgreSQL names when it rejects `sql`.
async fn rejected_by(client: &Client, sql: &str) -> String {
    let err = client.batch_execute(sql).await.expect_err(&format!("should be rejected: {sql}"));
    let db = err.as_db_error().unwrap_or_else(|| panic!("not a database error: {err}"));
    db.constraint().unwrap_or_else(|| panic!("no constraint named for {sql}: {}", db.message())).to_string()
}

#[tokio::test]
async fn the_migrated_schema_has_no_structural_findings() {
    let db = TestDb::migrated().await;
    let pool = crate::app::pool(&db).await;
    let client = pool.client().await.unwrap();
    let findings = devx::diagnostics::introspect::schema_findings(&client).await.unwrap();
    assert!(findings.is_empty(), "schema findings on a fresh database: {findings:#?}");
}

#[tokio::test]
async fn every_foreign_key_to_projects_and_users_has_a_deliberate_on_delete() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    // Everything that belongs to a project goes with it; only history that
    // must outlive it (what was generated, and when) is unlinked instead.
    let not_cascading: Vec<String> = column(
        &client,
        "SELECT conrelid::regclass::text || '.' || conname || ' ' || confdeltype::text FROM pg_constraint
              WHERE contype = 'f' AND confrelid = 'devx.projects'::regclass AND confdeltype <> 'c'",
        &[],
    )
    .await;
    assert_eq!(
        not_cascading,
        ["devx.generation_history.generation_history_project_id_fkey n"],
        "foreign keys to projects that neither cascade nor keep history"
    );
    // No foreign key anywhere is left at the default NO ACTION by accident.
    let defaulted: Vec<String> = column(
        &client,
        "SELECT conrelid::regclass::text || '.' || conname FROM pg_constraint c
               JOIN pg_namespace n ON n.oid = c.connamespace
              WHERE contype = 'f' AND n.nspname IN ('devx', 'templates') AND confdeltype = 'a'",
        &[],
    )
    .await;
    assert!(defaulted.is_empty(), "foreign keys without an explicit ON DELETE: {defaulted:?}");
}

#[tokio::test]
async fn check_unique_and_foreign_key_rules_reject_bad_rows() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    let (user, project) = seed_owner(&client).await;
    let cases: Vec<(String, &str)> = vec![
        ("INSERT INTO devx.users (email) VALUES ('OWNER@example.com')".into(), "users_email_lower_key"),
        (
            "INSERT INTO devx.users (email, plan_type) VALUES ('p@example.com', 'platinum')".into(),
            "users_plan_type_check",
        ),
        ("INSERT INTO devx.users (email, role) VALUES ('r@example.com', 'root')".into(), "users_role_check"),
        (
            format!("INSERT INTO devx.projects (owner_id, name, status) VALUES ('{user}', 'x', 'paused')"),
            "projects_status_check",
        ),
        (
            format!("INSERT INTO devx.projects (owner_id, name) VALUES ('{}', 'x')", Uuid::new_v4()),
            "projects_owner_id_fkey",
        ),
        (
            format!("INSERT INTO devx.tasks (project_id, title, priority) VALUES ('{project}', 't', 11)"),
            "tasks_priority_check",
        ),
        (
            format!("INSERT INTO devx.project_contexts (project_id, security_score) VALUES ('{project}', 101)"),
            "project_contexts_security_score_check",
        ),
        (
            format!(
                "INSERT INTO devx.containers (container_id, project_id, owner_id, name, status, assigned_port)
                 VALUES ('c1', '{project}', '{user}', 'web', 'running', 70000)"
            ),
            "containers_assigned_port_check",
        ),
        (
            format!(
                "INSERT INTO devx.containers (container_id, project_id, owner_id, name, status) VALUES ('c1', '{project}', '{user}', 'web', 'paused')"
            ),
            "containers_status_check",
        ),
        (
            format!(
                "INSERT INTO devx.api_keys (user_id, name, prefix, key_hash, scopes) VALUES ('{user}', 'k', 'devx_ab', decode(repeat('ab', 32), 'hex'), '{{root}}')"
            ),
            "api_keys_scopes_check",
        ),
        (
            format!(
                "INSERT INTO devx.file_storage (project_id, file_path, file_name, file_size) VALUES ('{project}', 'a.txt', 'a.txt', -1)"
            ),
            "file_storage_file_size_check",
        ),
    ];
    for (sql, constraint) in &cases {
        assert_eq!(&rejected_by(&client, sql).await, constraint, "{sql}");
    }

    // Two running containers cannot share a port; a stopped one can.
    client
        .batch_execute(&format!(
            "INSERT INTO devx.containers (container_id, project_id, owner_id, name, status, assigned_port)
             VALUES ('c1', '{project}', '{user}', 'web', 'running', 3000),
                    ('c2', '{project}', '{user}', 'old', 'stopped', 3000)"
        ))
        .await
        .unwrap();
    let second_running = format!(
        "INSERT INTO devx.containers (container_id, project_id, owner_id, name, status, assigned_port)
         VALUES ('c3', '{project}', '{user}', 'api', 'running', 3000)"
    );
    assert_eq!(rejected_by(&client, &second_running).await, "containers_running_port_key");

    // A subtask lives in its parent's project.
    let other: Uuid = client
        .query_one("INSERT INTO devx.projects (owner_id, name) VALUES ($1, 'other') RETURNING id", &[&user])
        .await
        .unwrap()
        .get(0);
    let parent: Uuid = client
        .query_one("INSERT INTO devx.tasks (project_id, title) VALUES ($1, 'parent') RETURNING id", &[&project])
        .await
        .unwrap()
        .get(0);
    let cross =
        format!("INSERT INTO devx.tasks (project_id, parent_task_id, title) VALUES ('{other}', '{parent}', 'child')");
    assert_eq!(rejected_by(&client, &cross).await, "tasks_parent_task_id_project_id_fkey");

    // One live record per path; a deleted one frees the path.
    client
        .batch_execute(&format!(
            "INSERT INTO devx.file_storage (project_id, file_path, file_name) VALUES ('{project}', 'src/a.rs', 'a.rs')"
        ))
        .await
        .unwrap();
    let again = format!(
        "INSERT INTO devx.file_storage (project_id, file_path, file_name) VALUES ('{project}', 'src/a.rs', 'a.rs')"
    );
    assert_eq!(rejected_by(&client, &again).await, "file_storage_live_path_key");
    client.batch_execute("UPDATE devx.file_storage SET is_deleted = true").await.unwrap();
    client.batch_execute(&again).await.unwrap();
}

#[tokio::test]
async fn deleting_a_project_leaves_no_orphans_and_history_survives_its_user() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    let (user, project) = seed_owner(&client).await;
    client
        .batch_execute(&format!(
            "INSERT INTO devx.project_contexts (project_id) VALUES ('{project}');
             INSERT INTO devx.containers (container_id, project_id, owner_id, name) VALUES ('c1', '{project}', '{user}', 'web');
             INSERT INTO devx.chat_messages (project_id, session_id, role, content) VALUES ('{project}', 's1', 'user', 'hi');
             INSERT INTO devx.tasks (project_id, title) VALUES ('{project}', 't');
             INSERT INTO devx.generation_history (user_id, project_id, generation_type, status)
                  VALUES ('{user}', '{project}', 'project', 'completed');"
        ))
        .await
        .unwrap();
    client.execute("DELETE FROM devx.projects WHERE id = $1", &[&project]).await.unwrap();
    for table in ["project_contexts", "containers", "chat_messages", "tasks"] {
        let n: i64 = client.query_one(&format!("SELECT count(*) FROM devx.{table}"), &[]).await.unwrap().get(0);
        assert_eq!(n, 0, "devx.{table} kept rows of a deleted project");
    }
    let kept: (i64, bool) = client
        .query_one("SELECT count(*), bool_and(project_id IS NULL) FROM devx.generation_history", &[])
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(kept, (1, true), "generation history survives its project, unlinked");
    client.execute("DELETE FROM devx.users WHERE id = $1", &[&user]).await.unwrap();
    let n: i64 = client.query_one("SELECT count(*) FROM devx.generation_history", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn updated_at_and_audit_triggers_record_the_actor_and_only_what_changed() {
    let db = TestDb::migrated().await;
    let mut client = db.client().await;
    let tx = client.transaction().await.unwrap();
    tx.execute("SELECT set_config('devx.actor', 'user:test', true)", &[]).await.unwrap();
    let (id, created): (Uuid, chrono::DateTime<chrono::Utc>) = tx
        .query_one(
            "INSERT INTO devx.users (email, password_hash) VALUES ('a@example.com', 'secret-hash')
             RETURNING id, updated_at",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    tx.commit().await.unwrap();

    let tx = client.transaction().await.unwrap();
    tx.execute("SELECT set_config('devx.actor', 'user:editor', true)", &[]).await.unwrap();
    tx.execute("UPDATE devx.users SET name = 'Ada', password_hash = 'other' WHERE id = $1", &[&id]).await.unwrap();
    // Bookkeeping alone is not an audited change.
    tx.execute("UPDATE devx.users SET last_login = now() WHERE id = $1", &[&id]).await.unwrap();
    tx.commit().await.unwrap();
    let updated: chrono::DateTime<chrono::Utc> =
        client.query_one("SELECT updated_at FROM devx.users WHERE id = $1", &[&id]).await.unwrap().get(0);
    assert!(updated > created, "updated_at moves on update");

    let rows = client
        .query(
            "SELECT action, actor, old_values, new_values FROM devx.audit_logs
              WHERE entity_type = 'devx.users' AND entity_id = $1 ORDER BY id",
            &[&id.to_string()],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "an insert and one real update");
    let insert_new: serde_json::Value = rows[0].get(3);
    assert_eq!(rows[0].get::<_, String>(0), "insert");
    assert_eq!(rows[0].get::<_, String>(1), "user:test");
    assert_eq!(insert_new["password_hash"], "[redacted]", "hashes never reach the audit trail");
    assert_eq!(rows[1].get::<_, String>(0), "update");
    assert_eq!(rows[1].get::<_, String>(1), "user:editor");
    let new: serde_json::Value = rows[1].get(3);
    let mut changed: Vec<&String> = new.as_object().unwrap().keys().collect();
    changed.sort();
    assert_eq!(changed, ["name", "password_hash"], "only the changed columns are recorded");
    assert_eq!(new["name"], "Ada");

    // Without a named actor the trail still says who: the database role.
    client.execute("UPDATE devx.users SET name = 'B' WHERE id = $1", &[&id]).await.unwrap();
    let actor: String =
        client.query_one("SELECT actor FROM devx.audit_logs ORDER BY id DESC LIMIT 1", &[]).await.unwrap().get(0);
    assert_eq!(actor, "db:postgres");
}

#[tokio::test]
async fn containment_and_array_queries_use_their_gin_indexes() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    client.batch_execute("SET enable_seqscan = off").await.unwrap();
    let cases = [
        ("SELECT id FROM templates.templates WHERE tech_stack @> ARRAY['python']", "templates_tech_stack_idx"),
        ("SELECT id FROM templates.templates WHERE tags @> ARRAY['api']", "templates_tags_idx"),
        ("SELECT id FROM templates.templates WHERE files @> '{\"README.md\": \"x\"}'", "templates_files_idx"),
        (
            "SELECT project_id FROM devx.project_contexts WHERE codebase @> '{\"framework\": \"react\"}'",
            "project_contexts_codebase_idx",
        ),
        (
            "SELECT project_id FROM devx.project_contexts WHERE dependencies @> ARRAY['react']",
            "project_contexts_dependencies_idx",
        ),
        ("SELECT id FROM devx.tasks WHERE requirements @> '{\"language\": \"rust\"}'", "tasks_requirements_idx"),
        ("SELECT id FROM devx.containers WHERE labels @> '{\"tier\": \"web\"}'", "containers_labels_idx"),
    ];
    for (sql, index) in cases {
        let plan: Vec<String> = column(&client, &format!("EXPLAIN {sql}"), &[]).await;
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{sql} should use {index}:\n{plan}");
    }
}

#[tokio::test]
async fn every_view_of_the_design_answers() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    let views: Vec<String> = column(
        &client,
        "SELECT table_name::text FROM information_schema.views WHERE table_schema = 'devx' ORDER BY 1",
        &[],
    )
    .await;
    let expected = [
        "active_containers",
        "active_tasks",
        "error_summary",
        "pr_validation_summary",
        "recent_activity",
        "task_execution_summary",
        "user_projects",
    ];
    assert_eq!(views, expected);
    let (user, project) = seed_owner(&client).await;
    client
        .batch_execute(&format!(
            "INSERT INTO devx.containers (container_id, project_id, owner_id, name, status, assigned_port)
             VALUES ('c1', '{project}', '{user}', 'web', 'running', 3000)"
        ))
        .await
        .unwrap();
    for view in expected {
        client.query(&format!("SELECT * FROM devx.{view}"), &[]).await.unwrap();
    }
    let active: i64 = client.query_one("SELECT count(*) FROM devx.active_containers", &[]).await.unwrap().get(0);
    assert_eq!(active, 1);
}

#[tokio::test]
async fn retention_settings_are_seeded() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    let keys: Vec<String> =
        column(&client, "SELECT key FROM devx.system_config WHERE key LIKE 'retention.%' ORDER BY key", &[]).await;
    for key in
        ["retention.chat_messages", "retention.container_metadata", "retention.file_records", "retention.user_data"]
    {
        assert!(keys.iter().any(|k| k == key), "{key} missing from system_config: {keys:?}");
    }
}
