//! Deployments' provenance and lifecycle over real HTTP on a real database:
//! the commit and who triggered each deploy, the build-slot queue (under
//! many concurrent requests), cancel and redeploy; and rotating the keys
//! that seal their secrets, through the CLI binary and HTTP.

use std::collections::BTreeSet;

use devx::app::Application;
use devx::config::{SecretKey, SecretKeys};
use devx::http::AppState;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::agents::SseReader;
use crate::app::{Session, TestApp, assert_problem};
use crate::harness::devx_command;
use crate::runtime::spawn_with_key;
use crate::support::{fields, id as id_of, project};

async fn set_setting(app: &TestApp, admin: &Session, key: &str, value: Value) {
    let (status, body) = app
        .call(Method::PUT, &format!("/api/admin/config/{key}"), Some(&admin.token), Some(json!({"value": value})))
        .await;
    assert!(status.is_success(), "{key}: {body}");
}

async fn deploy(app: &TestApp, token: &str, project: &str) -> Value {
    let (status, d) = app.post(&format!("/api/projects/{project}/deployments"), Some(token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    d
}

/// `(id, status)` of every deployment, oldest first.
async fn statuses(app: &TestApp) -> Vec<(String, String)> {
    let client = app.db.client().await;
    let rows =
        client.query("SELECT id::text, status FROM devx.deployments ORDER BY created_at, id", &[]).await.unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn count(all: &[(String, String)], status: &str) -> usize {
    all.iter().filter(|(_, s)| s == status).count()
}

#[tokio::test]
async fn a_deployment_records_its_commit_and_who_triggered_it() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let t = Some(ada.token.as_str());
    let sha = "3f786850e387550fdab836ed7e6dc881de23001b";
    let (status, d) = app
        .post(
            &format!("/api/projects/{p}/deployments"),
            t,
            json!({"commit_sha": sha, "commit_message": "Fix the checkout total", "branch": "main"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    assert_eq!((d["commit_sha"].as_str(), d["branch"].as_str()), (Some(sha), Some("main")));
    assert_eq!(d["commit_message"], "Fix the checkout total");
    assert_eq!(d["trigger"], "manual");
    assert_eq!(d["triggered_by"], format!("user:{}", ada.user_id));
    assert!(d["rollback_of"].is_null() && d["error_message"].is_null(), "{d}");

    // An API key is `api`, and the actor names the key.
    let (status, key) = app.post("/api/api-keys", t, json!({"name": "ci", "scopes": ["read", "write"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let (status, by_key) =
        app.post(&format!("/api/projects/{p}/deployments"), key["key"].as_str(), json!({"branch": "release"})).await;
    assert_eq!(status, StatusCode::CREATED, "{by_key}");
    assert_eq!(by_key["trigger"], "api");
    assert_eq!(by_key["triggered_by"], format!("user:{} apikey:{}", ada.user_id, key["id"].as_str().unwrap()));
    let client = app.db.client().await;
    let audited: String = client
        .query_one(
            "SELECT actor FROM devx.audit_logs WHERE entity_type = 'devx.deployments' AND entity_id = $1 AND action = 'insert'",
            &[&id_of(&by_key)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(by_key["triggered_by"], audited, "the same actor as the audit trail");

    // Bad provenance is a 422 naming each field; nothing is stored.
    let (status, body) = app
        .post(
            &format!("/api/projects/{p}/deployments"),
            t,
            json!({"commit_sha": "not-a-sha", "commit_message": " ", "branch": "x".repeat(256)}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["commit_sha", "commit_message", "branch"]);
    let stored: i64 = client.query_one("SELECT count(*) FROM devx.deployments", &[]).await.unwrap().get(0);
    assert_eq!(stored, 2);

    // Failing records why and when it ended.
    let id = id_of(&d);
    let (status, failed) = app
        .patch(&format!("/api/deployments/{id}"), t, json!({"status": "failed", "error_message": "npm ci: exit 1"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    assert_eq!(failed["error_message"], "npm ci: exit 1");
    assert!(failed["started_at"].is_string() && failed["finished_at"].is_string(), "{failed}");
    let (_, listed) = app.get(&format!("/api/projects/{p}/deployments"), t).await;
    let listed = listed["items"].as_array().unwrap().iter().find(|x| x["id"] == id.as_str()).unwrap().clone();
    assert_eq!((listed["commit_sha"].as_str(), listed["trigger"].as_str()), (Some(sha), Some("manual")));
}

#[tokio::test]
async fn a_queued_deployment_waits_for_its_slot_and_can_be_cancelled() {
    let app = spawn_with_key().await;
    let root = app.admin("root@example.com").await;
    set_setting(&app, &root, "deploy.max_concurrent_builds_per_project", json!(1)).await;
    let ada = app.register("ada@example.com").await;
    let (p, other) = (project(&app, &ada, "shop").await, project(&app, &ada, "blog").await);
    let t = Some(ada.token.as_str());

    let a = deploy(&app, &ada.token, &p).await;
    let b = deploy(&app, &ada.token, &p).await;
    let c = deploy(&app, &ada.token, &p).await;
    let elsewhere = deploy(&app, &ada.token, &other).await;
    assert_eq!(a["status"], "building");
    assert_eq!((b["status"].as_str(), c["status"].as_str()), (Some("queued"), Some("queued")), "one slot per project");
    assert!(b["started_at"].is_null(), "{b}");
    assert_eq!(elsewhere["status"], "building", "another project has its own slot");
    let (a, b, c) = (id_of(&a), id_of(&b), id_of(&c));

    // Waiting is not skipped: it moves only to building, and only in its turn.
    let (status, body) = app.patch(&format!("/api/deployments/{b}"), t, json!({"status": "building"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("no build slot is free"), "{body}");
    let (status, body) = app.patch(&format!("/api/deployments/{b}"), t, json!({"status": "running"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    // `pending`, the former name of `queued`, still reads as it.
    let (_, waiting) = app.get("/api/deployments?status=pending", t).await;
    let waiting: BTreeSet<&str> =
        waiting["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(waiting, BTreeSet::from([b.as_str(), c.as_str()]));

    // Cancelling a queued one: the next one keeps waiting behind the build.
    let (status, cancelled) = app.post(&format!("/api/deployments/{b}/cancel"), t, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["finished_at"].is_string(), "{cancelled}");
    let (status, body) = app.post(&format!("/api/deployments/{b}/cancel"), t, json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("cancelled deployment cannot be cancelled"), "{body}");
    let (_, now) = app.get(&format!("/api/deployments/{c}"), t).await;
    assert_eq!(now["status"], "queued");

    // The build moving on frees its slot: the queue moves by itself.
    let (status, _) = app.patch(&format!("/api/deployments/{a}"), t, json!({"status": "deploying"})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, now) = app.get(&format!("/api/deployments/{c}"), t).await;
    assert_eq!(now["status"], "building", "{now}");
    assert!(now["started_at"].is_string());

    // Deploying can be cancelled; running cannot.
    let (status, body) = app.post(&format!("/api/deployments/{a}/cancel"), t, json!({})).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{body}");
    let (status, _) = app.patch(&format!("/api/deployments/{c}"), t, json!({"status": "running"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.post(&format!("/api/deployments/{c}/cancel"), t, json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("only queued, building or deploying"), "{body}");

    // Another user's deployment is missing, for cancel too.
    let bob = app.register("bob@example.com").await;
    let (status, body) = app.post(&format!("/api/deployments/{c}/cancel"), Some(&bob.token), json!({})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (_, summary) = app.get("/api/deployments/summary", t).await;
    assert_eq!(summary["by_status"]["cancelled"], 2);
    assert_eq!(summary["by_status"]["queued"], 0);
}

/// Sends every request at once; their statuses.
async fn all_at_once(requests: Vec<reqwest::RequestBuilder>) -> Vec<StatusCode> {
    let mut set = tokio::task::JoinSet::new();
    for request in requests {
        set.spawn(async move { request.send().await.unwrap().status() });
    }
    set.join_all().await
}

/// The most deployments building in one project.
async fn most_building_in_a_project(app: &TestApp) -> i64 {
    app.db
        .client()
        .await
        .query_one(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM devx.deployments
                                                WHERE status = 'building' GROUP BY project_id) x",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn concurrent_requests_never_overshoot_the_build_slots() {
    let app = spawn_with_key().await;
    let root = app.admin("root@example.com").await;
    set_setting(&app, &root, "deploy.max_concurrent_builds", json!(3)).await;
    set_setting(&app, &root, "deploy.max_concurrent_builds_per_project", json!(2)).await;
    let mut owners = Vec::new();
    for name in ["ada", "bob", "cy"] {
        let who = app.register(&format!("{name}@example.com")).await;
        let p = project(&app, &who, "shop").await;
        owners.push((who.token, p));
    }
    let create = |n: usize| {
        let (token, p) = &owners[n % 3];
        app.request(Method::POST, &format!("/api/projects/{p}/deployments"), Some(token)).json(&json!({}))
    };

    // 30 creates at once, across three projects.
    let answers = all_at_once((0..30).map(create).collect()).await;
    assert!(answers.iter().all(|s| *s == StatusCode::CREATED), "{answers:?}");
    let all = statuses(&app).await;
    assert_eq!((count(&all, "building"), count(&all, "queued")), (3, 27), "{all:?}");
    assert!(most_building_in_a_project(&app).await <= 2);

    // Builds finishing, queued ones cancelled and new ones arriving, all at
    // once: the slots end full, never over.
    let client = app.db.client().await;
    let owner_of = async |id: &str| -> String {
        let p: String = client
            .query_one("SELECT project_id::text FROM devx.deployments WHERE id = $1::text::uuid", &[&id])
            .await
            .unwrap()
            .get(0);
        owners.iter().find(|(_, x)| *x == p).unwrap().0.clone()
    };
    let mut requests = Vec::new();
    for (id, status) in &all {
        let token = owner_of(id).await;
        if status == "building" {
            requests.push(
                app.request(Method::PATCH, &format!("/api/deployments/{id}"), Some(&token))
                    .json(&json!({"status": "running"})),
            );
        }
    }
    let queued: Vec<&String> = all.iter().filter(|(_, s)| s == "queued").map(|(id, _)| id).collect();
    for id in queued.iter().step_by(3) {
        let token = owner_of(id).await;
        requests
            .push(app.request(Method::POST, &format!("/api/deployments/{id}/cancel"), Some(&token)).json(&json!({})));
    }
    requests.extend((0..6).map(create));
    let answers = all_at_once(requests).await;
    // A queued one may have got its slot meanwhile: cancelling a build is fine too.
    assert!(answers.iter().all(StatusCode::is_success), "{answers:?}");
    let after = statuses(&app).await;
    assert_eq!((count(&after, "building"), count(&after, "running")), (3, 3), "{after:?}");
    assert_eq!(count(&after, "cancelled"), 9);
    assert!(most_building_in_a_project(&app).await <= 2);
    // First come, first built: no queued deployment is older than a
    // building one while its own project had room.
    let overtaken: i64 = client
        .query_one(
            "SELECT count(*) FROM devx.deployments b JOIN devx.deployments q ON q.status = 'queued'
              WHERE b.status = 'building' AND (q.created_at, q.id) < (b.created_at, b.id)
                AND (SELECT count(*) FROM devx.deployments x
                      WHERE x.project_id = q.project_id AND x.status = 'building') < 2",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(overtaken, 0, "{after:?}");
}

#[tokio::test]
async fn a_stopped_or_failed_deployment_can_be_redeployed() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let t = Some(ada.token.as_str());
    let (_, svc) = app.post(&format!("/api/projects/{p}/services"), t, json!({"name": "Web", "slug": "web"})).await;
    let env = json!({"STRIPE_KEY": "sk-live-redeploy-canary", "MODE": "prod"});
    let (status, d) = app
        .post(
            &format!("/api/projects/{p}/deployments"),
            t,
            json!({"service_id": id_of(&svc), "app_sandbox_id": "sandbox_1", "public_url": "https://shop.example.dev",
                   "runtime_type": "nodejs", "environment_vars": env, "commit_sha": "abc1234", "branch": "main",
                   "commit_message": "v1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let id = id_of(&d);

    let (status, body) = app.post(&format!("/api/deployments/{id}/redeploy"), t, json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("only stopped or failed"), "{body}");
    let (status, _) = app.patch(&format!("/api/deployments/{id}"), t, json!({"status": "failed"})).await;
    assert_eq!(status, StatusCode::OK);

    let bob = app.register("bob@example.com").await;
    let (status, body) = app.post(&format!("/api/deployments/{id}/redeploy"), Some(&bob.token), json!({})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);

    let response =
        app.request(Method::POST, &format!("/api/deployments/{id}/redeploy"), t).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let again: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/deployments/{}", again["id"].as_str().unwrap()));
    assert_ne!(again["id"], d["id"]);
    assert_eq!(again["trigger"], "redeploy");
    assert_eq!(again["triggered_by"], format!("user:{}", ada.user_id));
    assert_eq!(again["status"], "building", "queued, and a slot was free");
    for field in ["service_id", "public_url", "runtime_type", "commit_sha", "branch", "commit_message"] {
        assert_eq!(again[field], d[field], "{field}");
    }
    assert!(again["app_sandbox_id"].is_null(), "the sandbox is the old run's, not configuration");
    assert_eq!(again["environment_vars"], "****");
    let (status, full) = app.get(&format!("/api/deployments/{}", id_of(&again)), t).await;
    assert_eq!(status, StatusCode::OK, "{full}");
    assert_eq!(full["environment_vars"], env, "the secrets came along, sealed for the new row");
    let (_, old) = app.get(&format!("/api/deployments/{id}"), t).await;
    assert_eq!(old["status"], "failed", "the source is left as it was");

    // A retried redeploy with its Idempotency-Key makes one deployment.
    let keyed = || {
        app.request(Method::POST, &format!("/api/deployments/{id}/redeploy"), t)
            .header("Idempotency-Key", "redeploy-once")
            .json(&json!({}))
    };
    let first: Value = keyed().send().await.unwrap().json().await.unwrap();
    let second: Value = keyed().send().await.unwrap().json().await.unwrap();
    assert_eq!(first["id"], second["id"], "{first} {second}");
    let client = app.db.client().await;
    let redeploys: i64 =
        client.query_one("SELECT count(*) FROM devx.deployments WHERE trigger = 'redeploy'", &[]).await.unwrap().get(0);
    assert_eq!(redeploys, 2);
}

/// A server on the same database as `app`, with other keys (and a pool of
/// its own: stopping a server closes its pool).
async fn serve_with_keys(app: &TestApp, keys: SecretKeys) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut config = app.config.clone();
    config.secret_keys = Some(keys);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Application::build(listener, AppState::new(crate::app::pool(&app.db).await, config));
    let url = format!("http://{}", server.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    (url, stop)
}

fn secrets_cli(app: &TestApp, keys: &str, args: &[&str]) -> (i32, String) {
    let out = devx_command()
        .env("DATABASE_URL", app.db.url())
        .env("DEVX_SECRET_KEY", keys)
        .arg("secrets")
        .args(args)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn rotating_the_key_keeps_every_value_readable() {
    use base64::Engine;
    let encode = |k: &[u8; 32]| base64::engine::general_purpose::STANDARD.encode(k);
    let (a, b) = (*b"devx-test-key-0123456789abcdefgh", *b"devx-rotated-key-0123456789abcde");
    // Sealed under A, given bare: the key with id `default`.
    let app = TestApp::spawn_with(|c| c.secret_keys = Some(SecretKeys::single(SecretKey::from_bytes(a)))).await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let t = Some(ada.token.as_str());
    let mut expected = Vec::new();
    for n in 0..5 {
        let env = json!({"TOKEN": format!("canary-{n}")});
        let body = if n % 2 == 0 {
            json!({"environment_vars": env, "db_connection_info": {"password": format!("pw-{n}")}})
        } else {
            json!({"environment_vars": env})
        };
        let (status, d) = app.post(&format!("/api/projects/{p}/deployments"), t, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{d}");
        expected.push((id_of(&d), body));
    }
    let plain = deploy(&app, &ada.token, &p).await;

    let (code, out) = secrets_cli(&app, &encode(&a), &["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("deployments.environment_vars: 5 open (5 under \"default\")"), "{out}");
    // Only B: what is under A is reported, and the check fails.
    let only_b = format!("b:{}", encode(&b));
    let (code, out) = secrets_cli(&app, &only_b, &["check"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("sealed under a key no longer configured: 5 under \"default\""), "{out}");
    assert!(out.contains("total: 0 open, 8 cannot be read"), "{out}");

    // B first, A still listed: new values are sealed under B, old ones open.
    let both = format!("{only_b},default:{}", encode(&a));
    let both_keys = SecretKeys::parse(&both).unwrap();
    let (url, stop) = serve_with_keys(&app, both_keys).await;
    let http = reqwest::Client::new();
    let (status, newer) = {
        let r = http
            .post(format!("{url}/api/projects/{p}/deployments"))
            .bearer_auth(&ada.token)
            .json(&json!({"environment_vars": {"TOKEN": "canary-new"}}))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, StatusCode::CREATED, "{newer}");
    expected.push((id_of(&newer), json!({"environment_vars": {"TOKEN": "canary-new"}})));
    let client = app.db.client().await;
    let key_ids = async || -> BTreeSet<String> {
        client
            .query("SELECT environment_vars_key_id FROM devx.deployments WHERE environment_vars IS NOT NULL", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(key_ids().await, BTreeSet::from(["b".to_string(), "default".to_string()]));

    // Rotate in batches of 2: everything under A is re-sealed under B.
    let (code, out) = secrets_cli(&app, &both, &["rotate", "--batch-size", "2"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("deployments.environment_vars: re-sealed 5 under \"b\""), "{out}");
    assert!(out.contains("deployments.db_connection_info: re-sealed 3 under \"b\""), "{out}");
    assert!(out.contains("total: re-sealed 8, unreadable 0"), "{out}");
    assert_eq!(key_ids().await, BTreeSet::from(["b".to_string()]));
    let (code, out) = secrets_cli(&app, &both, &["rotate"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("total: re-sealed 0"), "a second run has nothing left: {out}");
    let rotated: i64 = client
        .query_one("SELECT count(*) FROM devx.audit_logs WHERE actor = 'system:secrets'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rotated, 8, "each re-sealed value is in the audit trail");

    // A removed: the check passes and every value reads over HTTP.
    let (code, out) = secrets_cli(&app, &only_b, &["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("total: 9 open, 0 cannot be read"), "{out}");
    let _ = stop.send(());
    let (url, stop) = serve_with_keys(&app, SecretKeys::parse(&only_b).unwrap()).await;
    for (id, body) in &expected {
        let r = http.get(format!("{url}/api/deployments/{id}")).bearer_auth(&ada.token).send().await.unwrap();
        let status = r.status();
        let got: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{id}: {got}");
        assert_eq!(got["environment_vars"], body["environment_vars"], "{id}");
        if let Some(info) = body.get("db_connection_info") {
            assert_eq!(&got["db_connection_info"], info, "{id}");
        }
    }
    let r = http.get(format!("{url}/api/deployments/{}", id_of(&plain))).bearer_auth(&ada.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The old server, with only A, can no longer read them, and says why.
    let (status, body) = app.get(&format!("/api/deployments/{}", expected[0].0), t).await;
    assert_problem(status, &body, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["detail"].as_str().unwrap().contains("key with id \"b\""), "{body}");
    let _ = stop.send(());

    // Without any key the commands say how to make one.
    let out = devx_command().env("DATABASE_URL", app.db.url()).args(["secrets", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("openssl rand -base64 32"));
}

#[tokio::test]
async fn deployments_made_before_provenance_are_backfilled_and_still_open() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let client = app.db.client().await;
    client.batch_execute(include_str!("../../migrations/20261207030000_deployment_provenance.down.sql")).await.unwrap();

    // A deployment as it was stored before: pending, sealed under the one
    // key with no key id, created by Ada (the audit trail says so).
    let id = uuid::Uuid::new_v4();
    let env = json!({"TOKEN": "legacy-canary"});
    let context = devx::runtime::secrets::context("deployments", "environment_vars", id);
    let sealed = devx::runtime::secrets::seal_json(Some(&crate::runtime::test_key()), &context, &env).unwrap();
    let actor = format!("user:{}", ada.user_id);
    client
        .batch_execute(&format!(
            "BEGIN; SELECT set_config('devx.actor', '{actor}', true);
             INSERT INTO devx.deployments (id, project_id, environment_vars, status)
             VALUES ('{id}', '{p}', '\\x{}', 'pending'); COMMIT;",
            sealed.bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ))
        .await
        .unwrap();
    client.batch_execute(include_str!("../../migrations/20261207030000_deployment_provenance.up.sql")).await.unwrap();

    let (status, d) = app.get(&format!("/api/deployments/{id}"), Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["environment_vars"], env, "sealed before key ids: the bare key, id default, opens it");
    assert_eq!((d["status"].as_str(), d["trigger"].as_str()), (Some("queued"), Some("manual")));
    assert_eq!(d["triggered_by"], actor, "taken from the audit trail");
    let key_id: String = client
        .query_one("SELECT environment_vars_key_id FROM devx.deployments WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(key_id, "default");
}

async fn append_deploy_logs(app: &TestApp, token: &str, id: &str, lines: Value) -> (StatusCode, Value) {
    app.post(&format!("/api/deployments/{id}/logs"), Some(token), json!({"lines": lines})).await
}

/// Canary: the values of a deployment's sealed environment variables and
/// its database password never reach the stored text, the tail or the live
/// stream; lines are numbered per deployment, tailed after a seq, streamed
/// across a reconnect with `Last-Event-ID` until the deployment is final;
/// the table refuses updates; another user's deployment is a 404.
#[tokio::test]
async fn deploy_log_lines_never_hold_a_secret_and_stream_resumes_with_last_event_id() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let t = ada.token.as_str();
    let (status, d) = app
        .post(
            &format!("/api/projects/{p}/deployments"),
            Some(t),
            json!({"environment_vars": {"STRIPE_KEY": "sk-live-log-canary", "MODE": "prod", "X": "abc"},
                   "db_connection_info": {"host": "db.internal", "password": "pw-log-canary"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let id = id_of(&d);
    let other = id_of(&deploy(&app, t, &p).await);

    let (status, body) = append_deploy_logs(
        &app,
        t,
        &id,
        json!([
            {"text": "building with STRIPE_KEY=sk-live-log-canary in prod"},
            {"stream": "stderr", "text": "connect postgres://app:pw-log-canary@db.internal failed (abc)"},
            {"stream": "system", "text": "retrying", "time": "2026-01-02T03:04:05Z"},
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({"first_seq": 1, "last_seq": 3, "count": 3}));
    // Seqs are per deployment.
    let (status, body) = append_deploy_logs(&app, t, &other, json!([{"text": "elsewhere"}])).await;
    assert_eq!((status, body["first_seq"].clone()), (StatusCode::CREATED, json!(1)));

    let (status, page) = app.get(&format!("/api/deployments/{id}/logs"), Some(t)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let texts: Vec<&str> = page["items"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        ["building with STRIPE_KEY=**** in ****", "connect postgres://app:****@db.internal failed (abc)", "retrying"],
        "values of 4 characters or more are masked, shorter ones are not"
    );
    assert_eq!(page["items"][1]["stream"], "stderr");
    assert_eq!(page["items"][2]["time"], "2026-01-02T03:04:05Z");
    let (_, page) = app.get(&format!("/api/deployments/{id}/logs?after=1&limit=1"), Some(t)).await;
    assert_eq!(page["items"][0]["seq"], 2);
    assert_eq!(page["next_cursor"], "2");

    // Nothing stored holds the canary; the table is append-only.
    let client = app.db.client().await;
    let stored: i64 = client
        .query_one("SELECT count(*) FROM devx.deployment_log_lines WHERE text LIKE '%canary%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "no secret reached the table");
    let err = client.execute("UPDATE devx.deployment_log_lines SET text = 'x'", &[]).await.unwrap_err();
    assert!(err.to_string().contains("append-only") || format!("{err:?}").contains("append-only"), "{err:?}");

    // Another user's deployment is missing, for every route.
    let (status, body) = app.get(&format!("/api/deployments/{id}/logs"), Some(&bob.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = append_deploy_logs(&app, &bob.token, &id, json!([{"text": "x"}])).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.get(&format!("/api/deployments/{id}/logs/stream"), Some(&bob.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = append_deploy_logs(&app, t, &id, json!([{"stream": "debug", "text": "x"}])).await;
    assert!(status.is_client_error(), "{status} {body}");

    // The stream: from the start, then resumed after the last id received
    // while the deployment is cancelled; it ends with its status.
    let path = format!("/api/deployments/{id}/logs/stream");
    let mut first = SseReader::open(&app, &path, t, None).await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = first.next().await.expect("the stream goes on");
        assert!(!event.data.contains("canary"), "{}", event.data);
        seen.push(event.id.unwrap().parse::<i64>().unwrap());
    }
    drop(first);
    let (status, _) = append_deploy_logs(&app, t, &id, json!([{"text": "again sk-live-log-canary"}])).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut second = SseReader::open(&app, &path, t, Some("3")).await;
    let (status, body) = app.post(&format!("/api/deployments/{id}/cancel"), Some(t), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    loop {
        let event = second.next().await.expect("an end event before the stream ends");
        if event.event == "end" {
            assert_eq!(event.data, "cancelled");
            break;
        }
        assert!(event.data.contains("again ****"), "{}", event.data);
        seen.push(event.id.unwrap().parse().unwrap());
    }
    assert!(second.next().await.is_none(), "the stream ends after `end`");
    assert_eq!(seen, [1, 2, 3, 4], "every line once, in order");
}

/// A deployment's log holds `deploy.max_log_bytes` of text: a batch past
/// it is a 413 naming the setting, and nothing of it is stored.
#[tokio::test]
async fn a_deploy_log_past_its_cap_is_refused_whole() {
    let app = spawn_with_key().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    set_setting(&app, &admin, "deploy.max_log_bytes", json!(1024)).await;
    let id = id_of(&deploy(&app, &ada.token, &p).await);
    let (status, body) = append_deploy_logs(&app, &ada.token, &id, json!([{"text": "a".repeat(1000)}])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) =
        append_deploy_logs(&app, &ada.token, &id, json!([{"text": "b".repeat(10)}, {"text": "c".repeat(20)}])).await;
    assert_problem(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["detail"].as_str().unwrap().contains("deploy.max_log_bytes"), "{body}");
    let (_, page) = app.get(&format!("/api/deployments/{id}/logs"), Some(&ada.token)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "nothing of the refused batch is stored");
    let (status, _) = append_deploy_logs(&app, &ada.token, &id, json!([{"text": "d".repeat(24)}])).await;
    assert_eq!(status, StatusCode::CREATED, "up to the cap exactly");
}
