//! Invariants of the schema the migrations build: the database guards its own
//! integrity, so these tests talk SQL to a freshly migrated database.

use std::collections::{BTreeMap, BTreeSet};

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
        "SELECT n.nspname || '.' || t.relname || '.' || conname || ' ' || confdeltype::text
               FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
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
        // Key existence in the codebase has an index of its own.
        (
            "SELECT project_id FROM devx.project_contexts WHERE codebase ? 'package.json'",
            "project_contexts_codebase_keys_idx",
        ),
        (
            "SELECT project_id FROM devx.project_contexts WHERE codebase ?| ARRAY['go.mod', 'Cargo.toml']",
            "project_contexts_codebase_keys_idx",
        ),
        (
            "SELECT project_id FROM devx.project_contexts WHERE environment_vars ? 'DATABASE_URL'",
            "project_contexts_environment_vars_idx",
        ),
        (
            "SELECT project_id FROM devx.project_contexts WHERE environment_vars @> '{\"NODE_ENV\": \"production\"}'",
            "project_contexts_environment_vars_idx",
        ),
        (
            "SELECT id FROM devx.modifications WHERE impact_analysis @> '{\"risk\": \"high\"}'",
            "modifications_impact_analysis_idx",
        ),
        (
            "SELECT id FROM devx.modifications WHERE test_results @> '{\"passed\": false}'",
            "modifications_test_results_idx",
        ),
        (
            "SELECT id FROM devx.projects WHERE owner_id = '7f1c0c6e-2f4e-4a8b-9a51-1c7b1d2e3f40' AND status = 'archived'",
            "projects_owner_id_status_idx",
        ),
        (
            "SELECT id FROM devx.modifications WHERE project_id = '7f1c0c6e-2f4e-4a8b-9a51-1c7b1d2e3f40' AND status = 'pending'",
            "modifications_project_id_status_idx",
        ),
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
        "user_summaries",
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

/// The container-keyed design's two views, read as it writes them:
/// `active_containers` is the containers created or running (newest first),
/// each once, with the project living in it and its user's email;
/// `user_projects` is one row per project with its container's status, port
/// and URL and that container's messages counted. devx's per-user summary
/// is `user_summaries`.
#[tokio::test]
async fn the_container_keyed_views_read_as_the_design_writes_them() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    let (user, legacy) = seed_owner(&client).await;
    let container = |runtime: &str, status: &str, port: Option<i32>, project: Option<Uuid>| {
        let (client, runtime, status) = (&client, runtime.to_string(), status.to_string());
        async move {
            crate::support::one::<Uuid>(
                client,
                "INSERT INTO devx.containers (container_id, project_id, owner_id, name, status, assigned_port, url)
                 VALUES ($1, $2, $3, $1, $4, $5, 'http://localhost/' || $1) RETURNING id",
                &[&runtime, &project, &user, &status, &port],
            )
            .await
        }
    };
    let solo = container("solo", "created", Some(4000), None).await;
    let web = container("web", "running", Some(3000), Some(legacy)).await;
    let old = container("old", "stopped", None, None).await;
    container("gone", "deleted", None, None).await;
    client
        .execute("UPDATE devx.containers SET created_at = now() - interval '1 hour' WHERE id = $1", &[&web])
        .await
        .unwrap();
    let project = |name: &str, container: Option<Uuid>| {
        let (client, name) = (&client, name.to_string());
        async move {
            crate::support::one::<Uuid>(
                client,
                "INSERT INTO devx.projects (owner_id, name, description, container_id)
                 VALUES ($1, $2, 'about ' || $2, $3) RETURNING id",
                &[&user, &name, &container],
            )
            .await
        }
    };
    let app = project("app", Some(solo)).await;
    let older = project("older", Some(old)).await;
    for (session, n) in [("s1", 3), ("s2", 2)] {
        for _ in 0..n {
            client
                .execute(
                    "INSERT INTO devx.chat_messages (project_id, container_id, session_id, role, content)
                     VALUES ($1, $2, $3, 'user', 'hi')",
                    &[&app, &solo, &session],
                )
                .await
                .unwrap();
        }
    }
    client
        .execute(
            "INSERT INTO devx.chat_messages (project_id, session_id, role, content) VALUES ($1, 's', 'user', 'x')",
            &[&app],
        )
        .await
        .unwrap();

    let columns = |view: &str| {
        let (client, view) = (&client, view.to_string());
        async move {
            column::<String>(
                client,
                "SELECT column_name::text FROM information_schema.columns
                  WHERE table_schema = 'devx' AND table_name = $1 ORDER BY ordinal_position",
                &[&view],
            )
            .await
        }
    };
    assert_eq!(
        columns("active_containers").await,
        [
            "id",
            "container_id",
            "name",
            "status",
            "image_name",
            "assigned_port",
            "url",
            "created_at",
            "updated_at",
            "started_at",
            "stopped_at",
            "user_id",
            "labels",
            "metadata",
            "project_id",
            "project_name",
            "project_description",
            "user_email",
        ]
    );
    let rows = client
        .query(
            "SELECT id, status, project_name, project_description, user_email, user_id FROM devx.active_containers",
            &[],
        )
        .await
        .unwrap();
    type Active = (Uuid, String, Option<String>, Option<String>, String, Uuid);
    let read: Vec<Active> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))).collect();
    let email = "owner@example.com".to_string();
    assert_eq!(
        read,
        [
            (solo, "created".into(), Some("app".into()), Some("about app".into()), email.clone(), user),
            (web, "running".into(), Some("demo".into()), None, email.clone(), user),
        ],
        "created and running ones, newest first; a project living in it, else the one it was registered for"
    );
    // Two projects in one container: still one row, with the latest changed.
    project("second", Some(solo)).await;
    let names: Vec<Option<String>> =
        column(&client, "SELECT project_name FROM devx.active_containers WHERE id = $1", &[&solo]).await;
    assert_eq!(names, [Some("second".to_string())]);

    let user_projects = columns("user_projects").await;
    for expected in ["id", "container_id", "name", "description", "type", "status", "user_id", "metadata", "settings"] {
        assert!(user_projects.iter().any(|c| c == expected), "{expected} missing: {user_projects:?}");
    }
    assert!(user_projects.ends_with(&[
        "container_status".to_string(),
        "assigned_port".to_string(),
        "url".to_string(),
        "message_count".to_string()
    ]));
    let rows = client
        .query(
            "SELECT id, container_id, container_status, assigned_port, url, message_count, user_id
               FROM devx.user_projects WHERE id = ANY($1)",
            &[&vec![app, older, legacy]],
        )
        .await
        .unwrap();
    type Row = (Uuid, Option<Uuid>, Option<String>, Option<i32>, Option<String>, i64, Uuid);
    let mut read: Vec<Row> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6))).collect();
    read.sort();
    let mut expected: Vec<Row> = vec![
        (app, Some(solo), Some("created".into()), Some(4000), Some("http://localhost/solo".into()), 5, user),
        (older, Some(old), Some("stopped".into()), None, Some("http://localhost/old".into()), 0, user),
        (legacy, None, None, None, None, 0, user),
    ];
    expected.sort();
    assert_eq!(read, expected, "per project: its container's status, port, url and messages");
    let newest: Vec<String> = column(&client, "SELECT name FROM devx.user_projects LIMIT 1", &[]).await;
    assert_eq!(newest, ["second"], "newest change first");

    let summary = client
        .query_one("SELECT project_count, active_containers FROM devx.user_summaries WHERE user_id = $1", &[&user])
        .await
        .unwrap();
    assert_eq!((summary.get::<_, i64>(0), summary.get::<_, i64>(1)), (4, 1));
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

/// Every Rust text enum of devx, with the `schema.table.column` it is stored
/// in (`text`, or `text[]` for a set of them).
fn stored_text_enums() -> Vec<(&'static str, &'static str, BTreeSet<&'static str>)> {
    use devx::agents::model::{ErrorType, ExecutionStatus, LogLevel, TaskStatus, ValidationStatus};
    use devx::projects::model::{GenerationStatus, ModificationStatus, ProjectStatus};
    use devx::runtime::containers::model::ContainerStatus;
    use devx::runtime::deployments::model::{DeploymentStatus, DeploymentTrigger, LogStream};
    use devx::runtime::services::model::ServiceStatus;
    use devx::{accounts, admin, catalog, chat};

    macro_rules! stored {
        ($column:literal, $first:ident $(:: $rest:ident)*) => {
            (
                $column,
                concat!(stringify!($first) $(, "::", stringify!($rest))*),
                $first $(:: $rest)*::ALL.iter().map(|v| v.as_str()).collect::<BTreeSet<&'static str>>(),
            )
        };
    }
    vec![
        stored!("devx.users.role", accounts::model::Role),
        stored!("devx.users.plan_type", accounts::model::PlanType),
        stored!("devx.api_keys.scopes", accounts::model::Scope),
        stored!("devx.audit_logs.action", admin::model::AuditAction),
        stored!("devx.activity_logs.action", accounts::activity::ActivityAction),
        stored!("templates.templates.complexity", catalog::model::Complexity),
        stored!("templates.technologies.kind", catalog::model::TechnologyKind),
        stored!("devx.projects.status", ProjectStatus),
        stored!("devx.modifications.status", ModificationStatus),
        stored!("devx.generation_history.status", GenerationStatus),
        stored!("devx.chat_messages.role", chat::model::Role),
        stored!("devx.services.status", ServiceStatus),
        stored!("devx.containers.status", ContainerStatus),
        stored!("devx.deployments.status", DeploymentStatus),
        stored!("devx.deployments.trigger", DeploymentTrigger),
        stored!("devx.deployment_log_lines.stream", LogStream),
        stored!("devx.preview_deployments.status", devx::runtime::previews::model::PreviewStatus),
        stored!("devx.webhook_deliveries.provider", devx::runtime::hooks::model::Provider),
        stored!("devx.webhook_deliveries.status", devx::runtime::hooks::model::DeliveryStatus),
        stored!("devx.tasks.status", TaskStatus),
        stored!("devx.task_executions.status", ExecutionStatus),
        stored!("devx.execution_logs.level", LogLevel),
        stored!("devx.pr_validations.status", ValidationStatus),
        stored!("devx.error_logs.error_type", ErrorType),
    ]
}

/// Values a column's CHECK allows that its enum deliberately lacks.
const ONLY_IN_THE_DATABASE: &[(&str, &[&str], &str)] = &[(
    "devx.projects.status",
    &["deleted"],
    "rows soft-deleted by other tools; ProjectStatus is what the API shows, and it never shows them",
)];

/// Value-set columns with no Rust enum, and why.
const WITHOUT_AN_ENUM: &[(&str, &str)] = &[];

/// CHECKs over several columns that name some values of one of them: not a
/// column's value set, but their values must still be the enum's.
const CONDITIONAL: &[(&str, &str)] = &[(
    "devx.modifications.modifications_applied_at_check",
    "applied_at is set only in these statuses; the column's value set is modifications_status_check",
)];

/// The value lists of a CHECK as PostgreSQL prints it, each with its column:
/// `col = ANY (ARRAY['a'::text, ...])` (what `col IN ('a', ...)` becomes)
/// and `col <@ ARRAY[...]` (every element of an array column).
fn value_lists(definition: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = definition;
    while let Some(at) = rest.find("ARRAY[") {
        let before = rest[..at].trim_end();
        let before = before
            .strip_suffix("= ANY (")
            .or_else(|| before.strip_suffix("<@"))
            .unwrap_or_else(|| panic!("a value list this test does not read (teach it): {definition}"))
            .trim_end();
        let start = before.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
        let column = &before[start..];
        assert!(!column.is_empty(), "no column before a value list in {definition}");
        let (values, after) = array_literals(&rest[at + "ARRAY[".len()..], definition);
        out.push((column.to_string(), values));
        rest = after;
    }
    out
}

/// The quoted literals of an `ARRAY[...]` body up to its `]`, and the rest.
fn array_literals<'a>(body: &'a str, definition: &str) -> (Vec<String>, &'a str) {
    let mut values = Vec::new();
    let mut value: Option<String> = None;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (&mut value, c) {
            (Some(v), '\'') if chars.peek().is_some_and(|&(_, n)| n == '\'') => {
                v.push('\'');
                chars.next();
            }
            (Some(_), '\'') => values.push(value.take().expect("inside a literal")),
            (Some(v), c) => v.push(c),
            (None, '\'') => value = Some(String::new()),
            (None, ']') => return (values, &body[i + 1..]),
            (None, _) => {}
        }
    }
    panic!("unterminated ARRAY in {definition}");
}

#[test]
fn value_lists_read_what_postgres_prints() {
    assert_eq!(
        value_lists("CHECK ((status = ANY (ARRAY['pending'::text, 'in_progress'::text])))"),
        [("status".to_string(), vec!["pending".to_string(), "in_progress".to_string()])]
    );
    assert_eq!(
        value_lists("CHECK (((scopes <@ ARRAY['read'::text, 'it''s'::text]) AND (cardinality(scopes) > 0)))"),
        [("scopes".to_string(), vec!["read".to_string(), "it's".to_string()])]
    );
    assert_eq!(
        value_lists("CHECK (((applied_at IS NULL) OR (status = ANY (ARRAY['applied'::text, 'failed'::text]))))"),
        [("status".to_string(), vec!["applied".to_string(), "failed".to_string()])]
    );
    assert!(value_lists("CHECK ((char_length(name) > 0))").is_empty());
}

#[tokio::test]
async fn every_text_enum_matches_its_check_constraint() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    // Every CHECK of the devx schemas that lists values, with the columns
    // it constrains and their types.
    let rows = client
        .query(
            "SELECT n.nspname || '.' || t.relname AS table_name, c.conname::text AS constraint_name,
                    pg_get_constraintdef(c.oid) AS definition,
                    ARRAY(SELECT a.attname::text FROM pg_attribute a
                           WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) ORDER BY a.attnum) AS columns,
                    ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                           WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) ORDER BY a.attnum) AS types
               FROM pg_constraint c
               JOIN pg_class t ON t.oid = c.conrelid
               JOIN pg_namespace n ON n.oid = t.relnamespace
              WHERE c.contype = 'c' AND n.nspname IN ('devx', 'templates') AND NOT t.relispartition
                AND pg_get_constraintdef(c.oid) LIKE '%ARRAY[%'
              ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let mut problems: Vec<String> = Vec::new();
    // `schema.table.column` -> (constraint, type, allowed values) for the
    // single-column value sets; `schema.table.constraint` -> (column, values)
    // for the others.
    let mut value_sets: BTreeMap<String, (String, String, BTreeSet<String>)> = BTreeMap::new();
    let mut conditional: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for row in &rows {
        let table: String = row.get("table_name");
        let constraint: String = row.get("constraint_name");
        let definition: String = row.get("definition");
        let columns: Vec<String> = row.get("columns");
        let types: Vec<String> = row.get("types");
        let lists = value_lists(&definition);
        match (columns.as_slice(), lists.as_slice()) {
            ([column], [(listed, values)]) if listed == column => {
                let key = format!("{table}.{column}");
                let set = values.iter().cloned().collect();
                if let Some((other, ..)) = value_sets.insert(key.clone(), (constraint.clone(), types[0].clone(), set)) {
                    problems.push(format!("{key} has two value lists, {other} and {constraint}"));
                }
            }
            ([_], _) => {
                problems.push(format!("{table}.{constraint} is not one value list of its column: {definition}"));
            }
            _ => {
                conditional.insert(format!("{table}.{constraint}"), lists);
            }
        }
    }

    let enums = stored_text_enums();
    let enum_values = |column: &str| -> Option<BTreeSet<&str>> {
        let (_, _, values) = enums.iter().find(|(c, ..)| *c == column)?;
        let db_only = ONLY_IN_THE_DATABASE.iter().filter(|(c, ..)| *c == column).flat_map(|(_, v, _)| v.iter());
        Some(values.iter().copied().chain(db_only.copied()).collect())
    };

    // Each enum against its column's CHECK, both ways.
    for (column, name, values) in &enums {
        let Some((constraint, ty, allowed)) = value_sets.get(*column) else {
            problems.push(format!("{name} is stored in {column}, which has no CHECK listing its values"));
            continue;
        };
        if ty != "text" && ty != "text[]" {
            problems.push(format!("{column} ({name}) is {ty}, not text"));
        }
        let db_only: BTreeSet<&str> = ONLY_IN_THE_DATABASE
            .iter()
            .filter(|(c, ..)| c == column)
            .flat_map(|(_, values, _)| values.iter().copied())
            .collect();
        let not_allowed: Vec<&str> = values.iter().copied().filter(|v| !allowed.contains(*v)).collect();
        if !not_allowed.is_empty() {
            problems.push(format!("{name} has {not_allowed:?}, which {constraint} on {column} refuses"));
        }
        let unknown: Vec<&String> =
            allowed.iter().filter(|v| !values.contains(v.as_str()) && !db_only.contains(v.as_str())).collect();
        if !unknown.is_empty() {
            problems.push(format!("{constraint} allows {unknown:?} in {column}, which {name} cannot read"));
        }
        for v in &db_only {
            if !allowed.contains(*v) || values.contains(v) {
                problems.push(format!(
                    "ONLY_IN_THE_DATABASE lists {v:?} for {column}, but {constraint} does not allow it or {name} has it"
                ));
            }
        }
    }

    // Every value-set column of the schema is known to this test.
    for (column, (constraint, ..)) in &value_sets {
        let with_enum = enums.iter().any(|(c, ..)| c == column);
        let without = WITHOUT_AN_ENUM.iter().any(|(c, _)| c == column);
        match (with_enum, without) {
            (false, false) => problems.push(format!(
                "{column} is a value set ({constraint}) with no Rust enum in stored_text_enums(): add its enum \
                 (or list it in WITHOUT_AN_ENUM with the reason)"
            )),
            (true, true) => problems.push(format!("{column} is both in stored_text_enums() and in WITHOUT_AN_ENUM")),
            _ => {}
        }
    }
    for (column, _) in WITHOUT_AN_ENUM {
        if !value_sets.contains_key(*column) {
            problems.push(format!("WITHOUT_AN_ENUM lists {column}, which has no value-set CHECK"));
        }
    }

    // The CHECKs over several columns are known, and name only values the enum has.
    for (constraint, lists) in &conditional {
        if !CONDITIONAL.iter().any(|(c, _)| c == constraint) {
            problems.push(format!("{constraint} lists values over several columns: add it to CONDITIONAL"));
        }
        let table = constraint.rsplit_once('.').map_or("", |(table, _)| table);
        for (column, values) in lists {
            let key = format!("{table}.{column}");
            if let Some(known) = enum_values(&key) {
                let unknown: Vec<&String> = values.iter().filter(|v| !known.contains(v.as_str())).collect();
                if !unknown.is_empty() {
                    problems.push(format!("{constraint} names {unknown:?} for {key}, which its enum cannot read"));
                }
            }
        }
    }
    for (constraint, _) in CONDITIONAL {
        if !conditional.contains_key(*constraint) {
            problems.push(format!("CONDITIONAL lists {constraint}, which the schema does not have"));
        }
    }

    assert!(problems.is_empty(), "text enums and CHECK constraints disagree:\n{}", problems.join("\n"));
}

/// Every unique, check and foreign-key constraint (and unique index) a
/// request can violate maps to a field of its table, so the 409 or 422 it
/// causes names something the client sent; a new constraint with a name the
/// convention cannot read must be added to `http::error`'s list.
#[tokio::test]
async fn every_constraint_maps_to_a_field_of_its_table() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT c.conname::text, t.relname::text,
                    array(SELECT a.attname::text FROM pg_attribute a
                           WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped)
               FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
              WHERE n.nspname IN ('devx', 'templates') AND c.contype IN ('u', 'c', 'f') AND NOT t.relispartition
             UNION ALL
             SELECT i.relname::text, t.relname::text,
                    array(SELECT a.attname::text FROM pg_attribute a
                           WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped)
               FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
               JOIN pg_namespace n ON n.oid = t.relnamespace
              WHERE n.nspname IN ('devx', 'templates') AND x.indisunique AND NOT x.indisprimary AND NOT t.relispartition
                AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.len() > 20, "the catalog query finds the constraints");
    let mut wrong = Vec::new();
    for row in &rows {
        let (name, table, columns): (String, String, Vec<String>) = (row.get(0), row.get(1), row.get(2));
        let (field, _) = devx::http::error::constraint_field(&name);
        // A field is a column, or a dotted path into one (`settings.x`), or
        // the API's name for an expression index (`email` for lower(email)).
        let root = field.split('.').next().unwrap_or_default();
        if !columns.iter().any(|c| c == root) {
            wrong.push(format!("{name} on {table}: maps to {field:?}, not one of its columns"));
        }
    }
    assert!(wrong.is_empty(), "add these to KNOWN_CONSTRAINTS in src/http/error.rs:\n{}", wrong.join("\n"));
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let stale: Vec<&str> = devx::http::error::named_constraints().filter(|n| !names.iter().any(|x| x == n)).collect();
    assert!(stale.is_empty(), "KNOWN_CONSTRAINTS names constraints the schema no longer has: {stale:?}");
}

/// Every table is audited row by row (a trigger running `devx.audit_row`)
/// or append-only (a BEFORE UPDATE trigger running `devx.refuse_update`),
/// so every change leaves a trace; and an append-only table refuses updates.
#[tokio::test]
async fn every_table_is_audited_or_append_only() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT n.nspname || '.' || c.relname,
                    bool_or(p.proname = 'audit_row') AS audited,
                    bool_or(p.proname = 'refuse_update') AS append_only
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
               LEFT JOIN pg_proc p ON p.oid = t.tgfoid
              WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('devx', 'templates') AND NOT c.relispartition
              GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.len() >= 20, "the catalog query finds the tables");
    // Tables that hold no state of the platform, with the reason.
    let exempt = [
        (
            "devx.idempotency_keys",
            "stored answers replayed to retries for a day; the writes they answer are audited in their own tables",
        ),
        (
            "devx.read_positions",
            "each user's last write position for read-your-writes on replicas; says when, not what, and the writes it points past are audited",
        ),
        (
            "devx.periodic_jobs",
            "the periodic jobs' shared schedule (a claim per period, every few seconds for the reaper); what each run \
             changes is audited where it changes it (system:retention, system:reaper)",
        ),
    ];
    let neither: Vec<String> = rows
        .iter()
        .filter(|r| !r.get::<_, Option<bool>>(1).unwrap_or(false) && !r.get::<_, Option<bool>>(2).unwrap_or(false))
        .map(|r| r.get::<_, String>(0))
        .filter(|table| !exempt.iter().any(|(name, _)| name == table))
        .collect();
    assert!(
        neither.is_empty(),
        "tables neither audited nor append-only (add an audit_row trigger, or a refuse_update one): {neither:?}"
    );

    let (_, project) = crate::support::seed_owner(&client).await;
    client
        .execute(
            "INSERT INTO devx.chat_messages (project_id, session_id, role, content) VALUES ($1, 's', 'user', 'hi')",
            &[&project],
        )
        .await
        .unwrap();
    let refused = client.execute("UPDATE devx.chat_messages SET content = 'rewritten'", &[]).await.unwrap_err();
    assert!(refused.to_string().contains("append-only") || format!("{refused:?}").contains("append-only"));
    let refused = client.execute("UPDATE devx.audit_logs SET actor = 'someone else'", &[]).await;
    assert!(refused.is_err(), "the trail itself cannot be rewritten");
    let append_only: Vec<String> =
        rows.iter().filter(|r| r.get::<_, Option<bool>>(2).unwrap_or(false)).map(|r| r.get(0)).collect();
    assert!(append_only.iter().any(|t| t == "devx.activity_logs"), "the activity log is append-only: {append_only:?}");
}

/// What a trigger runs for every row is planned once per session: each
/// function a trigger can reach (its trigger function, the functions that one
/// names, and so on) is PL/pgSQL or C, or a SQL function PostgreSQL inlines
/// into the caller's plan. A SQL function it cannot inline (a body with a
/// FROM or a subquery) is planned again at every call: as
/// `devx.trigger_table_name()` was, about 0.25 ms per audited row.
#[tokio::test]
async fn every_function_a_trigger_reaches_is_planned_once_per_session() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    let functions = client
        .query(
            "SELECT p.oid::regprocedure::text, n.nspname, p.proname, l.lanname, p.prosrc,
                    p.oid IN (SELECT tgfoid FROM pg_trigger WHERE NOT tgisinternal),
                    ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) WITH ORDINALITY a (t, i) ORDER BY i)
               FROM pg_proc p
               JOIN pg_namespace n ON n.oid = p.pronamespace
               JOIN pg_language l ON l.oid = p.prolang
              WHERE n.nspname IN ('devx', 'templates')",
            &[],
        )
        .await
        .unwrap();
    let name = |i: usize| functions[i].get::<_, String>(2);
    let source = |i: usize| functions[i].get::<_, String>(4);
    // `name(` in a body, not as the tail of a longer name.
    let names = |body: &str, callee: &str| {
        body.match_indices(callee).any(|(at, _)| {
            let before = body[..at].chars().next_back();
            let after = body[at + callee.len()..].trim_start();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after.starts_with('(')
        })
    };
    let mut reached: BTreeSet<usize> = (0..functions.len()).filter(|&i| functions[i].get::<_, bool>(5)).collect();
    loop {
        let more: Vec<usize> = (0..functions.len())
            .filter(|g| !reached.contains(g) && reached.iter().any(|&f| names(&source(f), &name(*g))))
            .collect();
        if more.is_empty() {
            break;
        }
        reached.extend(more);
    }
    let reached_names: BTreeSet<String> = reached.iter().map(|&i| name(i)).collect();
    for expected in ["audit_row", "trigger_table_name", "current_actor", "set_updated_at"] {
        assert!(reached_names.contains(expected), "{expected} is reached from a trigger: {reached_names:?}");
    }

    let mut checked = Vec::new();
    let mut planned_per_call = Vec::new();
    for &i in reached.iter().filter(|&&i| functions[i].get::<_, String>(3) == "sql") {
        let signature: String = functions[i].get(0);
        let schema: String = functions[i].get(1);
        let types: Vec<String> = functions[i].get(6);
        // Arguments from a subquery PostgreSQL cannot flatten, so that
        // constant folding cannot hide whether the call was inlined.
        let arguments: Vec<String> = (1..=types.len()).map(|k| format!("x.a{k}")).collect();
        let columns: Vec<String> = types.iter().enumerate().map(|(k, t)| format!("NULL::{t} AS a{}", k + 1)).collect();
        let from = if columns.is_empty() {
            String::new()
        } else {
            format!(" FROM (SELECT {} OFFSET 0) x", columns.join(", "))
        };
        let explain = format!("EXPLAIN VERBOSE SELECT {schema}.{}({}){from}", name(i), arguments.join(", "));
        let plan: Vec<String> = client.query(&explain, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
        if plan.iter().any(|line| names(line, &name(i))) {
            planned_per_call.push(format!("{signature}:\n  {}", plan.join("\n  ")));
        }
        checked.push(name(i));
    }
    assert!(checked.iter().any(|n| n == "current_actor"), "the SQL functions were checked: {checked:?}");
    assert!(
        planned_per_call.is_empty(),
        "SQL functions a trigger reaches that PostgreSQL does not inline, so it plans them at every row; \
         write them in PL/pgSQL, whose plans last the session:\n{}",
        planned_per_call.join("\n")
    );
}
