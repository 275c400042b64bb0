//! The activity log over real HTTP: each event written by the code path
//! that does it (sign-in, sign-out, failed sign-in, lockout, first use of an
//! API key, generation started), read by admins with filters and pages,
//! append-only, and pruned by retention with a summary audit row.

use devx::retention::{self, RunOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::{TestApp, assert_problem};
use crate::support::{all_pages, count};

/// The `action` of each entry, oldest first.
fn actions(items: &[Value]) -> Vec<String> {
    items.iter().rev().map(|e| e["action"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn each_event_is_written_by_its_code_path_and_admins_read_them() {
    let app = TestApp::spawn_with(|c| c.http.login_max_failures = 2).await;
    let admin = app.admin("root@example.com").await;
    let ada = app.register("ada@example.com").await;
    let login = |email: &'static str, password: &'static str| {
        app.post("/api/auth/login", None, json!({"email": email, "password": password}))
    };

    // A failed sign-in is refused and still recorded, for a known account
    // with its id, for an unknown email without one.
    let (status, body) = login("ada@example.com", "wrong password!").await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let (status, _) = login("nobody@example.com", "wrong password!").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The second failure for ada locks her account: a lockout event.
    let (status, _) = login("ada@example.com", "wrong password!").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = login("ada@example.com", "correct horse battery").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    app.db.client().await.execute("DELETE FROM devx.sign_in_throttle", &[]).await.unwrap();

    let (status, signed_in) = login("ada@example.com", "correct horse battery").await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    let token = signed_in["token"].as_str().unwrap();
    let (status, _) = app.post("/api/auth/logout", Some(token), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // An API key's first use is written once, however often it is used.
    let (status, key) = app.post("/api/api-keys", Some(&ada.token), json!({"name": "ci", "scopes": ["write"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key = key["key"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(app.get("/api/auth/me", Some(key)).await.0, StatusCode::OK);
    }
    let (status, generation) =
        app.post("/api/generations", Some(key), json!({"generation_type": "service", "status": "running"})).await;
    assert_eq!(status, StatusCode::CREATED, "{generation}");

    let mine = all_pages(&app, &admin.token, &format!("/api/admin/activity-logs?user_id={}", ada.user_id)).await;
    assert_eq!(
        actions(&mine),
        [
            "sign_in",
            "sign_in_failed",
            "sign_in_failed",
            "lockout",
            "sign_in",
            "sign_out",
            "api_key_first_use",
            "generation_started"
        ],
        "{mine:#?}"
    );
    let by_action = |action: &str| mine.iter().find(|e| e["action"] == action).unwrap().clone();
    assert_eq!(by_action("sign_in")["details"]["via"], "password");
    assert_eq!(by_action("sign_in")["ip_address"], "127.0.0.1");
    assert!(by_action("sign_in")["details"]["session_id"].is_string());
    assert_eq!(by_action("sign_in_failed")["details"]["email"], "ada@example.com");
    assert_eq!(by_action("lockout")["details"]["key"], "account:ada@example.com");
    assert!(by_action("lockout")["details"]["locked_until"].is_string());
    let first_use = by_action("api_key_first_use");
    assert!(first_use["actor"].as_str().unwrap().contains(" apikey:"), "{first_use}");
    assert_eq!(first_use["details"]["request"], "GET /api/auth/me");
    let started = by_action("generation_started");
    assert_eq!(started["details"]["generation_id"], generation["id"]);
    assert_eq!(started["details"]["generation_type"], "service");

    // The unknown email's failure belongs to no account.
    let failed = all_pages(&app, &admin.token, "/api/admin/activity-logs?action=sign_in_failed").await;
    assert_eq!(failed.len(), 3);
    let anonymous: Vec<&Value> = failed.iter().filter(|e| e["user_id"].is_null()).collect();
    assert_eq!(anonymous.len(), 1);
    assert_eq!(anonymous[0]["actor"], "anonymous");
    assert_eq!(anonymous[0]["details"]["email"], "nobody@example.com");

    // Keyset pages: every entry once, newest first.
    let all = all_pages(&app, &admin.token, "/api/admin/activity-logs").await;
    let walked = all_pages(&app, &admin.token, "/api/admin/activity-logs?limit=3").await;
    assert_eq!(all, walked);
    assert_eq!(all.len(), 1 + 8 + 1, "root's registration, ada's events, the unknown email's failure: {all:#?}");
    let future = all_pages(&app, &admin.token, "/api/admin/activity-logs?since=2999-01-01T00:00:00Z").await;
    assert!(future.is_empty());

    let (status, body) = app.get("/api/admin/activity-logs", Some(&ada.token)).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app.get("/api/admin/activity-logs?action=nonsense", Some(&admin.token)).await;
    assert!(status.is_client_error(), "{status} {body}");
}

#[tokio::test]
async fn the_log_is_append_only_and_retention_prunes_it_with_a_summary() {
    let app = TestApp::spawn().await;
    app.register("ada@example.com").await;
    app.register("bob@example.com").await;
    let client = app.db.client().await;
    let refused = client.execute("UPDATE devx.activity_logs SET actor = 'someone else'", &[]).await.unwrap_err();
    assert!(format!("{refused:?}").contains("append-only"), "{refused:?}");

    client
        .execute(
            "INSERT INTO devx.activity_logs (created_at, actor, action) VALUES (now() - interval '2 years', 'anonymous', 'sign_in_failed')",
            &[],
        )
        .await
        .unwrap();
    let report = retention::run(&app.pool, &RunOptions::default()).await.unwrap();
    assert!(!report.failed(), "{report:?}");
    assert_eq!(report.table("activity_logs").unwrap().rows, 1);
    assert_eq!(count(&client, "SELECT count(*) FROM devx.activity_logs").await, 2, "the young rows stay");
    let summary: Value = client
        .query_one(
            "SELECT new_values FROM devx.audit_logs WHERE entity_type = 'devx.activity_logs' AND actor = 'system:retention'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(summary["rows"], 1);
    assert_eq!(summary["retention"], "activity_logs");
}
