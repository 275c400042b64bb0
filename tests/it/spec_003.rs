//! The projects design (project contexts, modifications, templates), walked
//! through devx: its usage examples as HTTP calls, and its SQL run in a
//! session of its own on the unqualified names the database's search path
//! resolves. Where devx keeps a column elsewhere (a project's owner and
//! status live on `projects`, a template's category is a slug in
//! `categories`), the test runs the mapped query the README gives.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::app::TestApp;
use crate::support::{all_pages, column, count, id, one};

#[tokio::test]
async fn contexts_modifications_and_templates_as_the_design_queries_them() {
    let app = TestApp::spawn().await;
    let owner = app.register("owner@example.com").await;
    let token = Some(owner.token.as_str());

    // A project with its context: codebase, dependencies, environment, scores.
    let (status, project) = app.post("/api/projects", token, json!({"name": "agentic api", "type": "api"})).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let project_id = id(&project);
    let context = json!({
        "codebase": {"requirements.txt": "fastapi", "main.py": "app = FastAPI()"},
        "dependencies": ["fastapi", "uvicorn"], "environment_vars": {"LOG_LEVEL": "info"},
        "test_coverage": 81.5, "security_score": 90, "performance_score": 77.25
    });
    let (status, body) =
        app.call(reqwest::Method::PUT, &format!("/api/projects/{project_id}/context"), token, Some(context)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, other) = app.post("/api/projects", token, json!({"name": "archived one", "type": "web_app"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app.patch(&format!("/api/projects/{}", id(&other)), token, json!({"status": "archived"})).await;
    assert_eq!(status, StatusCode::OK);

    // "Get all active projects for a user" and "Query JSONB data", through HTTP.
    let active = all_pages(&app, &owner.token, "/api/projects?status=active").await;
    assert_eq!(active.len(), 1);
    let fastapi =
        all_pages(&app, &owner.token, "/api/projects?codebase_contains=%7B%22requirements.txt%22%3A%22fastapi%22%7D")
            .await;
    assert_eq!(fastapi.iter().map(id).collect::<Vec<_>>(), vec![project_id.clone()]);

    // "Track Modifications": requested, approved, applied with its results.
    let (status, modification) = app
        .post(
            &format!("/api/projects/{project_id}/modifications"),
            token,
            json!({"request": "Add authentication", "affected_files": ["main.py", "auth.py"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{modification}");
    assert_eq!(modification["requested_by"], owner.user_id.as_str());
    let at = |action: &str| format!("/api/modifications/{}/{action}", id(&modification));
    assert_eq!(app.post(&at("approve"), token, json!({})).await.0, StatusCode::OK);
    let (status, applied) = app
        .post(
            &at("apply"),
            token,
            json!({"modified_files": {"auth.py": "def login(): ..."}, "test_results": {"passed": 12}}),
        )
        .await;
    assert_eq!((status, applied["status"].as_str()), (StatusCode::OK, Some("applied")), "{applied}");
    assert!(applied["applied_at"].is_string());

    // The design's SQL in a session of its own (as asyncpg's would be).
    let sql = app.db.client().await;
    let owner_id: Uuid = owner.user_id.parse().unwrap();
    // As written: JSONB containment and key existence on project_contexts.
    let ids: Vec<Uuid> = column(
        &sql,
        "SELECT project_id FROM project_contexts WHERE codebase @> $1",
        &[&json!({"requirements.txt": "fastapi"})],
    )
    .await;
    assert_eq!(ids, [project_id.parse::<Uuid>().unwrap()]);
    assert_eq!(count(&sql, "SELECT count(*) FROM project_contexts WHERE codebase ? 'requirements.txt'").await, 1);
    // Mapped: owner and status are the project's.
    let active: Vec<String> = column(
        &sql,
        "SELECT p.name FROM projects p JOIN project_contexts c ON c.project_id = p.id WHERE p.owner_id = $1 AND p.status = $2",
        &[&owner_id, &"active"],
    )
    .await;
    assert_eq!(active, ["agentic api"]);

    // As written: a modification inserted and marked applied in SQL.
    let mod_id: Uuid = one(
        &sql,
        "INSERT INTO modifications (project_id, request, requested_by, affected_files) VALUES ($1, $2, $3, $4) RETURNING id",
        &[&project_id.parse::<Uuid>().unwrap(), &"Add rate limiting", &owner_id, &vec!["main.py".to_string()]],
    )
    .await;
    let updated = sql
        .execute(
            "UPDATE modifications SET status = $1, applied_at = CURRENT_TIMESTAMP WHERE id = $2",
            &[&"applied", &mod_id],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
    // The API reads what SQL wrote, and the audit trail has both writes.
    let (status, got) = app.get(&format!("/api/modifications/{mod_id}"), token).await;
    assert_eq!((status, got["status"].as_str()), (StatusCode::OK, Some("applied")), "{got}");
    let audited: i64 = one(
        &sql,
        "SELECT count(*) FROM audit_logs WHERE entity_type = 'devx.modifications' AND entity_id = $1",
        &[&mod_id.to_string()],
    )
    .await;
    assert_eq!(audited, 2, "insert and update audited");

    // "Work with Templates": by category (mapped: a category is a slug in
    // categories) and by technology (as written; devx's tech stacks are
    // lowercase slugs).
    let api_templates: Vec<String> = column(
        &sql,
        "SELECT t.slug FROM templates t JOIN categories c ON c.id = t.category_id WHERE c.slug = $1",
        &[&"api"],
    )
    .await;
    assert!(!api_templates.is_empty());
    let (status, page) = app.get("/api/templates?category=api&limit=200", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut listed: Vec<String> =
        page["items"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap().to_string()).collect();
    let mut api_sorted = api_templates.clone();
    listed.sort();
    api_sorted.sort();
    assert_eq!(listed, api_sorted, "the route lists what the SQL finds");
    let fastapi_templates: Vec<String> =
        column(&sql, "SELECT slug FROM templates WHERE 'fastapi' = ANY(tech_stack)", &[]).await;
    assert!(fastapi_templates.contains(&"fastapi-service".to_string()), "{fastapi_templates:?}");

    // Triggers and cascades: updated_at moves on an update; deleting the
    // project takes its context and modifications.
    let (before, after): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = {
        let before = one(
            &sql,
            "SELECT updated_at FROM project_contexts WHERE project_id = $1",
            &[&project_id.parse::<Uuid>().unwrap()],
        )
        .await;
        sql.execute(
            "UPDATE project_contexts SET test_coverage = 90 WHERE project_id = $1",
            &[&project_id.parse::<Uuid>().unwrap()],
        )
        .await
        .unwrap();
        let after = one(
            &sql,
            "SELECT updated_at FROM project_contexts WHERE project_id = $1",
            &[&project_id.parse::<Uuid>().unwrap()],
        )
        .await;
        (before, after)
    };
    assert!(after > before);
    let (status, _) = app.delete(&format!("/api/projects/{project_id}"), token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(count(&sql, "SELECT count(*) FROM project_contexts").await, 1, "only the other project's");
    assert_eq!(count(&sql, "SELECT count(*) FROM modifications").await, 0);
}
