//! Deploy webhooks and pull-request previews over real HTTP on a real
//! database: deploy tokens shown once and regenerated, GitHub- and
//! GitLab-checked deliveries, replays (one after another and at once), and
//! previews opened, closed and capped.

use devx::runtime::hooks::signature::hmac_sha256;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{Session, TestApp, assert_problem};
use crate::runtime::spawn_with_key;
use crate::support::{count, project};

const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";
const SHA2: &str = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";

/// A service in a new project of `owner`: its id.
async fn service(app: &TestApp, owner: &Session, slug: &str) -> String {
    let p = project(app, owner, slug).await;
    let (status, s) =
        app.post(&format!("/api/projects/{p}/services"), Some(&owner.token), json!({"name": slug, "slug": slug})).await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    s["id"].as_str().unwrap().to_string()
}

async fn new_token(app: &TestApp, owner: &Session, service: &str) -> String {
    let (status, t) = app.post(&format!("/api/services/{service}/deploy-token"), Some(&owner.token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    t["deploy_token"].as_str().unwrap().to_string()
}

fn github_signature(token: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(token.as_bytes(), body)))
}

/// Sends a GitHub delivery signed with `token` (or with the signature given).
async fn github(
    app: &TestApp,
    service: &str,
    signature: Option<String>,
    event: &str,
    delivery: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut req = app
        .request(Method::POST, &format!("/api/hooks/deploy/{service}"), None)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery);
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    answer(req.body(bytes)).await
}

async fn signed(app: &TestApp, service: &str, token: &str, event: &str, delivery: &str, body: &Value) -> Value {
    let sig = github_signature(token, &serde_json::to_vec(body).unwrap());
    let (status, answer) = github(app, service, Some(sig), event, delivery, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer
}

async fn gitlab(
    app: &TestApp,
    service: &str,
    token: &str,
    event: &str,
    delivery: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let req = app
        .request(Method::POST, &format!("/api/hooks/deploy/{service}"), None)
        .header("content-type", "application/json")
        .header("x-gitlab-token", token)
        .header("x-gitlab-event", event)
        .header("x-gitlab-event-uuid", delivery)
        .body(serde_json::to_vec(body).unwrap());
    answer(req).await
}

async fn answer(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("sent");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn push(branch: &str, sha: &str) -> Value {
    json!({"ref": format!("refs/heads/{branch}"), "after": sha, "head_commit": {"id": sha, "message": "Fix the checkout total"}})
}

fn pull_request(action: &str, number: i64, sha: &str) -> Value {
    json!({"action": action, "number": number, "pull_request": {
        "html_url": format!("https://github.com/acme/shop/pull/{number}"),
        "head": {"ref": format!("feature-{number}"), "sha": sha}}})
}

async fn deployments(app: &TestApp) -> i64 {
    count(&app.db.client().await, "SELECT count(*) FROM devx.deployments").await
}

#[tokio::test]
async fn a_signed_github_push_queues_exactly_one_deployment_and_replays_create_nothing() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let svc = service(&app, &ada, "shop").await;
    let token = new_token(&app, &ada, &svc).await;

    let first = signed(&app, &svc, &token, "push", "d-1", &push("main", SHA)).await;
    assert_eq!(first["status"], "deployment_queued", "{first}");
    let deployment = first["deployment_id"].as_str().unwrap().to_string();
    let (status, d) = app.get(&format!("/api/deployments/{deployment}"), Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!((d["commit_sha"].as_str(), d["branch"].as_str()), (Some(SHA), Some("main")), "{d}");
    assert_eq!(d["commit_message"], "Fix the checkout total");
    assert_eq!((d["trigger"].as_str(), d["triggered_by"].as_str()), (Some("webhook"), Some("webhook:github")));
    assert_eq!(d["service_id"], svc.as_str());
    assert!(matches!(d["status"].as_str(), Some("queued" | "building")), "{d}");
    let client = app.db.client().await;
    let actor: String = crate::support::one(
        &client,
        "SELECT actor FROM devx.audit_logs WHERE entity_type = 'devx.deployments' AND entity_id = $1 AND action = 'insert'",
        &[&deployment],
    )
    .await;
    assert_eq!(actor, "webhook:github");

    // The same delivery again: the same answer, nothing new.
    let again = signed(&app, &svc, &token, "push", "d-1", &push("main", SHA)).await;
    assert_eq!(again, first);
    assert_eq!(deployments(&app).await, 1);

    // Eight at once of a new delivery: one deployment, one answer.
    let body = push("main", SHA2);
    let sig = github_signature(&token, &serde_json::to_vec(&body).unwrap());
    let answers =
        futures_util::future::join_all((0..8).map(|_| github(&app, &svc, Some(sig.clone()), "push", "d-2", &body)))
            .await;
    for (status, a) in &answers {
        assert_eq!(*status, StatusCode::ACCEPTED, "{a}");
        assert_eq!(a, &answers[0].1);
    }
    assert_eq!(deployments(&app).await, 2);
    assert_eq!(count(&client, "SELECT count(*) FROM devx.webhook_deliveries").await, 2);

    // A ping is answered, and does nothing.
    let ping = signed(&app, &svc, &token, "ping", "d-3", &json!({"zen": "Keep it logically awesome."})).await;
    assert_eq!(ping["status"], "ignored");
    assert!(ping["deployment_id"].is_null());
    assert_eq!(deployments(&app).await, 2);
    let (status, info) = app.get(&format!("/api/services/{svc}/deploy-token"), Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert!(info["last_used_at"].is_string(), "{info}");
}

#[tokio::test]
async fn badly_signed_deliveries_are_401_and_create_nothing() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let svc = service(&app, &ada, "shop").await;
    let body = push("main", SHA);

    // No token configured yet: 401 even with a well-formed signature.
    let (status, p) = github(&app, &svc, Some(github_signature("guess", b"{}")), "push", "x-1", &body).await;
    assert_problem(status, &p, StatusCode::UNAUTHORIZED);
    let token = new_token(&app, &ada, &svc).await;
    let bytes = serde_json::to_vec(&body).unwrap();
    for sig in [
        None,
        Some(github_signature("not-the-token", &bytes)),
        Some(github_signature(&token, b"another body")),
        Some("sha256=".to_string()),
        Some(github_signature(&token, &bytes).replace("sha256=", "sha1=")),
    ] {
        let (status, p) = github(&app, &svc, sig.clone(), "push", "x-2", &body).await;
        assert_problem(status, &p, StatusCode::UNAUTHORIZED);
        assert_eq!(p["detail"], no_token_detail(), "{sig:?}: the same answer for every failure");
    }
    let (status, p) = gitlab(&app, &svc, "wrong", "Push Hook", "x-3", &json!({"ref": "refs/heads/main"})).await;
    assert_problem(status, &p, StatusCode::UNAUTHORIZED);
    // Another service's token does not open this one.
    let other = service(&app, &ada, "other").await;
    let other_token = new_token(&app, &ada, &other).await;
    let (status, p) = github(&app, &svc, Some(github_signature(&other_token, &bytes)), "push", "x-4", &body).await;
    assert_problem(status, &p, StatusCode::UNAUTHORIZED);
    // A signed delivery without its id: 400.
    let req = app
        .request(Method::POST, &format!("/api/hooks/deploy/{svc}"), None)
        .header("x-github-event", "push")
        .header("x-hub-signature-256", github_signature(&token, &bytes))
        .body(bytes.clone());
    let (status, p) = answer(req).await;
    assert_problem(status, &p, StatusCode::BAD_REQUEST);
    assert!(p["detail"].as_str().unwrap().contains("x-github-delivery"), "{p}");

    // A body over the server's limit is refused before anything is read.
    let big = vec![b' '; 2 * 1024 * 1024];
    let req = app
        .request(Method::POST, &format!("/api/hooks/deploy/{svc}"), None)
        .header("x-github-event", "push")
        .header("x-github-delivery", "x-5")
        .header("x-hub-signature-256", github_signature(&token, &big))
        .body(big);
    let (status, p) = answer(req).await;
    assert_problem(status, &p, StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(deployments(&app).await, 0);
    assert_eq!(count(&app.db.client().await, "SELECT count(*) FROM devx.webhook_deliveries").await, 0);
}

fn no_token_detail() -> &'static str {
    "the delivery is not signed with this service's deploy token (or the service has none)"
}

#[tokio::test]
async fn a_gitlab_push_queues_a_deployment() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let svc = service(&app, &ada, "shop").await;
    let token = new_token(&app, &ada, &svc).await;
    let body = json!({"object_kind": "push", "ref": "refs/heads/develop", "checkout_sha": SHA,
        "commits": [{"id": SHA2, "message": "older"}, {"id": SHA, "message": "Add the cart"}]});
    let (status, a) = gitlab(&app, &svc, &token, "Push Hook", "uuid-1", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{a}");
    assert_eq!((a["status"].as_str(), a["provider"].as_str()), (Some("deployment_queued"), Some("gitlab")));
    let (_, d) = app.get(&format!("/api/deployments/{}", a["deployment_id"].as_str().unwrap()), Some(&ada.token)).await;
    assert_eq!((d["commit_sha"].as_str(), d["branch"].as_str()), (Some(SHA), Some("develop")), "{d}");
    assert_eq!(
        (d["commit_message"].as_str(), d["triggered_by"].as_str()),
        (Some("Add the cart"), Some("webhook:gitlab"))
    );
    let (status, again) = gitlab(&app, &svc, &token, "Push Hook", "uuid-1", &body).await;
    assert_eq!((status, &again), (StatusCode::ACCEPTED, &a));
    assert_eq!(deployments(&app).await, 1);
}

#[tokio::test]
async fn the_token_is_shown_once_regenerating_replaces_it_and_others_cannot_touch_it() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let svc = service(&app, &ada, "shop").await;
    let path = format!("/api/services/{svc}/deploy-token");
    let (status, _) = app.get(&path, Some(&ada.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no token yet");
    let old = new_token(&app, &ada, &svc).await;
    let (status, info) = app.get(&path, Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert!(!info.to_string().contains(&old), "GET never shows the token: {info}");
    assert_eq!(info["created_by"], format!("user:{}", ada.user_id));

    // Bob sees no such service.
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let (status, p) = app.call(method.clone(), &path, Some(&bob.token), None).await;
        assert_problem(status, &p, StatusCode::NOT_FOUND);
    }
    let (status, p) = app.get(&format!("/api/services/{svc}/previews"), Some(&bob.token)).await;
    assert_problem(status, &p, StatusCode::NOT_FOUND);

    let new = new_token(&app, &ada, &svc).await;
    assert_ne!(new, old);
    let body = push("main", SHA);
    let bytes = serde_json::to_vec(&body).unwrap();
    let (status, p) = github(&app, &svc, Some(github_signature(&old, &bytes)), "push", "r-1", &body).await;
    assert_problem(status, &p, StatusCode::UNAUTHORIZED);
    let (status, _) = gitlab(&app, &svc, &old, "Push Hook", "r-2", &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    signed(&app, &svc, &new, "push", "r-3", &body).await;

    // Neither token nor its hash is in the audit trail.
    let client = app.db.client().await;
    let trail: Vec<String> = crate::support::column(
        &client,
        "SELECT concat(old_values::text, ' ', new_values::text) FROM devx.audit_logs
          WHERE entity_type = 'devx.service_deploy_tokens'",
        &[],
    )
    .await;
    assert!(trail.len() >= 2, "creating and regenerating are audited: {trail:?}");
    let hash = devx::runtime::hooks::signature::token_hash(&new);
    for row in &trail {
        for secret in [&old, &new, &hash] {
            assert!(!row.contains(secret.as_str()), "the trail shows a secret: {row}");
        }
    }
    assert!(trail.iter().any(|r| r.contains("[redacted]")), "{trail:?}");

    let (status, _) = app.delete(&path, Some(&ada.token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = gitlab(&app, &svc, &new, "Push Hook", "r-4", &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a deleted token opens nothing");
}

#[tokio::test]
async fn pull_requests_open_and_close_previews_within_the_cap() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let admin = app.admin("admin@example.com").await;
    let svc = service(&app, &ada, "shop").await;
    let token = new_token(&app, &ada, &svc).await;
    let previews = format!("/api/services/{svc}/previews");

    let opened = signed(&app, &svc, &token, "pull_request", "p-1", &pull_request("opened", 1, SHA)).await;
    assert_eq!((opened["status"].as_str(), opened["pr_number"].as_i64()), (Some("preview_deployed"), Some(1)));
    let deployment = opened["deployment_id"].as_str().unwrap().to_string();
    let (_, d) = app.get(&format!("/api/deployments/{deployment}"), Some(&ada.token)).await;
    assert_eq!((d["trigger"].as_str(), d["branch"].as_str()), (Some("pull_request"), Some("feature-1")), "{d}");
    let (status, page) = app.get(&previews, Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!((items[0]["status"].as_str(), items[0]["head_sha"].as_str()), (Some("live"), Some(SHA)));
    assert_eq!(items[0]["deployment_id"], deployment.as_str());
    assert_eq!(items[0]["pr_url"], "https://github.com/acme/shop/pull/1");
    assert!(items[0]["url"].is_null(), "not served yet: {page}");
    let url = "https://shop-pr-1.preview.example.com";
    let (status, d) =
        app.patch(&format!("/api/deployments/{deployment}"), Some(&ada.token), json!({"public_url": url})).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let (_, page) = app.get(&previews, Some(&ada.token)).await;
    assert_eq!(page["items"][0]["url"], url, "the deployment's address: {page}");

    // A push to the pull request redeploys the same preview and ends the old deployment.
    let synced = signed(&app, &svc, &token, "pull_request", "p-2", &pull_request("synchronize", 1, SHA2)).await;
    let (_, page) = app.get(&format!("{previews}?status=live"), Some(&ada.token)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["head_sha"], SHA2);
    assert_eq!(page["items"][0]["deployment_id"], synced["deployment_id"]);
    let (_, old) = app.get(&format!("/api/deployments/{deployment}"), Some(&ada.token)).await;
    assert_eq!(old["status"], "cancelled", "{old}");

    // Closed: the preview is closed and its deployment ended.
    let closed = signed(&app, &svc, &token, "pull_request", "p-3", &pull_request("closed", 1, SHA2)).await;
    assert_eq!(closed["status"], "preview_closed", "{closed}");
    let (_, page) = app.get(&format!("{previews}?status=live"), Some(&ada.token)).await;
    assert!(page["items"].as_array().unwrap().is_empty(), "{page}");
    let (_, last) =
        app.get(&format!("/api/deployments/{}", synced["deployment_id"].as_str().unwrap()), Some(&ada.token)).await;
    assert_eq!(last["status"], "cancelled", "{last}");

    // The cap: with 2 allowed, a third pull request expires the oldest.
    let (status, body) = app
        .call(
            Method::PUT,
            "/api/admin/config/deploy.previews_per_service",
            Some(&admin.token),
            Some(json!({"value": 2})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    for (n, delivery) in [(10, "c-10"), (11, "c-11"), (12, "c-12")] {
        signed(&app, &svc, &token, "pull_request", delivery, &pull_request("opened", n, SHA)).await;
    }
    let (_, page) = app.get(&format!("{previews}?status=live"), Some(&ada.token)).await;
    let live: Vec<i64> = page["items"].as_array().unwrap().iter().map(|p| p["pr_number"].as_i64().unwrap()).collect();
    assert_eq!(live, [12, 11], "the oldest went first: {page}");
    let (_, page) = app.get(&format!("{previews}?status=expired"), Some(&ada.token)).await;
    assert_eq!(page["items"][0]["pr_number"], 10, "{page}");

    // Closed by hand.
    let (status, _) = app.delete(&format!("{previews}/11"), Some(&ada.token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, p) = app.delete(&format!("{previews}/11"), Some(&ada.token)).await;
    assert_problem(status, &p, StatusCode::NOT_FOUND);
    let (_, page) = app.get(&format!("{previews}?status=live"), Some(&ada.token)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
}

#[tokio::test]
async fn concurrent_pull_requests_never_overshoot_the_cap() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let svc = service(&app, &ada, "shop").await;
    let token = new_token(&app, &ada, &svc).await;
    let bodies: Vec<(String, Value)> = (1..=8).map(|n| (format!("n-{n}"), pull_request("opened", n, SHA))).collect();
    let answers = futures_util::future::join_all(bodies.iter().map(|(delivery, body)| {
        let sig = github_signature(&token, &serde_json::to_vec(body).unwrap());
        github(&app, &svc, Some(sig), "pull_request", delivery, body)
    }))
    .await;
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::ACCEPTED), "{answers:?}");
    let client = app.db.client().await;
    assert_eq!(count(&client, "SELECT count(*) FROM devx.preview_deployments WHERE status = 'live'").await, 5);
    assert_eq!(count(&client, "SELECT count(*) FROM devx.preview_deployments WHERE status = 'expired'").await, 3);
}

#[tokio::test]
async fn retention_expires_previews_past_their_time_and_prunes_old_deliveries() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let svc = service(&app, &ada, "shop").await;
    let token = new_token(&app, &ada, &svc).await;
    signed(&app, &svc, &token, "pull_request", "e-1", &pull_request("opened", 1, SHA)).await;
    signed(&app, &svc, &token, "pull_request", "e-2", &pull_request("opened", 2, SHA)).await;
    let client = app.db.client().await;
    client
        .execute("UPDATE devx.preview_deployments SET expires_at = now() - interval '1 hour' WHERE pr_number = 1", &[])
        .await
        .unwrap();
    // A delivery received 31 days ago (the table is append-only: written so).
    client
        .execute(
            "INSERT INTO devx.webhook_deliveries (service_id, provider, delivery_id, event, received_at, status, answer)
             VALUES ($1::text::uuid, 'github', 'old', 'ping', now() - interval '31 days', 'ignored', '{}')",
            &[&svc],
        )
        .await
        .unwrap();

    let pool = crate::app::pool(&app.db).await;
    let report = devx::retention::run(&pool, &devx::retention::RunOptions::default()).await.unwrap();
    assert!(!report.failed(), "{report:?}");
    assert_eq!(report.table("webhook_deliveries").unwrap().rows, 1, "{report:?}");
    let statuses: Vec<String> =
        crate::support::column(&client, "SELECT status FROM devx.preview_deployments ORDER BY pr_number", &[]).await;
    assert_eq!(statuses, ["expired", "live"]);
    // An expired preview's deployment ends as a closed one's does; the live one's runs on.
    let ended: Vec<String> = crate::support::column(
        &client,
        "SELECT d.status FROM devx.preview_deployments v JOIN devx.deployments d ON d.id = v.deployment_id
          ORDER BY v.pr_number",
        &[],
    )
    .await;
    assert!(matches!(ended[0].as_str(), "cancelled" | "stopped"), "the expired preview's deployment ended: {ended:?}");
    assert!(!matches!(ended[1].as_str(), "cancelled" | "stopped"), "the live one's did not: {ended:?}");
    let kept: Vec<String> =
        crate::support::column(&client, "SELECT delivery_id FROM devx.webhook_deliveries ORDER BY delivery_id", &[])
            .await;
    assert_eq!(kept, ["e-1", "e-2"]);
}

#[tokio::test]
async fn a_preview_snapshot_has_the_preview_overrides_and_a_push_snapshot_does_not() {
    let app = spawn_with_key().await;
    let ada = app.register("ada@example.com").await;
    let svc = service(&app, &ada, "shop").await;
    let token = new_token(&app, &ada, &svc).await;
    for (body, preview) in [(json!({"value": "prod"}), false), (json!({"value": "pr"}), true)] {
        let path = format!("/api/services/{svc}/env/MODE?preview={preview}");
        let (status, v) = app.call(Method::PUT, &path, Some(&ada.token), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let mode = |d: &Value| d["snapshot"]["env"]["MODE"]["value"].clone();
    let pushed = signed(&app, &svc, &token, "push", "s-1", &push("main", SHA)).await;
    let id = pushed["deployment_id"].as_str().unwrap().to_string();
    let (_, d) = app.get(&format!("/api/deployments/{id}"), Some(&ada.token)).await;
    assert_eq!((mode(&d), d["snapshot"]["source"]["branch"].clone()), (json!("prod"), json!("main")), "{d}");
    let opened = signed(&app, &svc, &token, "pull_request", "s-2", &pull_request("opened", 7, SHA)).await;
    let id = opened["deployment_id"].as_str().unwrap().to_string();
    let (_, d) = app.get(&format!("/api/deployments/{id}"), Some(&ada.token)).await;
    assert_eq!(mode(&d), json!("pr"), "{d}");
    let change = d["snapshot_diff"].as_array().unwrap().iter().find(|c| c["path"] == "env.MODE.value").cloned();
    assert_eq!(change.map(|c| c["after"].clone()), Some(json!("pr")), "{d}");
}
