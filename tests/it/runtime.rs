//! What runs a project, over real HTTP: services, containers and their
//! lifecycle (including a race and the running-port rule), deployments with
//! their status machine and sealed secrets, and another user's ids answering
//! 404 on every route.

use devx::config::{SecretKey, SecretKeys};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::{Session, TestApp, assert_problem};
use crate::support::{fields, id as id_of, project};

/// A key for tests (any 32 bytes).
pub fn test_key() -> SecretKeys {
    SecretKeys::single(SecretKey::from_bytes(*b"devx-test-key-0123456789abcdefgh"))
}

pub async fn spawn_with_key() -> TestApp {
    TestApp::spawn_with(|c| c.secret_keys = Some(test_key())).await
}

async fn container(app: &TestApp, s: &Session, project: &str, runtime_id: &str, port: Option<i32>) -> String {
    let (status, body) = app
        .post(
            &format!("/api/projects/{project}/containers"),
            Some(&s.token),
            json!({"container_id": runtime_id, "name": runtime_id, "image_name": "node:22", "assigned_port": port}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    id_of(&body)
}

#[tokio::test]
async fn services_are_created_listed_changed_and_deleted() {
    // A key: a service's environment variables are sealed.
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let t = Some(ada.token.as_str());

    let (status, svc) = app
        .post(
            &format!("/api/projects/{p}/services"),
            t,
            json!({"name": "Billing API", "slug": "billing-api", "port": 8080, "health_check_url": "/health",
                   "deployment_config": {"replicas": 2}, "environment_vars": {"MODE": "prod"},
                   "resource_limits": {"cpu": "500m"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{svc}");
    assert_eq!(svc["status"], "inactive");
    assert_eq!(svc["service_type"], "api");
    assert_eq!(svc["owner_id"], ada.user_id.as_str());
    assert_eq!(svc["project_id"], p.as_str());
    assert_eq!(svc["deployment_config"]["replicas"], 2);
    let sid = id_of(&svc);

    // The slug is unique across devx: 409 names it.
    let other = project(&app, &ada, "other").await;
    let (status, body) =
        app.post(&format!("/api/projects/{other}/services"), t, json!({"name": "Again", "slug": "billing-api"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert_eq!(fields(&body), ["slug"]);
    assert!(body["detail"].as_str().unwrap().contains("slug"), "{body}");

    // Every invalid field at once.
    let (status, body) = app
        .post(
            &format!("/api/projects/{p}/services"),
            t,
            json!({"name": " ", "slug": "Bad--Slug", "port": 70000, "service_type": "9x", "health_check_url": "ftp://x",
                   "resource_limits": [1]}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["name", "slug", "service_type", "port", "health_check_url", "resource_limits"]);
    let (status, body) =
        app.post(&format!("/api/projects/{p}/services"), t, json!({"name": "x", "slug": "x", "port": 0})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["port"]);
    let (status, body) = app
        .post(&format!("/api/projects/{p}/services"), t, json!({"name": "x", "slug": "x", "owner_id": ada.user_id}))
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app
        .post(
            &format!("/api/projects/{p}/services"),
            t,
            json!({"name": "x", "slug": "x", "template_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["template_id"]);

    let (status, _) = app.post(&format!("/api/projects/{p}/services"), t, json!({"name": "Web", "slug": "web"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, list) = app.get(&format!("/api/projects/{p}/services?limit=1"), t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"][0]["slug"], "web", "newest first");
    let cursor = list["next_cursor"].as_str().unwrap();
    let (_, rest) = app.get(&format!("/api/projects/{p}/services?limit=1&cursor={cursor}"), t).await;
    assert_eq!(rest["items"][0]["slug"], "billing-api");
    assert!(rest["next_cursor"].is_null());
    let (_, filtered) = app.get(&format!("/api/projects/{p}/services?status=running"), t).await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 0);

    let (status, changed) = app
        .patch(
            &format!("/api/services/{sid}"),
            t,
            json!({"status": "running", "port": null, "description": "bills", "slug": "billing"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["status"], "running");
    assert!(changed["port"].is_null());
    assert!(changed["deployed_at"].is_string(), "becoming running sets deployed_at: {changed}");
    assert_eq!(changed["slug"], "billing");
    let (status, body) = app.patch(&format!("/api/services/{sid}"), t, json!({"slug": "web"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let (status, body) = app.patch(&format!("/api/services/{sid}"), t, json!({"port": -1})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    // A whole number may carry a zero fraction; a description is at most
    // 2000 characters as sent, trailing blanks included (they are stored).
    let (status, body) = app.patch(&format!("/api/services/{sid}"), t, json!({"port": 8080.0})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["port"], 8080);
    let long = format!("bills{}", "\n".repeat(2000));
    let (status, body) = app.patch(&format!("/api/services/{sid}"), t, json!({"description": long})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["description"]);
    let (status, _) = app.patch(&format!("/api/services/{sid}"), t, json!({"port": null})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, got) = app.get(&format!("/api/services/{sid}"), t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["description"], "bills");

    let (status, _) = app.delete(&format!("/api/services/{sid}"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("/api/services/{sid}"), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_container_lifecycle_is_enforced() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let t = Some(ada.token.as_str());

    let (status, created) = app
        .post(
            &format!("/api/projects/{p}/containers"),
            t,
            json!({"container_id": "abc123", "name": "web", "assigned_port": 3000, "url": "http://localhost:3000",
                   "labels": {"tier": "web"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "created");
    assert!(created["started_at"].is_null());
    let c = id_of(&created);

    let (status, body) =
        app.post(&format!("/api/projects/{p}/containers"), t, json!({"container_id": "abc123", "name": "dup"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert_eq!(fields(&body), ["container_id"]);
    let (status, body) = app
        .post(
            &format!("/api/projects/{p}/containers"),
            t,
            json!({"container_id": "", "name": "", "assigned_port": 0, "labels": 3}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["container_id", "name", "assigned_port", "labels"]);

    // Stop before start: illegal, and the answer names where it is and where stop may start.
    let (status, body) = app.post(&format!("/api/containers/{c}/stop"), t, json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("created") && detail.contains("allowed only from running"), "{detail}");

    let (status, running) = app.post(&format!("/api/containers/{c}/start"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{running}");
    assert_eq!(running["status"], "running");
    assert!(running["started_at"].is_string());
    let (status, body) = app.post(&format!("/api/containers/{c}/start"), t, json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("is running") && detail.contains("created, stopped"), "{detail}");

    // Active list: from the view, with the project's name.
    let (_, active) = app.get("/api/containers?active=true", t).await;
    assert_eq!(active["items"].as_array().unwrap().len(), 1, "{active}");
    assert_eq!(active["items"][0]["project_name"], "shop");
    assert_eq!(active["items"][0]["labels"]["tier"], "web");

    let (status, stopped) = app.post(&format!("/api/containers/{c}/stop"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stopped["status"], "stopped");
    assert!(stopped["stopped_at"].is_string());
    let (_, active) = app.get("/api/containers?active=true", t).await;
    assert_eq!(active["items"].as_array().unwrap().len(), 0);
    let (status, again) = app.post(&format!("/api/containers/{c}/start"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK, "stopped -> running: {again}");

    let (status, patched) = app
        .patch(&format!("/api/containers/{c}"), t, json!({"labels": {"tier": "api"}, "metadata": {"note": "x"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["labels"], json!({"tier": "api"}));
    assert_eq!(patched["metadata"], json!({"note": "x"}));
    assert_eq!(patched["status"], "running");
    let (status, body) = app.patch(&format!("/api/containers/{c}"), t, json!({"status": "stopped"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, deleted) = app.post(&format!("/api/containers/{c}/delete"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["status"], "deleted");
    assert_ne!(deleted["stopped_at"], stopped["stopped_at"], "deleting a running one stops it");
    for action in ["start", "stop", "delete"] {
        let (status, body) = app.post(&format!("/api/containers/{c}/{action}"), t, json!({})).await;
        assert_problem(status, &body, StatusCode::CONFLICT);
        assert!(body["detail"].as_str().unwrap().contains("is deleted"), "{body}");
    }
    let (status, body) = app.patch(&format!("/api/containers/{c}"), t, json!({"labels": {}})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);

    // Deleted containers leave the default lists; status=deleted finds them.
    let other = container(&app, &ada, &p, "other", None).await;
    for list in ["/api/containers".to_string(), format!("/api/projects/{p}/containers")] {
        let (status, body) = app.get(&list, t).await;
        assert_eq!(status, StatusCode::OK);
        let ids: Vec<&str> = body["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [other.as_str()], "{list}");
        let (_, body) = app.get(&format!("{list}?status=deleted"), t).await;
        assert_eq!(body["items"][0]["id"], c.as_str(), "{list}");
    }
    let (status, got) = app.get(&format!("/api/containers/{c}"), t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["status"], "deleted");
    let (status, body) = app.get("/api/containers?active=true&status=stopped", t).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn two_running_containers_never_share_a_port() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let t = Some(ada.token.as_str());
    let a = container(&app, &ada, &p, "a", Some(8080)).await;
    let b = container(&app, &ada, &p, "b", Some(8080)).await;
    let c = container(&app, &ada, &p, "c", Some(9090)).await;

    let (status, _) = app.post(&format!("/api/containers/{a}/start"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.post(&format!("/api/containers/{b}/start"), t, json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("port 8080"), "{body}");
    assert_eq!(fields(&body), ["assigned_port"]);
    let (_, still) = app.get(&format!("/api/containers/{b}"), t).await;
    assert_eq!(still["status"], "created", "the failed start changed nothing");

    // Moving a running container onto a held port is refused the same way.
    let (status, _) = app.post(&format!("/api/containers/{c}/start"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.patch(&format!("/api/containers/{c}"), t, json!({"assigned_port": 8080})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("port 8080"), "{body}");

    let (status, _) = app.post(&format!("/api/containers/{a}/stop"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.post(&format!("/api/containers/{b}/start"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK, "the port is free once the other stopped: {body}");
}

#[tokio::test]
async fn concurrent_starts_have_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "race").await;
    let t = Some(ada.token.as_str());
    for round in 0..3 {
        let c = container(&app, &ada, &p, &format!("race-{round}"), Some(7000 + round)).await;
        let path = format!("/api/containers/{c}/start");
        let (r1, r2, r3, r4, r5) = tokio::join!(
            app.post(&path, t, json!({})),
            app.post(&path, t, json!({})),
            app.post(&path, t, json!({})),
            app.post(&path, t, json!({})),
            app.post(&path, t, json!({})),
        );
        let statuses = [r1.0, r2.0, r3.0, r4.0, r5.0];
        let wins = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
        assert_eq!((wins, conflicts), (1, 4), "round {round}: {statuses:?}");
    }
    // The audit trail saw one start per container.
    let client = app.db.client().await;
    let starts: i64 = client
        .query_one(
            "SELECT count(*) FROM devx.audit_logs
              WHERE entity_type = 'devx.containers' AND action = 'update' AND new_values ->> 'status' = 'running'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(starts, 3);
}

#[tokio::test]
async fn a_deployment_going_live_stamps_the_projects_code_context_too() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let t = Some(ada.token.as_str());
    let (status, p) = app.post("/api/projects", t, json!({"name": "shop"})).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let p = id_of(&p);
    let (_, context) = app.get(&format!("/api/projects/{p}/context"), t).await;
    assert!(context["last_deployed_at"].is_null(), "{context}");
    let (_, d) = app.post(&format!("/api/projects/{p}/deployments"), t, json!({})).await;
    let (status, body) = app.patch(&format!("/api/deployments/{}", id_of(&d)), t, json!({"status": "running"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, context) = app.get(&format!("/api/projects/{p}/context"), t).await;
    let (_, project) = app.get(&format!("/api/projects/{p}"), t).await;
    assert!(context["last_deployed_at"].is_string(), "{context}");
    assert!(project["last_deployed_at"].is_string() || project["project"]["last_deployed_at"].is_string(), "{project}");
}

const PLAIN_PASSWORD: &str = "pg-pass-Zq8wXv51";
const PLAIN_TOKEN: &str = "stripe-sk-live-Kd93jfa0";

#[tokio::test]
async fn deployments_follow_their_status_machine() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let t = Some(ada.token.as_str());
    let (_, svc) = app.post(&format!("/api/projects/{p}/services"), t, json!({"name": "Web", "slug": "web"})).await;
    let sid = id_of(&svc);

    let (status, d) = app
        .post(
            &format!("/api/projects/{p}/deployments"),
            t,
            json!({"service_id": sid, "app_sandbox_id": "sandbox_abc123", "public_url": "https://myapp.example.dev",
                   "runtime_type": "nodejs", "status": "pending"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    assert_eq!(d["status"], "building", "it starts queued and a free build slot takes it at once: {d}");
    assert!(d["started_at"].is_string() && d["finished_at"].is_null(), "{d}");
    assert_eq!(
        (d["trigger"].as_str(), d["triggered_by"].clone()),
        (Some("manual"), json!(format!("user:{}", ada.user_id)))
    );
    assert_eq!(d["project_name"], "shop");
    assert!(d["db_connection_info"].is_null() && d["environment_vars"].is_null());
    let id = id_of(&d);

    let (status, body) = app.post(&format!("/api/projects/{p}/deployments"), t, json!({"status": "running"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["status"]);
    let other = project(&app, &ada, "other").await;
    let (status, body) = app.post(&format!("/api/projects/{other}/deployments"), t, json!({"service_id": sid})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["service_id"], "a service of another project is none of this one");
    let (status, body) = app
        .post(&format!("/api/projects/{p}/deployments"), t, json!({"public_url": "nope", "environment_vars": [1]}))
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["public_url", "environment_vars"]);

    let step = |to: &'static str| {
        let app = &app;
        let id = id.clone();
        async move { app.patch(&format!("/api/deployments/{id}"), t, json!({"status": to})).await }
    };
    let (status, body) = step("building").await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("building")), "{body}");
    let (status, body) = step("queued").await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("from building to queued") && detail.contains("deploying, running, stopped, failed, cancelled"),
        "{detail}"
    );
    let (status, body) = step("running").await;
    assert_eq!(status, StatusCode::OK, "steps may be skipped: {body}");
    let (status, _) = step("running").await;
    assert_eq!(status, StatusCode::OK, "the same status is a no-op");

    // Going live stamps the project and the service.
    let client = app.db.client().await;
    let stamped: bool = client
        .query_one(
            "SELECT p.last_deployed_at IS NOT NULL AND s.deployed_at IS NOT NULL
               FROM devx.projects p, devx.services s WHERE p.id = $1::text::uuid AND s.id = $2::text::uuid",
            &[&p, &sid],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stamped);

    let (_, running) = app.get("/api/deployments?status=running", t).await;
    assert_eq!(running["items"].as_array().unwrap().len(), 1);
    let (_, summary) = app.get("/api/deployments/summary", t).await;
    assert_eq!(summary["total"], 1);
    assert_eq!(summary["by_status"]["running"], 1);
    assert_eq!(summary["by_status"]["failed"], 0);

    let (status, _) = step("stopped").await;
    assert_eq!(status, StatusCode::OK);
    for to in ["failed", "running", "queued", "cancelled"] {
        let (status, body) = step(to).await;
        assert_problem(status, &body, StatusCode::CONFLICT);
        assert!(body["detail"].as_str().unwrap().contains("stopped is final"), "{body}");
    }

    // Any status that is not final may fail; failed is final.
    let (_, d2) = app.post(&format!("/api/projects/{p}/deployments"), t, json!({})).await;
    let id2 = id_of(&d2);
    let (status, body) = app.patch(&format!("/api/deployments/{id2}"), t, json!({"status": "failed"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.patch(&format!("/api/deployments/{id2}"), t, json!({"status": "building"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let (status, body) =
        app.patch(&format!("/api/deployments/{id2}"), t, json!({"public_url": null, "runtime_type": "python"})).await;
    assert_eq!(status, StatusCode::OK, "other fields still change: {body}");
    assert_eq!(body["runtime_type"], "python");

    let (status, latest) = app.get(&format!("/api/projects/{p}/deployments/latest"), t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(latest["id"], id2.as_str());
    let (_, list) = app.get(&format!("/api/projects/{p}/deployments?limit=1"), t).await;
    assert_eq!(list["items"][0]["id"], id2.as_str());
    let cursor = list["next_cursor"].as_str().unwrap();
    let (_, list) = app.get(&format!("/api/projects/{p}/deployments?limit=1&cursor={cursor}"), t).await;
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert!(list["next_cursor"].is_null());

    let (status, _) = app.delete(&format!("/api/deployments/{id2}"), t).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("/api/deployments/{id2}"), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let empty = project(&app, &ada, "empty").await;
    let (status, body) = app.get(&format!("/api/projects/{empty}/deployments/latest"), t).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null), "there, but never deployed");
    let (status, body) = app.get(&format!("/api/projects/{}/deployments/latest", uuid::Uuid::new_v4()), t).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deployment_secrets_are_sealed_at_rest_and_shown_only_to_the_owner_on_get() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let t = Some(ada.token.as_str());
    let connection = json!({"host": "db.internal", "user": "app", "password": PLAIN_PASSWORD});
    let env = json!({"STRIPE_KEY": PLAIN_TOKEN, "MODE": "prod"});

    let (status, d) = app
        .post(
            &format!("/api/projects/{p}/deployments"),
            t,
            json!({"db_connection_info": connection, "environment_vars": env}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    assert_eq!(d["db_connection_info"], "****");
    assert_eq!(d["environment_vars"], "****");
    let id = id_of(&d);

    // Masked in every list and in `latest`.
    for path in [
        format!("/api/projects/{p}/deployments"),
        "/api/deployments".to_string(),
        "/api/deployments?status=building".to_string(),
        format!("/api/projects/{p}/deployments/latest"),
    ] {
        let (status, body) = app.get(&path, t).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let text = body.to_string();
        assert!(!text.contains(PLAIN_PASSWORD) && !text.contains(PLAIN_TOKEN), "{path} leaks: {text}");
        assert!(text.contains("****"), "{path}: {text}");
    }

    // In full on the single GET, to the owner and to an admin.
    let (status, full) = app.get(&format!("/api/deployments/{id}"), t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(full["db_connection_info"], connection);
    assert_eq!(full["environment_vars"], env);
    let root = app.admin("root@example.com").await;
    assert_eq!(root.email, "root@example.com");
    let (status, full) = app.get(&format!("/api/deployments/{id}"), Some(&root.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(full["environment_vars"], env);
    let bob = app.register("bob@example.com").await;
    let (status, body) = app.get(&format!("/api/deployments/{id}"), Some(&bob.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);

    // PATCH answers masked; replacing and clearing work.
    let (status, body) =
        app.patch(&format!("/api/deployments/{id}"), t, json!({"environment_vars": {"ONLY": "one"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["environment_vars"], "****");
    let (_, full) = app.get(&format!("/api/deployments/{id}"), t).await;
    assert_eq!(full["environment_vars"], json!({"ONLY": "one"}));
    assert_eq!(full["db_connection_info"], connection);
    let (_, body) = app.patch(&format!("/api/deployments/{id}"), t, json!({"environment_vars": null})).await;
    assert!(body["environment_vars"].is_null());
    let (_, body) =
        app.patch(&format!("/api/deployments/{id}"), t, json!({"environment_vars": {"STRIPE_KEY": PLAIN_TOKEN}})).await;
    assert_eq!(body["environment_vars"], "****");

    // At rest: nonce || ciphertext, without the plain text, and nowhere in a dump.
    let client = app.db.client().await;
    let row = client
        .query_one(
            "SELECT db_connection_info, environment_vars FROM devx.deployments WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    for column in [0, 1] {
        let stored: Vec<u8> = row.get(column);
        assert!(stored.len() > 24 + 16, "nonce and tag are there");
        for plain in [PLAIN_PASSWORD, PLAIN_TOKEN, "STRIPE_KEY", "password"] {
            assert!(!stored.windows(plain.len()).any(|w| w == plain.as_bytes()), "column {column} holds {plain}");
        }
    }
    let dbname = app.db.config().get_dbname().expect("test database name").to_string();
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "-h", "127.0.0.1", "-U", "postgres", "-d", &dbname])
        .output()
        .expect("pg_dump runs");
    assert!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains(&id), "the dump has the deployment");
    for plain in [PLAIN_PASSWORD, PLAIN_TOKEN] {
        assert!(!dump.contains(plain), "pg_dump shows {plain}");
    }

    // A sealed value moved to another row does not open there.
    let (_, d2) = app.post(&format!("/api/projects/{p}/deployments"), t, json!({})).await;
    let id2 = id_of(&d2);
    client
        .execute(
            "UPDATE devx.deployments SET (environment_vars, environment_vars_key_id) =
                    (SELECT environment_vars, environment_vars_key_id FROM devx.deployments WHERE id = $1::text::uuid)
              WHERE id = $2::text::uuid",
            &[&id, &id2],
        )
        .await
        .unwrap();
    let (status, body) = app.get(&format!("/api/deployments/{id2}"), t).await;
    assert_problem(status, &body, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!body.to_string().contains(PLAIN_TOKEN));
}

#[tokio::test]
async fn without_a_secret_key_only_secrets_are_refused_and_clearly() {
    let app = TestApp::spawn().await;
    assert!(app.config.secret_keys.is_none());
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let t = Some(ada.token.as_str());

    let (status, d) = app.post(&format!("/api/projects/{p}/deployments"), t, json!({"runtime_type": "nodejs"})).await;
    assert_eq!(status, StatusCode::CREATED, "no secret, no key needed: {d}");
    let id = id_of(&d);
    let (status, _) = app.get(&format!("/api/deployments/{id}"), t).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.patch(&format!("/api/deployments/{id}"), t, json!({"status": "building"})).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) =
        app.post(&format!("/api/projects/{p}/deployments"), t, json!({"environment_vars": {"K": PLAIN_TOKEN}})).await;
    assert_problem(status, &body, StatusCode::SERVICE_UNAVAILABLE);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("DEVX_SECRET_KEY is not set") && detail.contains("openssl rand -base64 32"), "{detail}");
    assert!(!body.to_string().contains(PLAIN_TOKEN));
    let (status, body) =
        app.patch(&format!("/api/deployments/{id}"), t, json!({"db_connection_info": "postgres://x"})).await;
    assert_problem(status, &body, StatusCode::SERVICE_UNAVAILABLE);
    let count: i64 =
        app.db.client().await.query_one("SELECT count(*) FROM devx.deployments", &[]).await.unwrap().get(0);
    assert_eq!(count, 1, "nothing was stored");

    // A stored secret cannot be shown without the key: the single GET says
    // why; lists (masked) keep working.
    app.db
        .client()
        .await
        .execute(
            "UPDATE devx.deployments SET environment_vars = '\\x0102030405'::bytea, environment_vars_key_id = 'default'
              WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    let (status, body) = app.get(&format!("/api/deployments/{id}"), t).await;
    assert_problem(status, &body, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["detail"].as_str().unwrap().contains("DEVX_SECRET_KEY is not set"));
    let (status, list) = app.get(&format!("/api/projects/{p}/deployments"), t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"][0]["environment_vars"], "****");
}

#[tokio::test]
async fn another_users_ids_are_not_found_on_every_route() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let p = project(&app, &ada, "private").await;
    let t = Some(ada.token.as_str());
    let (_, svc) = app.post(&format!("/api/projects/{p}/services"), t, json!({"name": "S", "slug": "s"})).await;
    let svc = id_of(&svc);
    let c = container(&app, &ada, &p, "ada-1", Some(5000)).await;
    let (_, d) = app.post(&format!("/api/projects/{p}/deployments"), t, json!({"environment_vars": {"A": "b"}})).await;
    let d = id_of(&d);

    let b = Some(bob.token.as_str());
    let body = json!({});
    let gets = [
        format!("/api/projects/{p}/services"),
        format!("/api/services/{svc}"),
        format!("/api/projects/{p}/containers"),
        format!("/api/containers/{c}"),
        format!("/api/projects/{p}/deployments"),
        format!("/api/projects/{p}/deployments/latest"),
        format!("/api/deployments/{d}"),
    ];
    for path in &gets {
        let (status, resp) = app.get(path, b).await;
        assert_problem(status, &resp, StatusCode::NOT_FOUND);
    }
    let posts = [
        (format!("/api/projects/{p}/services"), json!({"name": "x", "slug": "bob-x"})),
        (format!("/api/projects/{p}/containers"), json!({"container_id": "bob-1", "name": "x"})),
        (format!("/api/projects/{p}/deployments"), json!({})),
        (format!("/api/containers/{c}/start"), body.clone()),
        (format!("/api/containers/{c}/stop"), body.clone()),
        (format!("/api/containers/{c}/delete"), body.clone()),
    ];
    for (path, payload) in &posts {
        let (status, resp) = app.post(path, b, payload.clone()).await;
        assert_problem(status, &resp, StatusCode::NOT_FOUND);
    }
    let patches = [
        (format!("/api/services/{svc}"), json!({"name": "mine"})),
        (format!("/api/containers/{c}"), json!({"labels": {"owner": "bob"}})),
        (format!("/api/deployments/{d}"), json!({"status": "failed"})),
    ];
    for (path, payload) in &patches {
        let (status, resp) = app.patch(path, b, payload.clone()).await;
        assert_problem(status, &resp, StatusCode::NOT_FOUND);
    }
    for path in [format!("/api/services/{svc}"), format!("/api/deployments/{d}")] {
        let (status, resp) = app.delete(&path, b).await;
        assert_problem(status, &resp, StatusCode::NOT_FOUND);
    }
    // Nothing of Ada's shows in Bob's own lists, and nothing changed.
    for path in ["/api/containers", "/api/containers?active=true", "/api/deployments"] {
        let (status, resp) = app.get(path, b).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(resp["items"].as_array().unwrap().len(), 0, "{path}");
    }
    let (_, summary) = app.get("/api/deployments/summary", b).await;
    assert_eq!(summary["total"], 0);
    let (_, container) = app.get(&format!("/api/containers/{c}"), t).await;
    assert_eq!(container["status"], "created");
    assert_eq!(container["labels"], json!({}));
    let (_, deployment) = app.get(&format!("/api/deployments/{d}"), t).await;
    assert_eq!(deployment["status"], "building", "as it was: a free build slot took it at once");

    // An admin may act on anyone's rows.
    let root = app.admin("root@example.com").await;
    let (status, _) = app.get(&format!("/api/containers/{c}"), Some(&root.token)).await;
    assert_eq!(status, StatusCode::OK);

    // A deleted project takes its rows out of reach.
    app.db
        .client()
        .await
        .execute("UPDATE devx.projects SET status = 'deleted' WHERE id = $1::text::uuid", &[&p])
        .await
        .unwrap();
    for path in &gets {
        let (status, resp) = app.get(path, t).await;
        assert_problem(status, &resp, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn runtime_routes_are_in_the_openapi_document() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/projects/{id}/services",
        "/api/services/{id}",
        "/api/projects/{id}/containers",
        "/api/containers",
        "/api/containers/{id}",
        "/api/containers/{id}/start",
        "/api/containers/{id}/stop",
        "/api/containers/{id}/delete",
        "/api/projects/{id}/deployments",
        "/api/projects/{id}/deployments/latest",
        "/api/deployments",
        "/api/deployments/summary",
        "/api/deployments/{id}",
        "/api/projects/{id}/messages",
        "/api/projects/{id}/files",
        "/api/files/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    app.stop().await.expect("the server stops cleanly");
}

/// One rule for who sees a row: an admin sees every user's containers and
/// deployments in the lists and the summary, a user only their own.
#[tokio::test]
async fn admins_see_every_users_containers_and_deployments() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann@example.com").await;
    let bob = app.register("bob@example.com").await;
    let admin = app.admin("root@example.com").await;
    let mut made = Vec::new();
    for (who, name) in [(&ann, "ann"), (&bob, "bob")] {
        let project = crate::support::project(&app, who, name).await;
        let c = container(&app, who, &project, &format!("rt-{name}"), None).await;
        let (status, d) = app.post(&format!("/api/projects/{project}/deployments"), Some(&who.token), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{d}");
        made.push((c, id_of(&d)));
    }
    let ids = |page: &serde_json::Value| crate::support::ids(page);
    for path in ["/api/containers", "/api/deployments"] {
        let (_, mine) = app.get(path, Some(&ann.token)).await;
        let (_, all) = app.get(path, Some(&admin.token)).await;
        let pick = |(c, d): &(String, String)| if path == "/api/containers" { c.clone() } else { d.clone() };
        assert_eq!(ids(&mine), vec![pick(&made[0])], "{path}: a user sees only their own");
        let all = ids(&all);
        assert!(all.contains(&pick(&made[0])) && all.contains(&pick(&made[1])), "{path}: the admin sees both: {all:?}");
    }
    let (_, mine) = app.get("/api/deployments/summary", Some(&ann.token)).await;
    let (_, all) = app.get("/api/deployments/summary", Some(&admin.token)).await;
    assert_eq!((mine["total"].as_i64(), all["total"].as_i64()), (Some(1), Some(2)), "{mine} {all}");
}

/// Containers first: a container made on its own belongs to its user (seen
/// by them and admins, 404 to anyone else), runs through its lifecycle, is
/// active while created or running, and a project can name it as the
/// container it lives in, at create and update, only if the caller sees it.
#[tokio::test]
async fn a_container_exists_without_a_project_and_a_project_can_live_in_it() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let root = app.admin("root@example.com").await;
    let (t, b) = (Some(ada.token.as_str()), Some(bob.token.as_str()));

    let resp = app
        .request(reqwest::Method::POST, "/api/containers", t)
        .json(&json!({"container_id": "rt-solo", "name": "solo", "assigned_port": 4100,
                      "url": "http://localhost:4100"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let solo: Value = resp.json().await.unwrap();
    let c = id_of(&solo);
    assert_eq!(location, format!("/api/containers/{c}"));
    assert_eq!(solo["project_id"], Value::Null);
    assert_eq!(solo["owner_id"], ada.user_id.as_str());
    assert_eq!(solo["status"], "created");
    let (status, body) = app.post("/api/containers", t, json!({"container_id": "rt-solo", "name": "again"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert_eq!(fields(&body), ["container_id"], "{body}");
    let (status, body) =
        app.post("/api/containers", t, json!({"container_id": " ", "name": "x", "url": "ftp://x"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["container_id", "url"]);
    let idle = id_of(&app.post("/api/containers", t, json!({"container_id": "rt-idle", "name": "idle"})).await.1);

    // Its owner and admins see it; anyone else gets a 404 everywhere.
    let (status, got) = app.get(&format!("/api/containers/{c}"), t).await;
    assert_eq!((status, got["name"].as_str()), (StatusCode::OK, Some("solo")), "{got}");
    let (_, mine) = app.get("/api/containers", t).await;
    assert_eq!(crate::support::ids(&mine), [idle.clone(), c.clone()]);
    let (status, _) = app.get(&format!("/api/containers/{c}"), Some(&root.token)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, all) = app.get("/api/containers", Some(&root.token)).await;
    assert!(crate::support::ids(&all).contains(&c), "{all}");
    let (status, body) = app.get(&format!("/api/containers/{c}"), b).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    for action in ["start", "stop", "delete"] {
        let (status, body) = app.post(&format!("/api/containers/{c}/{action}"), b, json!({})).await;
        assert_problem(status, &body, StatusCode::NOT_FOUND);
    }
    let (status, body) = app.patch(&format!("/api/containers/{c}"), b, json!({"name": "bob's"})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    for path in ["/api/containers", "/api/containers?active=true"] {
        let (_, theirs) = app.get(path, b).await;
        assert_eq!(theirs["items"], json!([]), "{path}");
    }

    // Active: created and running ones, from the view; a project-less one has no project name.
    let (_, active) = app.get("/api/containers?active=true", t).await;
    assert_eq!(crate::support::ids(&active), [idle.clone(), c.clone()]);
    assert_eq!(active["items"][1]["project_name"], Value::Null);
    let (status, running) = app.post(&format!("/api/containers/{c}/start"), t, json!({})).await;
    assert_eq!((status, running["status"].as_str()), (StatusCode::OK, Some("running")), "{running}");
    let (_, active) = app.get("/api/containers?active=true&status=running", t).await;
    assert_eq!(crate::support::ids(&active), [c.as_str()]);
    let (_, active) = app.get("/api/containers?active=true&status=created", t).await;
    assert_eq!(crate::support::ids(&active), [idle.as_str()]);
    let (status, body) = app.get("/api/containers?active=true&status=deleted", t).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);

    // A project names the container it lives in, at create...
    let (status, shop) =
        app.post("/api/projects", t, json!({"name": "shop", "description": "a shop", "container_id": c})).await;
    assert_eq!(status, StatusCode::CREATED, "{shop}");
    assert_eq!(shop["container_id"], c.as_str());
    let shop_id = id_of(&shop);
    let (_, got) = app.get(&format!("/api/projects/{shop_id}"), t).await;
    assert_eq!(got["container_id"], c.as_str());
    let (_, active) = app.get("/api/containers?active=true", t).await;
    assert_eq!(active["items"][1]["project_name"], "shop", "{active}");
    // ...and at update, where null clears it.
    let (status, moved) = app.patch(&format!("/api/projects/{shop_id}"), t, json!({"container_id": idle})).await;
    assert_eq!((status, moved["container_id"].as_str()), (StatusCode::OK, Some(idle.as_str())), "{moved}");
    let (status, cleared) = app.patch(&format!("/api/projects/{shop_id}"), t, json!({"container_id": null})).await;
    assert_eq!((status, &cleared["container_id"]), (StatusCode::OK, &Value::Null), "{cleared}");
    let (status, back) = app.patch(&format!("/api/projects/{shop_id}"), t, json!({"name": "shop"})).await;
    assert_eq!((status, &back["container_id"]), (StatusCode::OK, &Value::Null), "a PATCH without it keeps it");
    app.patch(&format!("/api/projects/{shop_id}"), t, json!({"container_id": c})).await;

    // Someone else's container, or none, is a 404 naming the field, and nothing is made or changed.
    let missing = uuid::Uuid::new_v4().to_string();
    for container in [&c, &missing] {
        let (status, body) = app.post("/api/projects", b, json!({"name": "bobs", "container_id": container})).await;
        assert_problem(status, &body, StatusCode::NOT_FOUND);
        assert_eq!(fields(&body), ["container_id"], "{body}");
    }
    let (_, bobs) = app.get("/api/projects", b).await;
    assert_eq!(bobs["items"], json!([]));
    let bobs = id_of(&app.post("/api/projects", b, json!({"name": "bobs"})).await.1);
    let (status, body) = app.patch(&format!("/api/projects/{bobs}"), b, json!({"container_id": c, "name": "x"})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(fields(&body), ["container_id"], "{body}");
    let (_, unchanged) = app.get(&format!("/api/projects/{bobs}"), b).await;
    assert_eq!((unchanged["name"].as_str(), &unchanged["container_id"]), (Some("bobs"), &Value::Null));
    // An admin may house anyone's project in anyone's container.
    let (status, housed) =
        app.patch(&format!("/api/projects/{bobs}"), Some(&root.token), json!({"container_id": idle})).await;
    assert_eq!((status, housed["container_id"].as_str()), (StatusCode::OK, Some(idle.as_str())), "{housed}");
    // A deleted container houses nothing new.
    app.post(&format!("/api/containers/{idle}/delete"), t, json!({})).await;
    let (status, body) = app.post("/api/projects", t, json!({"name": "late", "container_id": idle})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert_eq!(fields(&body), ["container_id"], "{body}");

    // Per-project containers keep working, with their project.
    let p = project(&app, &ada, "legacy").await;
    let kept = container(&app, &ada, &p, "rt-legacy", None).await;
    let (_, got) = app.get(&format!("/api/containers/{kept}"), t).await;
    assert_eq!(got["project_id"], p.as_str());
    let (_, listed) = app.get(&format!("/api/projects/{p}/containers"), t).await;
    assert_eq!(crate::support::ids(&listed), [kept]);

    // The container's record going (retention) leaves the project, without it.
    let client = app.db.client().await;
    client.execute("DELETE FROM devx.containers WHERE id = $1::text::uuid", &[&c]).await.unwrap();
    let (status, got) = app.get(&format!("/api/projects/{shop_id}"), t).await;
    assert_eq!((status, &got["container_id"]), (StatusCode::OK, &Value::Null), "{got}");
}
