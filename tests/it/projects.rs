//! Projects over real HTTP: CRUD and validation, privacy (another user's ids
//! are 404 everywhere), projects from templates, code context merges, the
//! modification state machine (and its races), generation history, cascading
//! deletes, GIN-backed filters, keyset paging and the audit actor.

use std::collections::{BTreeMap, BTreeSet};

use devx::projects::queries::{ProjectFilter, list_projects_statement};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::{Session, TestApp, assert_problem};
use crate::support::{count, fields, id, ids, one, walk};

async fn create(app: &TestApp, s: &Session, body: Value) -> Value {
    let (status, project) = app.post("/api/projects", Some(&s.token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    project
}

#[tokio::test]
async fn projects_are_created_read_changed_listed_and_deleted() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let t = Some(ada.token.as_str());

    let (status, body) = app.post("/api/projects", None, json!({"name": "x"})).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);

    let p = create(
        &app,
        &ada,
        json!({"name": "  Shop  ", "description": "a shop", "type": "nextjs", "settings": {"theme": "dark"}, "metadata": {"k": 1}}),
    )
    .await;
    assert_eq!(p["name"], "Shop", "trimmed");
    assert_eq!(p["owner_id"], ada.user_id.as_str());
    assert_eq!(p["status"], "active");
    assert_eq!(p["type"], "nextjs");
    assert_eq!(p["settings"], json!({"theme": "dark"}));
    assert_eq!(p["template"], Value::Null);
    assert_eq!(p["counts"]["open_modifications"], 0);
    assert_eq!(p["counts"]["containers"], json!({"created": 0, "running": 0, "stopped": 0, "deleted": 0}));
    let pid = id(&p);

    // Every problem at once, named.
    let (status, body) = app
        .post(
            "/api/projects",
            t,
            json!({"name": " ", "type": "", "settings": [1], "metadata": "x", "variables": {"PORT": 8080}}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["name", "type", "settings", "metadata", "variables"]);
    // No values, no template: nothing to fill, nothing lost.
    let (status, plain) = app.post("/api/projects", t, json!({"name": "Plain", "variables": {}})).await;
    assert_eq!(status, StatusCode::CREATED, "{plain}");
    assert_eq!(app.delete(&format!("/api/projects/{}", id(&plain)), t).await.0, StatusCode::NO_CONTENT);
    let (status, body) = app.post("/api/projects", t, json!({"name": "x", "owner_id": ada.user_id})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["owner_id"]);

    let (status, got) = app.get(&format!("/api/projects/{pid}"), t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["name"], "Shop");
    assert_eq!(got["counts"]["services"], 0);

    let (status, changed) = app
        .patch(&format!("/api/projects/{pid}"), t, json!({"name": "Shop 2", "description": null, "status": "archived"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], "Shop 2");
    assert_eq!(changed["description"], Value::Null);
    assert_eq!(changed["status"], "archived");
    assert_eq!(changed["type"], "nextjs", "untouched fields stay");
    let (status, body) = app.patch(&format!("/api/projects/{pid}"), t, json!({"status": "deleted"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["status"]);
    let (status, body) = app.patch(&format!("/api/projects/{pid}"), t, json!({"name": "", "settings": 3})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["name", "settings"]);

    // Filters.
    let other = create(&app, &ada, json!({"name": "Blog engine", "type": "api"})).await;
    let (_, page) = app.get("/api/projects", t).await;
    assert_eq!(ids(&page), [id(&other), pid.clone()], "newest first");
    let (_, page) = app.get("/api/projects?status=archived", t).await;
    assert_eq!(ids(&page), [pid.as_str()]);
    let (_, page) = app.get("/api/projects?type=api", t).await;
    assert_eq!(ids(&page), [id(&other)]);
    let (_, page) = app.get("/api/projects?q=BLOG", t).await;
    assert_eq!(ids(&page), [id(&other)]);
    let (_, page) = app.get("/api/projects?q=%25", t).await;
    assert!(ids(&page).is_empty(), "LIKE wildcards are literal");
    let (status, body) = app.get("/api/projects?status=deleted", t).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app.get("/api/projects?colour=red", t).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app.get("/api/projects?codebase_contains=nope", t).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["codebase_contains"]);
    let (status, body) = app.get("/api/projects?codebase_contains=%5B1%5D", t).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);

    // A project marked deleted by another tool is invisible.
    app.db
        .client()
        .await
        .execute("UPDATE devx.projects SET status = 'deleted' WHERE id = $1::text::uuid", &[&id(&other)])
        .await
        .unwrap();
    let (_, page) = app.get("/api/projects", t).await;
    assert_eq!(ids(&page), [pid.as_str()]);
    let (status, body) = app.get(&format!("/api/projects/{}", id(&other)), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);

    // Bad ids, missing ids.
    let (status, body) = app.get("/api/projects/not-a-uuid", t).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app.get(&format!("/api/projects/{}", uuid::Uuid::new_v4()), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);

    let (status, _) = app.delete(&format!("/api/projects/{pid}"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("/api/projects/{pid}"), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.delete(&format!("/api/projects/{pid}"), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn another_users_ids_are_404_on_every_route() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let admin = app.admin("root@example.com").await;
    let a = Some(ada.token.as_str());
    let b = Some(bob.token.as_str());

    let p = create(&app, &ada, json!({"name": "Private"})).await;
    let pid = id(&p);
    let (_, m) = app.post(&format!("/api/projects/{pid}/modifications"), a, json!({"request": "add auth"})).await;
    let mid = id(&m);
    let (_, g) = app.post("/api/generations", a, json!({"generation_type": "service", "project_id": pid})).await;
    let gid = id(&g);

    let project = format!("/api/projects/{pid}");
    let context = format!("{project}/context");
    let mods = format!("{project}/modifications");
    let modification = format!("/api/modifications/{mid}");
    let generation = format!("/api/generations/{gid}");
    let checks: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (reqwest::Method::GET, project.clone(), None),
        (reqwest::Method::PATCH, project.clone(), Some(json!({"name": "mine now"}))),
        (reqwest::Method::DELETE, project.clone(), None),
        (reqwest::Method::GET, context.clone(), None),
        (reqwest::Method::PUT, context.clone(), Some(json!({"codebase": {}}))),
        (reqwest::Method::PATCH, context.clone(), Some(json!({"codebase": {"a": "b"}}))),
        (reqwest::Method::GET, mods.clone(), None),
        (reqwest::Method::POST, mods.clone(), Some(json!({"request": "sneak in"}))),
        (reqwest::Method::GET, modification.clone(), None),
        (reqwest::Method::POST, format!("{modification}/approve"), Some(json!({}))),
        (reqwest::Method::POST, format!("{modification}/reject"), Some(json!({}))),
        (reqwest::Method::POST, format!("{modification}/apply"), Some(json!({}))),
        (reqwest::Method::POST, format!("{modification}/fail"), Some(json!({}))),
        (reqwest::Method::GET, generation.clone(), None),
        (reqwest::Method::PATCH, generation.clone(), Some(json!({"status": "completed"}))),
    ];
    for (method, path, body) in &checks {
        let (status, resp) = app.call(method.clone(), path, b, body.clone()).await;
        assert_problem(status, &resp, StatusCode::NOT_FOUND);
        assert!(!resp.to_string().contains(&ada.user_id), "{method} {path} leaks nothing: {resp}");
    }
    // In lists and filters they are simply absent.
    let (_, page) = app.get("/api/projects", b).await;
    assert!(ids(&page).is_empty());
    let (_, page) = app.get(&format!("/api/generations?project_id={pid}"), b).await;
    assert!(ids(&page).is_empty());
    // Referring to it from a new generation is a missing parent.
    let (status, body) =
        app.post("/api/generations", b, json!({"generation_type": "service", "project_id": pid})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["project_id"]);

    // Nothing changed, and the owner and an admin still see everything.
    for token in [a, Some(admin.token.as_str())] {
        let (status, got) = app.get(&project, token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got["name"], "Private");
        assert_eq!(got["counts"]["open_modifications"], 1);
        let (status, m) = app.get(&modification, token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(m["status"], "pending");
        let (status, g) = app.get(&generation, token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(g["status"], "pending");
    }
    let (_, page) = app.get("/api/projects", Some(&admin.token)).await;
    assert_eq!(ids(&page), [pid.as_str()], "an admin lists everyone's projects");
}

#[tokio::test]
async fn the_summary_counts_the_callers_projects() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    create(&app, &ada, json!({"name": "one"})).await;
    create(&app, &ada, json!({"name": "two"})).await;
    create(&app, &bob, json!({"name": "bob's"})).await;
    let (status, s) = app.get("/api/me/summary", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["user_id"], ada.user_id.as_str());
    assert_eq!(s["email"], ada.email.as_str());
    assert_eq!(s["project_count"], 2);
    assert_eq!(s["active_containers"], 0);
    assert!(s["last_activity"].is_string());
    let (status, body) = app.get("/api/me/summary", None).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
}

async fn template_usage(app: &TestApp) -> i32 {
    one(&app.db.client().await, "SELECT usage_count FROM templates.templates WHERE slug = 'express-api'", &[]).await
}

async fn project_count(app: &TestApp) -> i64 {
    count(&app.db.client().await, "SELECT count(*) FROM devx.projects").await
}

/// Rows in any of `refs` (table, column, on delete) that refer to `pid`.
async fn count_refs(client: &tokio_postgres::Client, pid: &str, refs: &[(String, String, String)]) -> i64 {
    let mut total = 0;
    for (table, column, _) in refs {
        let n: i64 =
            one(client, &format!("SELECT count(*) FROM {table} WHERE {column} = $1::text::uuid"), &[&pid]).await;
        total += n;
    }
    total
}

#[tokio::test]
async fn a_project_from_a_template_gets_its_files_and_a_generation_record() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let t = Some(ada.token.as_str());
    let builtin = devx::catalog::builtin::catalog();
    let template = builtin.templates.iter().find(|t| t.summary.slug == "express-api").expect("express-api ships");

    // Refused requests change nothing.
    let cases = [
        (json!({"name": "x", "template": "express-api"}), vec!["variables.PROJECT_NAME"]),
        (
            json!({"name": "x", "template": "express-api", "variables": {"PROJECT_NAME": "My App"}}),
            vec!["variables.PROJECT_NAME"],
        ),
        (
            json!({"name": "x", "template": "express-api", "variables": {"PROJECT_NAME": "ok", "COLOUR": "red", "PORT": [1]}}),
            vec!["variables.COLOUR", "variables.PORT"],
        ),
        // Bad fields are reported before a missing template is looked for.
        (json!({"name": "", "template": "no-such-template"}), vec!["name"]),
    ];
    let (status, resp) = app.post("/api/projects", t, json!({"name": "x", "template": "no-such-template"})).await;
    assert_problem(status, &resp, StatusCode::NOT_FOUND);
    assert_eq!(fields(&resp), ["template"]);
    for (body, want) in cases {
        let (status, resp) = app.post("/api/projects", t, body).await;
        assert_problem(status, &resp, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&resp), want, "{resp}");
    }
    assert_eq!(project_count(&app).await, 0);
    assert_eq!(template_usage(&app).await, 0);

    let p = create(
        &app,
        &ada,
        json!({"name": "My API", "type": "api", "template": "express-api",
               "variables": {"PROJECT_NAME": "my-api", "PORT": 8080, "DESCRIPTION": "{{PROJECT_NAME}} stays literal"}}),
    )
    .await;
    let pid = id(&p);
    assert_eq!(p["template"], "express-api");
    assert_eq!(template_usage(&app).await, 1, "usage counted");

    let (status, ctx) = app.get(&format!("/api/projects/{pid}/context"), t).await;
    assert_eq!(status, StatusCode::OK);
    let codebase = ctx["codebase"].as_object().unwrap();
    let paths: BTreeSet<&str> = codebase.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = template.files.keys().map(String::as_str).collect();
    assert_eq!(paths, expected, "every template file is copied");
    let package = codebase["package.json"].as_str().unwrap();
    assert!(package.contains("\"my-api\""), "{package}");
    let all: String = codebase.values().map(|v| v.as_str().unwrap()).collect();
    assert!(!all.contains("{{PORT}}") && all.contains("8080"), "PORT substituted");
    assert!(all.contains("{{PROJECT_NAME}} stays literal"), "values are not substituted again");
    assert_eq!(all.matches("{{PROJECT_NAME}}").count(), all.matches("{{PROJECT_NAME}} stays literal").count());

    // The generation record.
    let (status, page) = app.get(&format!("/api/generations?project_id={pid}"), t).await;
    assert_eq!(status, StatusCode::OK);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    let g = &items[0];
    assert_eq!(g["generation_type"], "project");
    assert_eq!(g["status"], "completed");
    assert_eq!(g["template"], "express-api");
    assert_eq!(g["user_id"], ada.user_id.as_str());
    assert!(g["completed_at"].is_string());
    assert!(g["execution_time_ms"].as_i64().unwrap() >= 0);
    assert_eq!(g["input_params"]["variables"]["PORT"], "8080");
    assert_eq!(g["input_params"]["variables"]["PROJECT_NAME"], "my-api");
    let outputs: BTreeSet<&str> = g["output_files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(outputs, expected);

    // Optional variables default; the template filter finds it.
    let second =
        create(&app, &ada, json!({"name": "Two", "template": "express-api", "variables": {"PROJECT_NAME": "two"}}))
            .await;
    let (_, ctx) = app.get(&format!("/api/projects/{}/context", id(&second)), t).await;
    let all: String = ctx["codebase"].as_object().unwrap().values().map(|v| v.as_str().unwrap()).collect();
    assert!(all.contains("3000") && all.contains("A REST API built with Express"), "defaults used");
    assert!(!all.contains("{{"), "no placeholder left");
    let (_, page) = app.get("/api/projects?template=express-api", t).await;
    assert_eq!(ids(&page), [id(&second), pid]);
    let (_, page) = app.get("/api/generations?template=express-api&type=project&status=completed", t).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(template_usage(&app).await, 2);
}

#[tokio::test]
async fn the_code_context_is_replaced_and_merged() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let t = Some(ada.token.as_str());
    let pid = id(&create(&app, &ada, json!({"name": "ctx"})).await);
    let path = format!("/api/projects/{pid}/context");

    let (status, ctx) = app.get(&path, t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctx["codebase"], json!({}));
    assert_eq!(ctx["dependencies"], json!([]));
    assert_eq!(ctx["test_coverage"], Value::Null);

    let (status, ctx) = app
        .call(
            reqwest::Method::PUT,
            &path,
            t,
            Some(json!({
                "codebase": {"main.py": "print(1)", "requirements.txt": "fastapi"},
                "dependencies": ["fastapi", "uvicorn", "fastapi"],
                "environment_vars": {"API_KEY": "s3cret", "MODE": "dev"},
                "deployment_config": {"replicas": 2, "region": "eu"},
                "test_coverage": 87.5, "security_score": 90, "performance_score": 0
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["dependencies"], json!(["fastapi", "uvicorn"]), "deduplicated");
    assert_eq!(ctx["test_coverage"], 87.5);

    let (status, ctx) = app
        .patch(
            &path,
            t,
            json!({
                "codebase": {"main.py": "print(2)", "requirements.txt": null, "app/api.py": "x = 1"},
                "environment_vars": {"API_KEY": null, "NEW": "1"},
                "deployment_config": {"region": "us"},
                "dependencies": ["django"],
                "security_score": null
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["codebase"], json!({"main.py": "print(2)", "app/api.py": "x = 1"}));
    assert_eq!(ctx["environment_vars"], json!({"MODE": "dev", "NEW": "1"}));
    assert_eq!(ctx["deployment_config"], json!({"replicas": 2, "region": "us"}));
    assert_eq!(ctx["dependencies"], json!(["django"]));
    assert_eq!(ctx["security_score"], Value::Null);
    assert_eq!(ctx["test_coverage"], 87.5, "untouched");
    assert_eq!(ctx["performance_score"], 0.0);

    // An empty patch changes nothing.
    let (status, same) = app.patch(&path, t, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["codebase"], ctx["codebase"]);

    let (status, body) = app
        .patch(
            &path,
            t,
            json!({"test_coverage": 101, "security_score": -1, "performance_score": 50, "environment_vars": {"N": 1}}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["environment_vars.N", "test_coverage", "security_score"]);
    let (status, body) = app.patch(&path, t, json!({"codebase": ["not", "an", "object"]})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["codebase"]);
    let (status, body) = app
        .call(reqwest::Method::PUT, &path, t, Some(json!({"performance_score": 100.01, "dependencies": [""]})))
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["dependencies", "performance_score"]);

    // The audit trail never holds environment values.
    let client = app.db.client().await;
    let rows = client
        .query(
            "SELECT coalesce(new_values, '{}')::text || coalesce(old_values, '{}')::text, actor FROM devx.audit_logs
              WHERE entity_type = 'devx.project_contexts'",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.len() >= 3, "insert, put and patch are audited");
    for row in rows {
        let text: String = row.get(0);
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(row.get::<_, String>(1), format!("user:{}", ada.user_id));
    }
}

#[tokio::test]
async fn modifications_follow_their_state_machine() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let t = Some(ada.token.as_str());
    let pid = id(&create(&app, &ada, json!({"name": "mods"})).await);
    let mods = format!("/api/projects/{pid}/modifications");
    let new_mod = |request: &'static str| {
        let (app, mods) = (&app, &mods);
        async move {
            let (status, m) = app
                .post(
                    mods,
                    t,
                    json!({"request": request, "affected_files": ["src/a.rs"], "impact_analysis": {"risk": "low"}}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{m}");
            m
        }
    };

    let (status, body) =
        app.post(&mods, t, json!({"request": "  ", "affected_files": ["../etc/passwd"], "impact_analysis": 3})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["impact_analysis"], "a wrong type is reported by the parser");
    let (status, body) = app.post(&mods, t, json!({"request": "  ", "affected_files": ["../etc/passwd"]})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["request", "affected_files"]);

    // pending -> approved -> applied
    let m = new_mod("add auth").await;
    assert_eq!(m["status"], "pending");
    assert_eq!(m["requested_by"], ada.user_id.as_str());
    assert_eq!(m["affected_files"], json!(["src/a.rs"]));
    let mid = id(&m);
    let at = |action: &str| format!("/api/modifications/{mid}/{action}");
    let (status, body) = app.post(&at("apply"), t, json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("pending") && detail.contains("approved or rejected"), "{detail}");
    let (status, m) = app.post(&at("approve"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["status"], "approved");
    assert_eq!(m["applied_at"], Value::Null);
    let (status, body) = app.post(&at("reject"), t, json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("approved") && detail.contains("applied or failed"), "{detail}");
    let (status, body) = app.post(&at("apply"), t, json!({"modified_files": {"/abs": "x"}})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["modified_files"]);
    let (status, m) = app
        .post(
            &at("apply"),
            t,
            json!({"modified_files": {"src/a.rs": "fn a() {}"}, "test_results": {"passed": 12, "failed": 0}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["status"], "applied");
    assert!(m["applied_at"].is_string());
    assert_eq!(m["modified_files"], json!({"src/a.rs": "fn a() {}"}));
    assert_eq!(m["test_results"]["passed"], 12);
    for action in ["approve", "reject", "apply", "fail"] {
        let (status, body) = app.post(&at(action), t, json!({})).await;
        assert_problem(status, &body, StatusCode::CONFLICT);
        assert!(body["detail"].as_str().unwrap().contains("applied, which is final"), "{body}");
    }

    // pending -> rejected (final); approved -> failed
    let rejected = id(&new_mod("rewrite in cobol").await);
    let (status, m) = app.post(&format!("/api/modifications/{rejected}/reject"), t, json!({})).await;
    assert_eq!((status, m["status"].as_str()), (StatusCode::OK, Some("rejected")));
    let (status, body) = app.post(&format!("/api/modifications/{rejected}/approve"), t, json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("rejected"));
    let failed = id(&new_mod("upgrade deps").await);
    app.post(&format!("/api/modifications/{failed}/approve"), t, json!({})).await;
    let (status, m) = app
        .post(
            &format!("/api/modifications/{failed}/fail"),
            t,
            json!({"test_results": {"failed": 3}, "error": "tests failed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["status"], "failed");
    assert_eq!(m["test_results"], json!({"failed": 3, "error": "tests failed"}));

    let open = new_mod("still open").await;
    let (status, m) = app.get(&format!("/api/modifications/{}", id(&open)), t).await;
    assert_eq!((status, m["request"].as_str()), (StatusCode::OK, Some("still open")));
    let (status, body) = app.get("/api/modifications/not-a-uuid", t).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app.post(&format!("/api/modifications/{}/approve", uuid::Uuid::new_v4()), t, json!({})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);

    // Lists and counts.
    let (_, page) = app.get(&mods, t).await;
    assert_eq!(ids(&page), [id(&open), failed.clone(), rejected.clone(), mid.clone()]);
    let (_, page) = app.get(&format!("{mods}?status=rejected"), t).await;
    assert_eq!(ids(&page), [rejected]);
    let (status, body) = app.get(&format!("{mods}?status=bogus"), t).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(walk(&app, &ada.token, &mods, 1).await.len(), 4);
    let (_, p) = app.get(&format!("/api/projects/{pid}"), t).await;
    assert_eq!(p["counts"]["open_modifications"], 1);
}

#[tokio::test]
async fn of_two_concurrent_transitions_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let t = Some(ada.token.as_str());
    let pid = id(&create(&app, &ada, json!({"name": "race"})).await);
    // As many races as the server has connections for.
    let rounds = app.config.database.pool_max;
    for round in 0..rounds {
        let (_, m) = app
            .post(&format!("/api/projects/{pid}/modifications"), t, json!({"request": format!("change {round}")}))
            .await;
        let mid = id(&m);
        let approve = format!("/api/modifications/{mid}/approve");
        let reject = format!("/api/modifications/{mid}/reject");
        let ((s1, b1), (s2, b2)) = tokio::join!(app.post(&approve, t, json!({})), app.post(&reject, t, json!({})));
        let statuses = BTreeSet::from([s1, s2]);
        assert_eq!(statuses, BTreeSet::from([StatusCode::OK, StatusCode::CONFLICT]), "round {round}: {b1} / {b2}");
        let (winner, loser) = if s1 == StatusCode::OK { (&b1, &b2) } else { (&b2, &b1) };
        let (_, stored) = app.get(&format!("/api/modifications/{mid}"), t).await;
        assert_eq!(stored["status"], winner["status"], "the winner's status is stored");
        assert!(loser["detail"].as_str().unwrap().contains(winner["status"].as_str().unwrap()), "{loser}");
        // The same transition twice at once: one 200, one 409 too.
        if winner["status"] == "approved" {
            let apply = format!("/api/modifications/{mid}/apply");
            let ((s1, _), (s2, _)) = tokio::join!(app.post(&apply, t, json!({})), app.post(&apply, t, json!({})));
            assert_eq!(BTreeSet::from([s1, s2]), BTreeSet::from([StatusCode::OK, StatusCode::CONFLICT]));
        }
    }
    let client = app.db.client().await;
    let transitions: i64 = client
        .query_one(
            "SELECT count(*) FROM devx.audit_logs WHERE entity_type = 'devx.modifications' AND action = 'update'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let approved: i64 =
        client.query_one("SELECT count(*) FROM devx.modifications WHERE status = 'applied'", &[]).await.unwrap().get(0);
    assert_eq!(transitions, rounds as i64 + approved, "one recorded change per winning transition");
}

#[tokio::test]
async fn generations_start_finish_once_and_are_counted() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let admin = app.admin("root@example.com").await;
    let t = Some(ada.token.as_str());
    let pid = id(&create(&app, &ada, json!({"name": "gen"})).await);

    let (status, body) = app
        .post(
            "/api/generations",
            t,
            json!({"generation_type": "Bad Type", "status": "completed", "template": "nope", "input_params": {}}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["generation_type", "status"], "bad fields first; a missing template after");
    let (status, body) = app.post("/api/generations", t, json!({"generation_type": "x", "template": "nope"})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["template"]);
    let (status, body) =
        app.post("/api/generations", t, json!({"generation_type": "x", "service_id": uuid::Uuid::new_v4()})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["service_id"]);

    let (status, g) = app
        .post(
            "/api/generations",
            t,
            json!({"generation_type": "service", "template": "flask-api", "project_id": pid, "input_params": {"name": "svc"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{g}");
    assert_eq!(g["status"], "pending");
    assert_eq!(g["template"], "flask-api");
    assert_eq!(g["output_files"], json!([]));
    assert_eq!(g["completed_at"], Value::Null);
    let gid = id(&g);
    let path = format!("/api/generations/{gid}");

    let (status, body) =
        app.patch(&path, t, json!({"status": "completed", "error_message": "no", "execution_time_ms": -1})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["error_message", "execution_time_ms"]);
    let (status, g) = app.patch(&path, t, json!({"status": "running"})).await;
    assert_eq!((status, g["status"].as_str()), (StatusCode::OK, Some("running")));
    assert_eq!(g["completed_at"], Value::Null);
    let (status, body) = app.patch(&path, t, json!({"status": "running"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let (status, g) = app
        .patch(
            &path,
            t,
            json!({"status": "completed", "output_files": ["app.py", "requirements.txt"], "execution_time_ms": 1500}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    assert_eq!(g["status"], "completed");
    assert!(g["completed_at"].is_string());
    assert_eq!(g["execution_time_ms"], 1500);
    assert_eq!(g["output_files"], json!(["app.py", "requirements.txt"]));
    for again in ["failed", "completed", "cancelled", "running"] {
        let (status, body) = app.patch(&path, t, json!({"status": again})).await;
        assert_problem(status, &body, StatusCode::CONFLICT);
        assert!(body["detail"].as_str().unwrap().contains("completed, which is final"), "{body}");
    }

    let (_, f) = app.post("/api/generations", t, json!({"generation_type": "service", "status": "running"})).await;
    assert_eq!(f["status"], "running");
    let (status, f) = app
        .patch(&format!("/api/generations/{}", id(&f)), t, json!({"status": "failed", "error_message": "boom"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f["error_message"], "boom");
    assert!(f["execution_time_ms"].as_i64().unwrap() >= 0, "defaults to the time since it started");
    let (_, c) = app.post("/api/generations", t, json!({"generation_type": "code"})).await;
    let (_, bobs) = app.post("/api/generations", Some(&bob.token), json!({"generation_type": "code"})).await;

    // Stats: 3 finished-or-not service/code generations for ada.
    let (status, stats) = app.get("/api/generations/stats", t).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["count"], 3);
    assert_eq!(stats["completed"], 1);
    assert_eq!(stats["failed"], 1);
    assert_eq!(stats["in_flight"], 1);
    assert_eq!(stats["success_rate"], 50.0);
    let by_type: BTreeMap<String, Value> = stats["by_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["generation_type"].as_str().unwrap().to_string(), s.clone()))
        .collect();
    assert_eq!(by_type.keys().collect::<Vec<_>>(), ["code", "service"]);
    assert_eq!(by_type["service"]["count"], 2);
    assert_eq!(by_type["code"]["success_rate"], Value::Null);
    let (_, all) = app.get("/api/generations/stats", Some(&admin.token)).await;
    assert_eq!(all["count"], 4, "an admin counts everyone's");
    let (_, none) = app.get("/api/generations/stats", Some(&app.register("new@example.com").await.token)).await;
    assert_eq!((none["count"].as_i64(), none["success_rate"].is_null()), (Some(0), true), "{none}");

    // Lists: own only, filters, admin all.
    let (_, page) = app.get("/api/generations", t).await;
    assert_eq!(ids(&page), [id(&c), id(&f), gid.clone()]);
    let (_, page) = app.get("/api/generations?generation_type=service&status=failed", t).await;
    assert_eq!(ids(&page), [id(&f)]);
    let (_, page) = app.get(&format!("/api/generations?project={pid}"), t).await;
    assert_eq!(ids(&page), [gid.as_str()]);
    let (status, body) = app.get("/api/generations?type=NOPE", t).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, page) = app.get("/api/generations", Some(&admin.token)).await;
    assert_eq!(ids(&page).len(), 4);
    let (status, body) = app.get(&format!("/api/generations/{}", id(&bobs)), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.get("/api/generations/not-a-uuid", t).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn deleting_a_project_leaves_no_orphans() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let t = Some(ada.token.as_str());
    let p =
        create(&app, &ada, json!({"name": "doomed", "template": "flask-api", "variables": {"PROJECT_NAME": "doomed"}}))
            .await;
    let keep = create(&app, &ada, json!({"name": "kept"})).await;
    let pid = id(&p);
    app.post(&format!("/api/projects/{pid}/modifications"), t, json!({"request": "x"})).await;
    app.post(&format!("/api/projects/{}/modifications", id(&keep)), t, json!({"request": "y"})).await;

    // Rows other slices own, written directly.
    let client = app.db.client().await;
    client
        .batch_execute(&format!(
            "INSERT INTO devx.services (id, project_id, owner_id, name, slug) VALUES
                 ('00000000-0000-4000-8000-000000000001', '{pid}', '{u}', 'api', 'doomed-api');
             INSERT INTO devx.containers (id, container_id, project_id, owner_id, name, status) VALUES
                 ('00000000-0000-4000-8000-000000000002', 'c-1', '{pid}', '{u}', 'web', 'running');
             INSERT INTO devx.deployments (project_id, service_id) VALUES ('{pid}', '00000000-0000-4000-8000-000000000001');
             INSERT INTO devx.chat_messages (project_id, container_id, session_id, role, content)
                 VALUES ('{pid}', '00000000-0000-4000-8000-000000000002', 's', 'user', 'hi');
             INSERT INTO devx.file_storage (project_id, file_path, file_name) VALUES ('{pid}', 'a/b.txt', 'b.txt');
             INSERT INTO devx.tasks (project_id, title, created_by) VALUES ('{pid}', 'build it', '{u}');",
            u = ada.user_id
        ))
        .await
        .unwrap();
    let (_, detail) = app.get(&format!("/api/projects/{pid}"), t).await;
    assert_eq!(detail["counts"]["services"], 1);
    assert_eq!(detail["counts"]["containers"]["running"], 1);
    assert_eq!(detail["counts"]["deployments"], 1);
    assert_eq!(detail["counts"]["messages"], 1);
    assert_eq!(detail["counts"]["files"], 1);
    assert_eq!(detail["counts"]["open_modifications"], 1);
    let (_, summary) = app.get("/api/me/summary", t).await;
    assert_eq!(summary["active_containers"], 1);

    // Every table that refers to projects, found from the catalog.
    let refs: Vec<(String, String, String)> = client
        .query(
            "SELECT c.conrelid::regclass::text, a.attname, c.confdeltype::text
               FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
              WHERE c.contype = 'f' AND c.confrelid = 'devx.projects'::regclass",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(refs.len() >= 9, "{refs:?}");
    assert!(count_refs(&client, &pid, &refs).await >= 9);

    let (status, _) = app.delete(&format!("/api/projects/{pid}"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(count_refs(&client, &pid, &refs).await, 0, "no row refers to the deleted project");
    // History keeps its row and loses the link; the other project is whole.
    let (_, page) = app.get("/api/generations?type=project", t).await;
    assert_eq!(page["items"][0]["project_id"], Value::Null);
    assert_eq!(page["items"][0]["template"], "flask-api");
    let (status, kept) = app.get(&format!("/api/projects/{}", id(&keep)), t).await;
    assert_eq!((status, kept["counts"]["open_modifications"].as_i64()), (StatusCode::OK, Some(1)));
    let deleted: i64 = client
        .query_one(
            "SELECT count(*) FROM devx.audit_logs WHERE entity_type = 'devx.projects' AND action = 'delete' AND actor = $1",
            &[&format!("user:{}", ada.user_id)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(deleted, 1);
}

#[tokio::test]
async fn codebase_and_dependency_filters_find_the_right_projects_through_gin_indexes() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let t = Some(ada.token.as_str());
    let put = |pid: String, body: Value| {
        let app = &app;
        async move {
            let (status, ctx) =
                app.call(reqwest::Method::PUT, &format!("/api/projects/{pid}/context"), t, Some(body)).await;
            assert_eq!(status, StatusCode::OK, "{ctx}");
        }
    };
    let fast = id(&create(&app, &ada, json!({"name": "fast"})).await);
    let dj = id(&create(&app, &ada, json!({"name": "dj"})).await);
    let both = id(&create(&app, &ada, json!({"name": "both"})).await);
    put(
        fast.clone(),
        json!({"codebase": {"requirements.txt": "fastapi", "main.py": "app"}, "dependencies": ["fastapi", "uvicorn"]}),
    )
    .await;
    put(
        dj.clone(),
        json!({"codebase": {"requirements.txt": "django", "cfg": {"debug": true}}, "dependencies": ["django"]}),
    )
    .await;
    put(both.clone(), json!({"codebase": {"requirements.txt": "fastapi", "cfg": {"debug": true, "x": 1}}, "dependencies": ["django", "fastapi"]})).await;
    // Bob's matching project never shows up for Ada.
    let bobs = id(&create(&app, &bob, json!({"name": "bob"})).await);
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/projects/{bobs}/context"),
            Some(&bob.token),
            Some(json!({"codebase": {"requirements.txt": "fastapi"}, "dependencies": ["fastapi"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let q = |doc: Value| format!("/api/projects?codebase_contains={}", urlencode(&doc.to_string()));
    let (_, page) = app.get(&q(json!({"requirements.txt": "fastapi"})), t).await;
    assert_eq!(ids(&page), [both.clone(), fast.clone()]);
    let (_, page) = app.get(&q(json!({"cfg": {"debug": true}})), t).await;
    assert_eq!(ids(&page), [both.clone(), dj.clone()], "nested containment");
    let (_, page) = app.get(&q(json!({})), t).await;
    assert_eq!(ids(&page).len(), 3);
    let (_, page) = app.get("/api/projects?dependency=django", t).await;
    assert_eq!(ids(&page), [both.clone(), dj.clone()]);
    let (_, page) = app.get(&format!("{}&dependency=django", q(json!({"requirements.txt": "fastapi"}))), t).await;
    assert_eq!(ids(&page), [both.as_str()], "filters combine");
    let (_, page) = app.get("/api/projects?dependency=rails", t).await;
    assert!(ids(&page).is_empty());

    // Enough rows that the planner prefers the indexes on its own.
    let client = app.db.client().await;
    client
        .batch_execute(&format!(
            "INSERT INTO devx.projects (id, owner_id, name)
                  SELECT md5('p' || i)::uuid, '{u}', 'bulk ' || i FROM generate_series(1, 5000) i;
             INSERT INTO devx.project_contexts (project_id, codebase, dependencies)
                  SELECT md5('p' || i)::uuid, jsonb_build_object('main.py', 'v' || i, 'n', i % 50),
                         ARRAY['dep' || (i % 1000), 'common']
                    FROM generate_series(1, 5000) i;
             ANALYZE devx.projects; ANALYZE devx.project_contexts;",
            u = bob.user_id
        ))
        .await
        .unwrap();
    // The plan the server makes for the statement with the filter's values
    // (a prepared statement's custom plan; PostgreSQL only switches to a
    // generic plan when that is estimated no costlier).
    let plan = |filter: ProjectFilter| {
        let client = &client;
        async move {
            let statement = list_projects_statement(&filter);
            let rows = client.query(&format!("EXPLAIN {}", statement.sql), &statement.param_refs()).await.unwrap();
            rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
        }
    };
    let owner = Some(bob.user_id.parse().unwrap());
    let by_codebase =
        ProjectFilter { codebase_contains: Some(json!({"main.py": "v42"})), limit: 50, ..Default::default() };
    let by_dependency = ProjectFilter { dependency: Some("dep7".into()), limit: 50, ..Default::default() };
    for filter in [by_codebase.clone(), ProjectFilter { owner, ..by_codebase }] {
        let text = plan(filter).await;
        assert!(text.contains("project_contexts_codebase_idx"), "codebase_contains uses the GIN index:\n{text}");
    }
    for filter in [by_dependency.clone(), ProjectFilter { owner, ..by_dependency }] {
        let text = plan(filter).await;
        assert!(text.contains("project_contexts_dependencies_idx"), "dependency uses the GIN index:\n{text}");
    }

    // And the answers over the big table are right.
    let (_, page) = app.get(&q(json!({"main.py": "v42"})), Some(&bob.token)).await;
    assert_eq!(ids(&page).len(), 1);
    let (_, page) = app.get("/api/projects?dependency=dep7&limit=200", Some(&bob.token)).await;
    assert_eq!(ids(&page).len(), 5);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn keyset_paging_returns_every_project_exactly_once() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let admin = app.admin("root@example.com").await;
    let mut want = BTreeSet::new();
    for i in 0..60 {
        want.insert(id(&create(&app, &ada, json!({"name": format!("p{i}")})).await));
    }
    // Sixty more sharing one created_at: the id breaks the tie.
    let client = app.db.client().await;
    let rows = client
        .query(
            "INSERT INTO devx.projects (owner_id, name, created_at)
                  SELECT $1::text::uuid, 'tie ' || i, '2026-01-01T00:00:00Z' FROM generate_series(1, 60) i
               RETURNING id::text",
            &[&ada.user_id],
        )
        .await
        .unwrap();
    want.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    let bobs = id(&create(&app, &bob, json!({"name": "not ada's"})).await);
    assert_eq!(want.len(), 120);

    for limit in [7, 50, 200] {
        let got = walk(&app, &ada.token, "/api/projects", limit).await;
        assert_eq!(got.len(), 120, "limit {limit}: no duplicates, nothing missing");
        assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    }
    let all = walk(&app, &admin.token, "/api/projects", 13).await;
    assert_eq!(all.len(), 121);
    assert!(all.contains(&bobs));
    let (status, body) = app.get("/api/projects?limit=201", Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app.get("/api/projects?cursor=garbage", Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    app.stop().await.expect("the server stops cleanly");
}

#[tokio::test]
async fn audit_rows_of_a_new_project_name_the_user() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p =
        create(&app, &ada, json!({"name": "audited", "template": "go-cli", "variables": {"PROJECT_NAME": "audited"}}))
            .await;
    let client = app.db.client().await;
    let rows = client
        .query(
            "SELECT entity_type, action, actor FROM devx.audit_logs
              WHERE entity_type IN ('devx.projects', 'devx.project_contexts', 'templates.templates')
                AND created_at > now() - interval '1 minute'
              ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let seen: Vec<(String, String, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let actor = format!("user:{}", ada.user_id);
    assert!(seen.contains(&("devx.projects".into(), "insert".into(), actor.clone())), "{seen:?}");
    assert!(seen.contains(&("devx.project_contexts".into(), "insert".into(), actor.clone())), "{seen:?}");
    assert!(seen.contains(&("templates.templates".into(), "update".into(), actor.clone())), "usage count: {seen:?}");
    let project_rows: Vec<&(String, String, String)> = seen.iter().filter(|r| r.0 == "devx.projects").collect();
    assert!(project_rows.iter().all(|r| r.2 == actor));
    let entity: String = client
        .query_one(
            "SELECT entity_id FROM devx.audit_logs WHERE entity_type = 'devx.projects' AND action = 'insert'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(entity, id(&p));
}
