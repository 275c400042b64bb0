//! One rule for who sees a row, checked on every list route the OpenAPI
//! document has: a user sees only their own rows, an admin sees everyone's.
//! A new list route joins the sweep by itself; one that shows no row of
//! the other user to the admin fails it until data for it is seeded here or
//! it is listed as global with its reason.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::{Session, TestApp};
use crate::support::{id, project};

/// List routes that are not about rows someone owns.
const NOT_OWNED: &[(&str, &str)] = &[
    ("/api/templates", "the catalog is shared"),
    ("/api/api-keys", "the caller's own credentials, by definition"),
    ("/api/auth/sessions", "the caller's own sessions, by definition"),
];

/// Admin routes have no per-user view to check.
const ADMIN_ONLY: &str = "/api/admin/";

/// One of everything a user can own, made through the API; the ids made.
async fn seed(app: &TestApp, who: &Session, tag: &str) -> BTreeSet<String> {
    let t = Some(who.token.as_str());
    let mut made = BTreeSet::new();
    let p = project(app, who, &format!("p-{tag}")).await;
    made.insert(p.clone());
    let post = async |path: String, body: Value| {
        let (status, v) = app.post(&path, t, body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {v}");
        id(&v)
    };
    made.insert(post("/api/tasks".into(), json!({"project_id": p, "title": "t"})).await);
    made.insert(post("/api/errors".into(), json!({"error_type": "api", "message": "m"})).await);
    made.insert(post("/api/pr-validations".into(), json!({"repository": format!("o/{tag}"), "pr_number": 1})).await);
    made.insert(post("/api/generations".into(), json!({"generation_type": "service", "project_id": p})).await);
    made.insert(
        post(format!("/api/projects/{p}/containers"), json!({"container_id": format!("rt-{tag}"), "name": "c"})).await,
    );
    made.insert(post(format!("/api/projects/{p}/deployments"), json!({})).await);
    made
}

/// Top-level GET routes whose 200 answer is a page (`items`, `next_cursor`).
fn page_routes(doc: &Value) -> Vec<String> {
    let mut routes = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let Some(get) = ops.get("get") else { continue };
        if path.contains('{') {
            continue;
        }
        let schema = get["responses"]["200"]["content"]["application/json"]["schema"].to_string();
        if schema.contains("Page") || schema.contains("next_cursor") {
            routes.push(path.clone());
        }
    }
    routes
}

fn item_ids(page: &Value) -> BTreeSet<String> {
    page["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["id"].as_str()).map(String::from).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_list_shows_a_user_their_own_rows_and_an_admin_everyones() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann@example.com").await;
    let bob = app.register("bob@example.com").await;
    let admin = app.admin("root@example.com").await;
    let anns = seed(&app, &ann, "ann").await;
    let bobs = seed(&app, &bob, "bob").await;
    let (_, doc) = app.get("/api/openapi.json", None).await;
    let routes = page_routes(&doc);
    assert!(routes.len() >= 7, "the sweep finds the list routes: {routes:?}");
    let mut swept = Vec::new();
    for route in routes {
        if route.starts_with(ADMIN_ONLY) || NOT_OWNED.iter().any(|(r, _)| *r == route) {
            continue;
        }
        let url = format!("{route}?limit=200");
        let (status, mine) = app.get(&url, Some(&ann.token)).await;
        assert_eq!(status, StatusCode::OK, "{route}: {mine}");
        let mine = item_ids(&mine);
        assert!(
            mine.is_disjoint(&bobs),
            "{route}: ann sees bob's rows {:?}",
            mine.intersection(&bobs).collect::<Vec<_>>()
        );
        assert!(!mine.is_disjoint(&anns), "{route}: ann sees none of her own rows (seed data for this route here)");
        let (status, all) = app.get(&url, Some(&admin.token)).await;
        assert_eq!(status, StatusCode::OK, "{route}: {all}");
        let all = item_ids(&all);
        assert!(
            !all.is_disjoint(&anns) && !all.is_disjoint(&bobs),
            "{route}: the admin must see both users' rows (or list the route in NOT_OWNED with its reason)"
        );
        swept.push(route);
    }
    assert!(swept.len() >= 7, "swept {swept:?}");
}

/// Someone else's `{id}` is a 404 on every GET route with one id, whatever
/// kind of row the id names; the admin reaches each seeded kind.
#[tokio::test]
async fn another_users_id_is_a_404_everywhere_and_the_admin_reaches_it() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann@example.com").await;
    let bob = app.register("bob@example.com").await;
    let admin = app.admin("root@example.com").await;
    seed(&app, &ann, "ann").await;
    let bobs = seed(&app, &bob, "bob").await;
    let (_, doc) = app.get("/api/openapi.json", None).await;
    let seeded = ["projects", "tasks", "errors", "pr-validations", "generations", "containers", "deployments"];
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if ops.get("get").is_none() || path.matches('{').count() != 1 || !path.contains("{id}") {
            continue;
        }
        let mut admin_reached = false;
        for bobs_id in &bobs {
            let url = format!("{}?limit=1", path.replace("{id}", bobs_id));
            let (status, body) = app.get(&url, Some(&ann.token)).await;
            assert!(
                status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
                "{path} with bob's id {bobs_id}: ann got {status} {body}"
            );
            admin_reached |= app.get(&url, Some(&admin.token)).await.0 == StatusCode::OK;
        }
        let kind = path.trim_start_matches("/api/").split('/').next().unwrap();
        if seeded.contains(&kind) && *path == format!("/api/{kind}/{{id}}") {
            assert!(admin_reached, "{path}: the admin reaches none of bob's rows");
        }
        checked += 1;
    }
    assert!(checked >= 10, "{checked} id routes checked");
}

/// Every write on an `{id}` route (POST, PUT, PATCH, DELETE), sent with
/// another user's id, answers exactly what it answers for an id that does
/// not exist, never a success, and changes none of that user's rows.
#[tokio::test]
async fn another_users_id_cannot_be_changed_and_looks_missing_on_every_write() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann@example.com").await;
    let bob = app.register("bob@example.com").await;
    seed(&app, &ann, "ann").await;
    let bobs = seed(&app, &bob, "bob").await;
    let (_, doc) = app.get("/api/openapi.json", None).await;
    let snapshot = async || {
        let mut rows = Vec::new();
        for path in page_routes(&doc).into_iter().filter(|p| !p.starts_with(ADMIN_ONLY)) {
            rows.push(crate::support::all_pages(&app, &bob.token, &path).await);
        }
        rows
    };
    let before = snapshot().await;
    let missing = uuid::Uuid::new_v4().to_string();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.contains("{id}") || path.starts_with("/api/admin/") {
            continue;
        }
        for method in ["post", "put", "patch", "delete"] {
            if ops.get(method).is_none() {
                continue;
            }
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method != reqwest::Method::DELETE).then(|| json!({}));
            let url = |id: &str| path.replace("{id}", id).replace("{name}", "build");
            let (for_missing, _) = app.call(method.clone(), &url(&missing), Some(&ann.token), body.clone()).await;
            for bobs_id in &bobs {
                let (status, answer) = app.call(method.clone(), &url(bobs_id), Some(&ann.token), body.clone()).await;
                assert!(!status.is_success(), "{method} {path} with bob's id {bobs_id}: ann got {status} {answer}");
                assert_eq!(
                    status, for_missing,
                    "{method} {path}: bob's id {bobs_id} must look like a missing one ({answer})"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} writes checked");
    assert_eq!(snapshot().await, before, "bob's rows are unchanged");
}
