//! The HTTP contract every route keeps: problem+json errors, bad input
//! refused without changes, request ids, the OpenAPI document matching the
//! routes, health and readiness, database faults, graceful shutdown.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};
use crate::outage;
use crate::support::{count, lock_user_row, lock_waiters};

async fn user_count(app: &TestApp) -> i64 {
    count(&app.db.client().await, "SELECT count(*) FROM devx.users").await
}

#[tokio::test]
async fn bad_input_gets_the_documented_answer_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let kim = app.register("kim@example.com").await;
    let before = user_count(&app).await;

    // Malformed JSON: 400.
    let resp = app
        .request(Method::POST, "/api/auth/register", None)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");

    // Not JSON at all: 415.
    let resp = app.request(Method::POST, "/api/auth/register", None).body("email=a").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // 2 MiB body: 413.
    let huge = json!({"email": "big@example.com", "password": "x".repeat(2 * 1024 * 1024)});
    let (status, body) = app.post("/api/auth/register", None, huge).await;
    assert_problem(status, &body, StatusCode::PAYLOAD_TOO_LARGE);

    // Unknown fields and wrong types: 422 naming the field.
    let (status, body) = app.patch("/api/auth/me", Some(&kim.token), json!({"email": "steal@example.com"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "email");
    let (status, body) = app.patch("/api/auth/me", Some(&kim.token), json!({"name": 42})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);

    // NUL bytes: 422.
    let (status, body) = app.patch("/api/auth/me", Some(&kim.token), json!({"name": "a\u{0}"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);

    // Limits out of range and non-UUID ids: 400.
    let (status, body) = app.get("/api/api-keys?limit=1000000", Some(&kim.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("1 to 200"));
    let (status, body) = app.get("/api/api-keys?limit=0", Some(&kim.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app.delete("/api/api-keys/not-a-uuid", Some(&kim.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("UUID"));

    assert_eq!(user_count(&app).await, before);
    let (_, me) = app.get("/api/auth/me", Some(&kim.token)).await;
    assert_eq!(me["name"], "Test", "nothing changed");
    assert_eq!(me["email"], "kim@example.com");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_and_requests_have_ids() {
    let app = TestApp::spawn().await;
    let resp = app.http.get(app.url("/api/nothing-here")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID request id: {id}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "/problems/no-route");

    let resp = app.http.delete(app.url("/api/templates")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

    let resp = app.http.get(app.url("/livez")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123", "a caller's id is kept");
}

#[tokio::test]
async fn every_documented_route_exists() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{} paths", paths.len());
    for (path, ops) in paths {
        // Fill path parameters with a well-formed value.
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "7f1c0c6e-2f4e-4a8b-9a51-1c7b1d2e3f40" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in ops.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = app.request(m.clone(), &concrete, None).send().await.unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not routed");
            assert_ne!(body["type"], "/problems/no-route", "{method} {path} is documented but not routed");
            assert!(doc["paths"][path][method]["responses"].is_object(), "{method} {path} documents its responses");
        }
    }
    for expected in [
        "/health",
        "/api/auth/login",
        "/api/templates",
        "/api/templates/categories",
        "/api/database/status",
        "/api/database/migrations",
    ] {
        assert!(paths.contains_key(expected), "{expected} is documented");
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let (status, health) = app.get("/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"]["connected"], true);
    let ms = health["database"]["latency_ms"].as_f64().unwrap();
    assert!(ms > 0.0 && ((ms * 1000.0).round() - ms * 1000.0).abs() < 1e-6, "milliseconds to the microsecond: {ms}");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(app.get("/livez", None).await.0, StatusCode::OK);
    let (status, ready) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");

    let admin = app.admin("ops@example.com").await;
    let user = app.register("dev@example.com").await;
    let (status, body) = app.get("/api/database/status", Some(&user.token)).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, st) = app.get("/api/database/status", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{st}");
    assert!(st["server"]["version"].as_str().unwrap().starts_with(char::is_numeric));
    assert_eq!(st["migrations"]["pending"], 0);
    assert!(st["migrations"]["applied"].as_u64().unwrap() > 0);
    assert!(st["queries"]["total"].as_u64().unwrap() > 0, "the instrumented layer counts: {st}");
    assert!(st["pool"]["max_size"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn migration_history_shows_every_migration_and_what_is_wrong() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ops@example.com").await;
    let user = app.register("dev@example.com").await;
    let (status, body) = app.get("/api/database/migrations", None).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.get("/api/database/migrations", Some(&user.token)).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);

    let set = devx::migrate::MigrationSet::embedded().unwrap();
    let (status, report) = app.get("/api/database/migrations", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["up_to_date"], true);
    assert_eq!((report["applied"].as_u64(), report["pending"].as_u64()), (Some(set.len() as u64), Some(0)));
    let rows = report["migrations"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, set.ids().collect::<Vec<_>>(), "every migration of the binary, in id order");
    for m in rows {
        assert_eq!(m["state"], "applied", "{m}");
        assert!(m["applied_at"].is_string() && m["applied_by"].is_string(), "when and who: {m}");
        assert!(m["execution_ms"].is_i64() && m["stamped"] == false, "how long: {m}");
        assert!(m["problem"].is_null());
    }
    let concurrent = set.migrations().iter().find(|m| m.no_transaction).expect("a no-transaction migration");
    assert!(rows.iter().any(|m| m["id"] == concurrent.id.as_str() && m["no_transaction"] == true));

    // The ledger disagrees with the binary in all three ways.
    let (first, last) = (set.migrations().first().unwrap(), set.migrations().last().unwrap());
    let ledger = app.db.client().await;
    ledger
        .batch_execute(&format!(
            "UPDATE devx_meta.schema_migrations SET checksum = 'edited' WHERE id = '{}';
             DELETE FROM devx_meta.schema_migrations WHERE id = '{}';
             INSERT INTO devx_meta.schema_migrations (id, name, checksum, up_sql)
                  VALUES ('29991231000000', 'from_the_future', 'x', 'SELECT 1');",
            first.id, last.id
        ))
        .await
        .unwrap();
    let (status, report) = app.get("/api/database/migrations", Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["up_to_date"], false);
    assert_eq!(report["pending"], 1);
    let rows = report["migrations"].as_array().unwrap();
    let row = |id: &str| rows.iter().find(|m| m["id"] == id).unwrap_or_else(|| panic!("{id} in {report}"));
    assert_eq!(row(&first.id)["state"], "modified");
    assert!(row(&first.id)["problem"].as_str().unwrap().contains("was modified after it was applied"));
    assert_eq!(row(&last.id)["state"], "pending");
    assert!(row(&last.id)["applied_at"].is_null() && row(&last.id)["execution_ms"].is_null());
    let future = rows.last().unwrap();
    assert_eq!((future["id"].as_str(), future["state"].as_str()), (Some("29991231000000"), Some("unknown")));
    assert!(future["problem"].as_str().unwrap().contains("newer than this devx"));
    assert!(future["stamped"] == true, "no execution time was recorded: {future}");
}

#[tokio::test]
async fn a_dead_database_answers_503_at_once_and_recovery_needs_no_restart() {
    let app = TestApp::spawn_private("devx-outage-", |_| {}).await;
    let lee = app.register("lee@example.com").await;

    outage::take_database_down(&app).await;
    let probe = async {
        let (status, health) = app.get("/health", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(health["database"]["connected"], false);
        assert_eq!(app.get("/readyz", None).await.0, StatusCode::SERVICE_UNAVAILABLE);
        let resp = app.request(Method::GET, "/api/auth/me", Some(&lee.token)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().contains_key("retry-after"));
        let body: Value = resp.json().await.unwrap();
        assert!(!body["detail"].as_str().unwrap().contains("ALLOW_CONNECTIONS"), "no internals leak: {body}");
    };
    // Never hangs: bounded well above the connect timeout.
    tokio::time::timeout(Duration::from_secs(20), probe).await.expect("answers while the database is down");

    outage::bring_database_back(&app).await;
    // The breaker may still be open for its cool-down; recovery follows without a restart.
    let mut recovered = false;
    for _ in 0..100 {
        if app.get("/api/auth/me", Some(&lee.token)).await.0 == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "devx reconnects by itself");
}

#[tokio::test]
async fn killed_connections_are_survived() {
    let app = TestApp::spawn_private("devx-kill-", |_| {}).await;
    let max = app.register("max@example.com").await;
    assert_eq!(app.get("/api/auth/me", Some(&max.token)).await.0, StatusCode::OK);
    let killed = outage::kill_connections(&app).await;
    assert!(killed > 0);
    for _ in 0..3 {
        let (status, body) = app.get("/api/templates?limit=1", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(app.get("/api/auth/me", Some(&max.token)).await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn slow_requests_time_out_with_a_problem() {
    let app = TestApp::spawn_with(|c| c.http.request_timeout = Duration::from_millis(500)).await;
    let ned = app.register("ned@example.com").await;
    let blocker = lock_user_row(&app, &ned.user_id).await;
    let (status, body) = app.patch("/api/auth/me", Some(&ned.token), json!({"name": "Blocked"})).await;
    assert_problem(status, &body, StatusCode::GATEWAY_TIMEOUT);
    blocker.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut app = TestApp::spawn().await;
    let oli = app.register("oli@example.com").await;
    let blocker = lock_user_row(&app, &oli.user_id).await;

    let request =
        app.request(Method::PATCH, "/api/auth/me", Some(&oli.token)).json(&json!({"name": "Finished"})).send();
    let in_flight = tokio::spawn(request);
    // Wait until the PATCH is blocked on the row lock inside the server.
    for _ in 0..100 {
        if lock_waiters(app.db.name()).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.begin_shutdown();
    // New connections are refused once shutdown starts.
    let mut refused = false;
    for _ in 0..50 {
        if reqwest::Client::new().get(app.url("/livez")).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "no new connections after shutdown begins");
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let resp = in_flight.await.unwrap().expect("the in-flight request gets its answer");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["name"], "Finished");
}

/// RFC 6750: a 401 names the Bearer scheme, and says `invalid_token` when a
/// token was sent but is not valid.
#[tokio::test]
async fn unauthorized_answers_carry_www_authenticate() {
    let app = TestApp::spawn().await;
    let none = app.request(reqwest::Method::GET, "/api/auth/me", None).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let bad = app.request(reqwest::Method::GET, "/api/auth/me", Some("not-a-real-token")).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bad.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
}

/// CORS only for the configured origins, with preflights that allow the
/// headers clients send and expose the ones they read.
#[tokio::test]
async fn cors_answers_configured_origins_only() {
    let plain = TestApp::spawn().await;
    let response = plain
        .request(reqwest::Method::GET, "/api/templates?limit=1", None)
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none(), "unset: no CORS headers");

    let app = TestApp::spawn_with(|c| c.http.cors_origins = vec!["https://app.example.com".into()]).await;
    let preflight = app
        .request(reqwest::Method::OPTIONS, "/api/projects", None)
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type, idempotency-key, if-match")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    let allowed = h["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    for name in ["authorization", "content-type", "idempotency-key", "if-match"] {
        assert!(allowed.contains(name), "{name} in {allowed}");
    }
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("PATCH"));

    let response = app
        .request(reqwest::Method::GET, "/api/templates?limit=1", None)
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example.com");
    let exposed = response.headers()["access-control-expose-headers"].to_str().unwrap().to_lowercase();
    for name in ["x-request-id", "etag", "location", "retry-after"] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
    let other = app
        .request(reqwest::Method::GET, "/api/templates?limit=1", None)
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
