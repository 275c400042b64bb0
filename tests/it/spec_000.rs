//! The database infrastructure design, walked through devx as its team
//! uses it: migrations applied at start and inspected from the CLI, health
//! and database status over HTTP, a database-powered catalog, services made
//! from a template, a generation recorded from start to finish, the activity
//! log, and the design's own unqualified SQL against the tables devx keeps.

use std::process::Output;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::TestApp;
use crate::harness::devx_command;
use crate::support::{all_pages, column, count, fields, id, one, project};

fn devx(app: &TestApp, args: &[&str]) -> Output {
    devx_command().env("DATABASE_URL", app.db.url()).env("DEVX_LOG", "warn").args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `npm run migrate:up|migrate:status|migrate:create` and the status
/// endpoints: the server migrated at start, the CLI agrees, and a new
/// migration is a pair of files with the next id.
#[tokio::test]
async fn migrations_run_at_start_and_the_status_endpoints_report_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;

    let (status, health) = app.get("/health", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"]["connected"], true, "{health}");

    let (status, db) = app.get("/api/database/status", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{db}");
    assert_eq!(db["migrations"]["pending"], 0, "{db}");
    let applied = db["migrations"]["applied"].as_u64().unwrap();
    assert!(applied >= 10, "{db}");

    // The CLI reads the same ledger: nothing pending, `up` has nothing to do.
    let out = devx(&app, &["migrate", "status", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<&str> =
        status["migrations"].as_array().unwrap().iter().map(|m| m["state"].as_str().unwrap()).collect();
    assert_eq!(states.len() as u64, applied, "{status}");
    assert!(states.iter().all(|s| *s == "applied"), "{states:?}");
    let out = devx(&app, &["migrate", "up"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = devx(&app, &["migrate", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // `migrate create add_new_feature` writes an up and a down file.
    let dir = tempfile::tempdir().unwrap();
    let out = devx_command()
        .args(["migrate", "--dir", dir.path().to_str().unwrap(), "create", "add_new_feature"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut files: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].ends_with("_add_new_feature.down.sql") && files[1].ends_with("_add_new_feature.up.sql"),
        "{files:?}"
    );
}

/// The design's endpoints and tables: templates and categories from the
/// database, a service made from a template in a project, a generation
/// started and finished, each sign-in and generation in the activity log.
#[tokio::test]
async fn templates_services_generations_and_activity_as_the_design_keeps_them() {
    // A key: a service's environment variables are sealed.
    let app = crate::runtime::spawn_with_key().await;
    let admin = app.admin("root@example.com").await;
    let dev = app.register("dev@example.com").await;

    // The catalog is database-powered: a template an admin adds is listed.
    let template = json!({
        "slug": "orders-starter", "name": "Orders starter", "category": "api",
        "files": {"index.js": "console.log('hi')"}, "tech_stack": ["node", "express"],
        "complexity": "simple"
    });
    let (status, created) = app.post("/api/templates", Some(&admin.token), template).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let listed = all_pages(&app, &dev.token, "/api/templates?category=api").await;
    assert!(listed.iter().any(|t| t["slug"] == "orders-starter"), "{listed:?}");
    let (status, categories) = app.get("/api/templates/categories", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(categories.as_array().unwrap().iter().any(|c| c["slug"] == "api"), "{categories}");

    // A service in a project, from that template (named by its slug, as the
    // catalog lists it), with the design's columns.
    let project_id = project(&app, &dev, "shop").await;
    let (status, missing) = app
        .post(
            &format!("/api/projects/{project_id}/services"),
            Some(&dev.token),
            json!({"name": "Orders API", "slug": "orders-api", "template": "no-such-template"}),
        )
        .await;
    assert_eq!((status, fields(&missing)), (StatusCode::NOT_FOUND, vec!["template".to_string()]), "{missing}");
    let (status, mismatch) = app
        .post(
            &format!("/api/projects/{project_id}/services"),
            Some(&dev.token),
            json!({"name": "Orders API", "slug": "orders-api", "template": "orders-starter",
                   "template_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!((status, fields(&mismatch)), (StatusCode::NOT_FOUND, vec!["template_id".to_string()]), "{mismatch}");
    let service = json!({
        "name": "Orders API", "slug": "orders-api", "description": "Orders", "template": "orders-starter",
        "service_type": "api", "port": 3000, "health_check_url": "http://localhost:3000/health",
        "deployment_config": {"replicas": 2}, "environment_vars": {"NODE_ENV": "production"},
        "resource_limits": {"memory": "512Mi"}
    });
    let (status, service) = app.post(&format!("/api/projects/{project_id}/services"), Some(&dev.token), service).await;
    assert_eq!(status, StatusCode::CREATED, "{service}");
    assert_eq!(service["status"], "inactive", "the design's default status");
    let template_id: uuid::Uuid = service["template_id"].as_str().unwrap().parse().unwrap();
    let service_id = id(&service);
    // The slug is unique, as the design's UNIQUE says.
    let (status, again) = app
        .post(
            &format!("/api/projects/{project_id}/services"),
            Some(&dev.token),
            json!({"name": "Copy", "slug": "orders-api"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    // A generation: pending by default, then finished once with its files and time.
    let start = json!({
        "generation_type": "service", "template": "orders-starter", "project_id": project_id,
        "service_id": service_id, "input_params": {"name": "orders"}
    });
    let (status, generation) = app.post("/api/generations", Some(&dev.token), start).await;
    assert_eq!(status, StatusCode::CREATED, "{generation}");
    assert_eq!(generation["status"], "pending", "{generation}");
    let finish = json!({"status": "completed", "output_files": [{"path": "index.js"}], "execution_time_ms": 1200});
    let path = format!("/api/generations/{}", id(&generation));
    let (status, done) = app.patch(&path, Some(&dev.token), finish.clone()).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done["completed_at"].is_string(), "{done}");
    let (status, twice) = app.patch(&path, Some(&dev.token), finish).await;
    assert_eq!(status, StatusCode::CONFLICT, "finished once: {twice}");

    // activity_logs: the sign-in at registration's login and the generation.
    let (status, _) = app
        .post("/api/auth/login", None, json!({"email": "dev@example.com", "password": "correct horse battery"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let events = all_pages(&app, &admin.token, &format!("/api/admin/activity-logs?user_id={}", dev.user_id)).await;
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"sign_in") && actions.contains(&"generation_started"), "{actions:?}");

    // The design's SQL, unqualified, finds devx's tables (the database's
    // search_path is set by a migration) and reads what the API wrote.
    let client = app.db.client().await;
    let slug: String = one(&client, "SELECT slug FROM services WHERE template_id = $1", &[&template_id]).await;
    assert_eq!(slug, "orders-api");
    let types: Vec<String> = column(
        &client,
        "SELECT generation_type FROM generation_history WHERE status = 'completed' AND completed_at IS NOT NULL",
        &[],
    )
    .await;
    assert_eq!(types, ["service"]);
    assert!(count(&client, "SELECT count(*) FROM templates.categories").await > 0);
    assert!(count(&client, "SELECT count(*) FROM templates.technologies").await > 0);
    assert!(count(&client, "SELECT count(*) FROM activity_logs WHERE action = 'generation_started'").await == 1);
}
