//! The code runner's DatabaseService, walked through devx as its team uses
//! it: accounts with plans (created from an existing bcrypt hash, read by id
//! and by email, updated, listed, closed), projects per user, deployments
//! created, moved along their statuses, read in full and counted, the system
//! statistics and pool health, a duplicate email's error, and its
//! production connection URL.

use std::process::Output;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};
use crate::harness::devx_command;
use crate::runtime::spawn_with_key;
use crate::support::{all_pages, id, ids};

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `createUser`, `getUserById`, `getUserByEmail`, `updateUser`, `getUsers`,
/// `deleteUser`, and the duplicate email the design's error handling
/// matches on `already exists`.
#[tokio::test]
async fn users_with_plans_are_created_read_updated_listed_and_closed() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;

    // createUser({ email, password_hash: await bcrypt.hash('password', 10), plan_type }):
    // an account that arrives with its hash is imported, keeping the hash.
    let hash =
        bcrypt::hash_with_result("password is long enough", 4).unwrap().format_for_version(bcrypt::Version::TwoB);
    let line = json!({"email": "john@example.com", "password_hash": hash, "plan": "personal"}).to_string();
    let resp = app
        .request(Method::POST, "/api/admin/users/import", Some(&admin.token))
        .header("content-type", "application/x-ndjson")
        .body(format!("{line}\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["created"], 1);
    // And signs in with the password behind that hash.
    let (status, session) = app
        .post("/api/auth/login", None, json!({"email": "john@example.com", "password": "password is long enough"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let john_id = session["user"]["id"].as_str().unwrap().to_string();

    // getUserByEmail / getUserById.
    let (status, page) = app.get("/api/admin/users?q=john@example.com", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page), vec![john_id.clone()]);
    let user_path = format!("/api/admin/users/{john_id}");
    let (status, john) = app.get(&user_path, Some(&admin.token)).await;
    assert_eq!((status, john["plan_type"].as_str()), (StatusCode::OK, Some("personal")), "{john}");

    // updateUser(userId, { plan_type: 'team' }).
    let (status, john) = app.patch(&user_path, Some(&admin.token), json!({"plan_type": "team"})).await;
    assert_eq!((status, john["plan_type"].as_str()), (StatusCode::OK, Some("team")), "{john}");

    // createUser with an email that exists: the message says so.
    let (status, body) = app
        .post("/api/auth/register", None, json!({"email": "john@example.com", "password": "another long password"}))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("already"), "{body}");

    // getUsers(50, 0): pages of at most 50.
    let (status, page) = app.get("/api/admin/users?limit=50", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");

    // deleteUser: the account is closed, its sessions end, it cannot sign
    // in; what it owned goes with it when retention purges it.
    let (status, _) = app.delete(&user_path, Some(&admin.token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let token = session["token"].as_str().unwrap();
    assert_eq!(app.get("/api/auth/me", Some(token)).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post("/api/auth/login", None, json!({"email": "john@example.com", "password": "password is long enough"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// `createProject`, `getProjectsByUserId`, `updateProject`,
/// `createDeployment`, `updateDeploymentStatus`, `getDeploymentWithDetails`,
/// `getDeploymentsByStatus`, `getRunningDeploymentCountByUser`,
/// `getSystemStats`, `healthCheck` and `getPoolInfo`.
#[tokio::test]
async fn projects_and_deployments_move_as_the_service_moves_them() {
    let app = spawn_with_key().await;
    let admin = app.admin("root@example.com").await;
    let user = app.register("user@example.com").await;

    let (status, project) = app
        .post(
            "/api/projects",
            Some(&user.token),
            json!({"name": "My Web App", "description": "A cool web application"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let project_id = id(&project);
    let mine = all_pages(&app, &admin.token, &format!("/api/projects?owner_id={}", user.user_id)).await;
    assert_eq!(mine.len(), 1);
    let (status, project) = app
        .patch(&format!("/api/projects/{project_id}"), Some(&user.token), json!({"description": "Updated description"}))
        .await;
    assert_eq!((status, project["description"].as_str()), (StatusCode::OK, Some("Updated description")));
    assert_eq!(
        project["owner_id"],
        user.user_id.as_str(),
        "getProjectWithUser: the owner, read at /api/admin/users/{{id}}"
    );

    let deployment = json!({
        "app_sandbox_id": "sandbox_abc123", "public_url": "https://myapp.coderunner.dev",
        "runtime_type": "nodejs", "status": "pending",
        "db_sandbox_id": "db_abc123", "db_connection_info": {"host": "db.internal", "password": "s3cret"}
    });
    let (status, created) =
        app.post(&format!("/api/projects/{project_id}/deployments"), Some(&user.token), deployment).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let deployment_path = format!("/api/deployments/{}", id(&created));
    assert_ne!(created["db_connection_info"]["password"], "s3cret", "lists and creates mask secrets: {created}");

    // updateDeploymentStatus(id, RUNNING): forward, steps may be skipped;
    // never back.
    let (status, running) = app.patch(&deployment_path, Some(&user.token), json!({"status": "running"})).await;
    assert_eq!((status, running["status"].as_str()), (StatusCode::OK, Some("running")), "{running}");
    let (status, body) = app.patch(&deployment_path, Some(&user.token), json!({"status": "pending"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);

    // getDeploymentWithDetails: the one GET shows the connection info in full.
    let (status, details) = app.get(&deployment_path, Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(details["db_connection_info"]["password"], "s3cret", "{details}");

    // getDeploymentsByStatus(RUNNING) and the running count.
    let running = all_pages(&app, &user.token, "/api/deployments?status=running").await;
    assert_eq!(running.len(), 1);
    let (status, summary) = app.get("/api/deployments/summary", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((summary["total"].as_i64(), summary["by_status"]["running"].as_i64()), (Some(1), Some(1)), "{summary}");

    // getSystemStats.
    let (status, stats) = app.get("/api/admin/stats", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["users"]["total"], 2, "{stats}");
    assert_eq!(stats["projects_by_status"].as_object().unwrap().values().filter_map(Value::as_i64).sum::<i64>(), 1);
    assert_eq!(stats["deployments_by_status"]["running"], 1, "{stats}");

    // healthCheck and getPoolInfo.
    let (status, health) = app.get("/api/database/status", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(health["server"]["version"].as_str().unwrap().starts_with(char::is_numeric), "{health}");
    assert_eq!(health["migrations"]["pending"], 0, "{health}");
    assert!(health["pool"]["max_size"].as_u64().unwrap() > 0, "{health}");
    let out = devx_command().env("DATABASE_URL", app.db.url()).args(["db", "health"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// The production recommendation's URL and pool variables are read as
/// written (`ssl=true` is `sslmode=require`'s alias).
#[test]
fn the_production_connection_settings_are_accepted_as_written() {
    let out = devx_command()
        .env("DATABASE_URL", "postgresql://user:pass@prod-host:5432/coderunner?ssl=true&sslmode=require")
        .env("DB_POOL_MIN", "5")
        .env("DB_POOL_MAX", "25")
        .env("DB_CREATE_TIMEOUT", "3000")
        .env("DB_REAP_INTERVAL", "1000")
        .args(["config", "check"])
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("prod-host") && shown.contains("coderunner"), "{shown}");
    assert!(!shown.contains("pass@"), "the password is not printed: {shown}");
    assert!(shown.contains("25"), "{shown}");
}
