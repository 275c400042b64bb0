//! Deployment configuration snapshots over real HTTP on a real database:
//! taken when a service's deployment is queued, shown masked with a diff
//! against the previous one, copied by a rollback, pruned by retention
//! beyond `deploy.keep_snapshots`.

use devx::retention::{self, RunOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{Session, TestApp, assert_problem};
use crate::runtime::spawn_with_key;
use crate::support::{all_pages, id as id_of, project};

const CANARY: &str = "canary-snapshot-secret-41d7";

async fn service(app: &TestApp, who: &Session, project: &str, slug: &str) -> String {
    let body = json!({"name": slug, "slug": slug, "port": 8080});
    let (status, s) = app.post(&format!("/api/projects/{project}/services"), Some(&who.token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    id_of(&s)
}

async fn set_var(app: &TestApp, who: &Session, service: &str, key: &str, body: Value) {
    let path = format!("/api/services/{service}/env/{key}");
    let (status, v) = app.call(Method::PUT, &path, Some(&who.token), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {v}");
}

async fn deploy(app: &TestApp, who: &Session, project: &str, service: &str, sha: &str) -> String {
    let body = json!({"service_id": service, "commit_sha": sha, "branch": "main"});
    let (status, d) = app.post(&format!("/api/projects/{project}/deployments"), Some(&who.token), body).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    assert!(d.get("snapshot").is_none(), "lists and writes do not carry the snapshot: {d}");
    id_of(&d)
}

async fn get(app: &TestApp, who: &Session, id: &str) -> Value {
    let (status, d) = app.get(&format!("/api/deployments/{id}"), Some(&who.token)).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    d
}

async fn rollback(app: &TestApp, who: &Session, id: &str) -> (StatusCode, Value) {
    app.post(&format!("/api/deployments/{id}/rollback"), Some(&who.token), json!({})).await
}

#[tokio::test]
async fn a_snapshot_masks_secrets_diffs_and_rolls_back() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let root = app.admin("root@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let s = service(&app, &ada, &p, "api").await;
    set_var(&app, &ada, &s, "API_TOKEN", json!({"value": CANARY, "is_secret": true})).await;
    set_var(&app, &ada, &s, "LOG_LEVEL", json!({"value": "info", "is_secret": false})).await;

    let first = deploy(&app, &ada, &p, &s, "aaaaaaa1").await;
    let d1 = get(&app, &ada, &first).await;
    assert_eq!(d1["snapshot_state"], "stored", "{d1}");
    let snap = &d1["snapshot"];
    assert_eq!(snap["env"]["API_TOKEN"]["value"], "****", "{d1}");
    assert_eq!(snap["env"]["API_TOKEN"]["secret"], true);
    assert_eq!(snap["env"]["LOG_LEVEL"], json!({"value": "info", "secret": false, "buildtime": true, "runtime": true}));
    assert_eq!(snap["service"]["port"], 8080);
    assert_eq!(snap["source"]["commit_sha"], "aaaaaaa1");
    let digest1 = d1["snapshot_digest"].as_str().unwrap().to_string();
    assert_eq!(digest1.len(), 64);
    assert!(d1["snapshot_diff"].is_null(), "the first has nothing to compare with: {d1}");

    set_var(&app, &ada, &s, "LOG_LEVEL", json!({"value": "debug"})).await;
    set_var(&app, &ada, &s, "API_TOKEN", json!({"value": "another-secret-value", "is_secret": true})).await;
    let second = deploy(&app, &ada, &p, &s, "bbbbbbb2").await;
    let d2 = get(&app, &ada, &second).await;
    assert_ne!(d2["snapshot_digest"], d1["snapshot_digest"]);
    let diff = d2["snapshot_diff"].as_array().unwrap();
    let by_path = |path: &str| diff.iter().find(|c| c["path"] == path).cloned();
    let level = by_path("env.LOG_LEVEL.value").expect("the diff names the variable");
    assert_eq!(
        (level["change"].clone(), level["before"].clone(), level["after"].clone()),
        (json!("changed"), json!("info"), json!("debug"))
    );
    let token = by_path("env.API_TOKEN.value").expect("a changed secret is named");
    assert_eq!((token["before"].clone(), token["after"].clone()), (Value::Null, Value::Null), "{token}");
    assert!(by_path("source.commit_sha").is_some(), "{d2}");

    // Rollback to the first: a new queued deployment with its snapshot.
    let (status, other) = rollback(&app, &bob, &first).await;
    assert_problem(status, &other, StatusCode::NOT_FOUND);
    let (status, r) = rollback(&app, &ada, &first).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!((r["trigger"].clone(), r["rollback_of"].clone()), (json!("rollback"), json!(first)));
    assert_eq!(r["commit_sha"], "aaaaaaa1");
    assert!(["queued", "building"].contains(&r["status"].as_str().unwrap()), "{r}");
    let back = get(&app, &ada, &id_of(&r)).await;
    assert_eq!(back["snapshot_digest"], json!(digest1), "the earlier snapshot, copied");
    assert_eq!(back["snapshot"], d1["snapshot"]);
    // The service's variables are not rewritten by a rollback.
    let (_, var) = app.get(&format!("/api/services/{s}/env/LOG_LEVEL"), Some(&ada.token)).await;
    assert_eq!(var["value"], "debug");

    // The secret is in no answer and not in the audit trail.
    let mut answers = vec![d1, d2, back, r];
    answers.extend(all_pages(&app, &root.token, "/api/admin/audit?limit=200").await);
    assert!(answers.iter().any(|a| a.to_string().contains("snapshot_digest")), "the audit trail has the rows");
    for a in &answers {
        assert!(!a.to_string().contains(CANARY), "an answer shows the secret: {a}");
    }
    let client = app.db.client().await;
    let leaked: i64 = client
        .query_one(
            "SELECT count(*) FROM devx.audit_logs WHERE row_to_json(audit_logs)::text LIKE $1",
            &[&format!("%{CANARY}%")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaked, 0);

    // Nor anywhere in a dump of the database: the snapshots are sealed.
    let dbname = app.db.config().get_dbname().expect("test database name").to_string();
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "-h", "127.0.0.1", "-U", "postgres", "-d", &dbname])
        .output()
        .expect("pg_dump runs");
    assert!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains(&digest1), "the dump has the snapshots' digests");
    assert!(!dump.contains(CANARY), "pg_dump shows the secret");
}

#[tokio::test]
async fn no_snapshot_and_pruned_snapshots_cannot_be_rolled_back() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let root = app.admin("root@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let s = service(&app, &ada, &p, "api").await;

    // Not a service's deployment: no snapshot.
    let (status, bare) = app.post(&format!("/api/projects/{p}/deployments"), Some(&ada.token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{bare}");
    let bare = id_of(&bare);
    let d = get(&app, &ada, &bare).await;
    assert_eq!((d["snapshot_state"].clone(), d["snapshot"].clone()), (json!("none"), Value::Null));
    let (status, body) = rollback(&app, &ada, &bare).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body.to_string().contains("no configuration snapshot"), "{body}");

    let (status, body) = app
        .call(Method::PUT, "/api/admin/config/deploy.keep_snapshots", Some(&root.token), Some(json!({"value": 2})))
        .await;
    assert!(status.is_success(), "{body}");
    let mut ids = Vec::new();
    for (i, sha) in ["1111111", "2222222", "3333333", "4444444"].iter().enumerate() {
        set_var(&app, &ada, &s, "N", json!({"value": i.to_string()})).await;
        ids.push(deploy(&app, &ada, &p, &s, sha).await);
    }
    // The oldest runs: running ones are never pruned.
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/deployments/{}", ids[0]),
            Some(&ada.token),
            Some(json!({"status": "running"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    retention::run(&app.pool, &RunOptions::default()).await.unwrap();

    let states: Vec<Value> = {
        let mut out = Vec::new();
        for id in &ids {
            out.push(get(&app, &ada, id).await["snapshot_state"].clone());
        }
        out
    };
    assert_eq!(states, [json!("stored"), json!("pruned"), json!("stored"), json!("stored")], "keeps the newest 2");
    let pruned = get(&app, &ada, &ids[1]).await;
    assert!(pruned["snapshot"].is_null() && pruned["snapshot_digest"].is_string(), "the digest stays: {pruned}");
    let (status, body) = rollback(&app, &ada, &ids[1]).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert!(body.to_string().contains("pruned"), "{body}");
    let (status, body) = rollback(&app, &ada, &ids[3]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // `devx secrets rotate` re-seals the stored snapshots under a new first key.
    let next = devx::config::SecretKey::from_bytes([9; 32]);
    let old = crate::runtime::test_key().get(devx::config::SecretKeys::DEFAULT_ID).unwrap().clone();
    let both = devx::config::SecretKeys::new(vec![("next".into(), next.clone()), ("default".into(), old)]).unwrap();
    let report = devx::runtime::secrets::rotate(&app.pool, &both, 100).await.unwrap();
    let column = report.columns.iter().find(|c| c.column == "snapshot_sealed").expect("snapshots are rotated");
    assert_eq!(column.resealed, 4, "three kept and the rollback's copy: {report:?}");
    let only_next = devx::config::SecretKeys::new(vec![("next".into(), next)]).unwrap();
    let checked = devx::runtime::secrets::check(&app.pool, &only_next, 100).await.unwrap();
    assert_eq!(checked.problems(), 0, "{checked:?}");
}

#[tokio::test]
async fn a_retried_rollback_makes_one_deployment_and_no_key_stores_no_snapshot() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let p = project(&app, &ada, "shop").await;
    let s = service(&app, &ada, &p, "api").await;
    let first = deploy(&app, &ada, &p, &s, "abcdef1").await;
    let t = Some(ada.token.as_str());
    let keyed = || {
        app.request(Method::POST, &format!("/api/deployments/{first}/rollback"), t)
            .header("Idempotency-Key", "rollback-once")
            .json(&json!({}))
    };
    let one: Value = keyed().send().await.unwrap().json().await.unwrap();
    let two: Value = keyed().send().await.unwrap().json().await.unwrap();
    assert_eq!((one["id"].clone(), one["trigger"].clone()), (two["id"].clone(), json!("rollback")), "{one} {two}");
    let client = app.db.client().await;
    let rollbacks: i64 =
        client.query_one("SELECT count(*) FROM devx.deployments WHERE trigger = 'rollback'", &[]).await.unwrap().get(0);
    assert_eq!(rollbacks, 1);

    // Without DEVX_SECRET_KEY a service's deployment goes ahead without one.
    let keyless = TestApp::spawn().await;
    let bob = keyless.register("bob@example.com").await;
    let p = project(&keyless, &bob, "shop").await;
    let s = service(&keyless, &bob, &p, "api").await;
    let d = deploy(&keyless, &bob, &p, &s, "abcdef2").await;
    let d = get(&keyless, &bob, &d).await;
    assert_eq!((d["snapshot_state"].clone(), d["snapshot_digest"].clone()), (json!("none"), Value::Null), "{d}");
    let (status, body) = rollback(&keyless, &bob, &id_of(&d)).await;
    assert_problem(status, &body, StatusCode::CONFLICT);
}
