//! Accounts over real HTTP: registration, sign-in, sessions, API keys and
//! their scopes, user administration, rate limiting and the audit actor.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::app::{TestApp, assert_problem};
use crate::support::{column, count, fields};

#[tokio::test]
async fn register_login_me_logout() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;

    let (status, me) = app.get("/api/auth/me", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["role"], "user");
    assert!(me.get("password_hash").is_none(), "the hash never leaves the server");

    let (status, login) = app
        .post("/api/auth/login", None, json!({"email": "ADA@example.com", "password": "correct horse battery"}))
        .await;
    assert_eq!(status, StatusCode::OK, "email matches without case: {login}");
    let token = login["token"].as_str().unwrap();
    assert_ne!(token, ada.token);

    let (status, _) = app.post("/api/auth/logout", Some(token), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/api/auth/me", Some(token)).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/api/auth/me", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "other sessions live on");

    // Only the hash of the token is stored.
    let client = app.db.client().await;
    let stored: i64 = client
        .query_one("SELECT count(*) FROM devx.sessions WHERE token_hash = sha256($1::text::bytea)", &[&ada.token])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
    let plain: i64 = client
        .query_one(
            "SELECT count(*) FROM devx.sessions WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'",
            &[&ada.token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(plain, 0);
}

#[tokio::test]
async fn registration_errors_change_nothing() {
    let app = TestApp::spawn().await;
    app.register("taken@example.com").await;

    let (status, body) = app
        .post("/api/auth/register", None, json!({"email": "Taken@Example.com", "password": "another password"}))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert_eq!(body["errors"][0]["field"], "email");

    let (status, body) = app.post("/api/auth/register", None, json!({"email": "nope", "password": "short"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["email", "password"], "every problem reported at once");

    let (status, body) = app
        .post("/api/auth/register", None, json!({"email": "x@example.com", "password": "long enough", "role": "admin"}))
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "role", "no mass assignment: {body}");

    let (status, body) = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": "nul@example.com", "password": "long enough", "name": "a\u{0}b"}),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);

    let count: i64 = app.db.client().await.query_one("SELECT count(*) FROM devx.users", &[]).await.unwrap().get(0);
    assert_eq!(count, 1, "only the first registration exists");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same_and_get_rate_limited() {
    let app = TestApp::spawn_with(|c| c.http.login_max_failures = 3).await;
    app.register("bob@example.com").await;

    let (s1, wrong) =
        app.post("/api/auth/login", None, json!({"email": "bob@example.com", "password": "wrong password"})).await;
    let (s2, unknown) =
        app.post("/api/auth/login", None, json!({"email": "who@example.com", "password": "wrong password"})).await;
    assert_problem(s1, &wrong, StatusCode::UNAUTHORIZED);
    assert_problem(s2, &unknown, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong["detail"], unknown["detail"]);
    // An email no account can have is the same answer, and no attempt.
    for email in ["", "   ", &format!("{}@example.com", "a".repeat(250))] {
        let (status, body) = app.post("/api/auth/login", None, json!({"email": email, "password": "wrong"})).await;
        assert_problem(status, &body, StatusCode::UNAUTHORIZED);
        assert_eq!(body["detail"], wrong["detail"]);
    }

    app.post("/api/auth/login", None, json!({"email": "bob@example.com", "password": "wrong again"})).await;
    app.post("/api/auth/login", None, json!({"email": "bob@example.com", "password": "wrong again"})).await;
    let resp = app
        .request(Method::POST, "/api/auth/login", None)
        .json(&json!({"email": "bob@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits out the lockout");
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
}

#[tokio::test]
async fn profile_and_password_change_revokes_other_sessions() {
    let app = TestApp::spawn().await;
    let s1 = app.register("cy@example.com").await;
    let (_, s2) = app
        .post("/api/auth/login", None, json!({"email": "cy@example.com", "password": "correct horse battery"}))
        .await;
    let s2 = s2["token"].as_str().unwrap().to_string();

    let (status, body) =
        app.patch("/api/auth/me", Some(&s1.token), json!({"name": "Cy", "avatar_url": "ftp://x"})).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app.patch("/api/auth/me", Some(&s1.token), json!({"name": "Cy", "avatar_url": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Cy");

    // A wrong current password: the session is fine, the proof is not.
    let (status, body) = app
        .patch("/api/auth/me", Some(&s1.token), json!({"password": {"current": "not it", "new": "brand new password"}}))
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    assert!(body["detail"].as_str().unwrap().contains("password.current"), "{body}");

    let (status, _) = app
        .patch(
            "/api/auth/me",
            Some(&s1.token),
            json!({"password": {"current": "correct horse battery", "new": "brand new password"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.get("/api/auth/me", Some(&s1.token)).await.0, StatusCode::OK, "the session that changed it stays");
    assert_eq!(app.get("/api/auth/me", Some(&s2)).await.0, StatusCode::UNAUTHORIZED, "others are revoked");
    let (status, _) =
        app.post("/api/auth/login", None, json!({"email": "cy@example.com", "password": "brand new password"})).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn closing_an_account_revokes_everything() {
    let app = TestApp::spawn().await;
    let dee = app.register("dee@example.com").await;
    let (_, key) = app.post("/api/api-keys", Some(&dee.token), json!({"name": "k", "scopes": ["read"]})).await;
    let key = key["key"].as_str().unwrap().to_string();

    let (status, _) = app.delete("/api/auth/me", Some(&dee.token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/auth/me", Some(&dee.token)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/auth/me", Some(&key)).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post("/api/auth/login", None, json!({"email": "dee@example.com", "password": "correct horse battery"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let row =
        app.db.client().await.query_one("SELECT is_active, deleted_at IS NOT NULL FROM devx.users", &[]).await.unwrap();
    assert!(!row.get::<_, bool>(0) && row.get::<_, bool>(1), "kept for retention, marked closed");
}

#[tokio::test]
async fn api_keys_are_shown_once_scoped_and_private() {
    let app = TestApp::spawn().await;
    let eve = app.register("eve@example.com").await;
    let fay = app.register("fay@example.com").await;

    let (status, created) =
        app.post("/api/api-keys", Some(&eve.token), json!({"name": "ci", "scopes": ["read"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("devx_") && key.starts_with(created["prefix"].as_str().unwrap()));

    let (status, list) = app.get("/api/api-keys", Some(&eve.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["items"][0].get("key").is_none(), "the key is never shown again");

    // A read key reads, cannot write, cannot mint stronger keys.
    assert_eq!(app.get("/api/auth/me", Some(&key)).await.0, StatusCode::OK);
    let (status, body) = app.patch("/api/auth/me", Some(&key), json!({"name": "x"})).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, body) =
        app.post("/api/api-keys", Some(&eve.token), json!({"name": "root", "scopes": ["admin"]})).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    // A key that would be born expired: the clock has moved past it.
    let (status, body) = app
        .post("/api/api-keys", Some(&eve.token), json!({"name": "late", "expires_at": "2001-01-01T00:00:00Z"}))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    assert_eq!(fields(&body), ["expires_at"]);

    let last_used: Option<chrono::DateTime<chrono::Utc>> =
        app.db.client().await.query_one("SELECT last_used_at FROM devx.api_keys", &[]).await.unwrap().get(0);
    assert!(last_used.is_some(), "use is tracked");

    // Another user cannot see or revoke it: 404, like a missing id.
    let id = created["id"].as_str().unwrap();
    let (status, body) = app.delete(&format!("/api/api-keys/{id}"), Some(&fay.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/api-keys", Some(&fay.token)).await.1["items"].as_array().unwrap().len(), 0);

    let (status, _) = app.delete(&format!("/api/api-keys/{id}"), Some(&eve.token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/auth/me", Some(&key)).await.0, StatusCode::UNAUTHORIZED, "revoked");
    // Revoked is deleted, as far as the API goes: gone from the key's URL,
    // the list and a second DELETE.
    let (status, body) = app.get(&format!("/api/api-keys/{id}"), Some(&eve.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/api-keys", Some(&eve.token)).await.1["items"].as_array().unwrap().len(), 0);
    let (status, body) = app.delete(&format!("/api/api-keys/{id}"), Some(&eve.token)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn expired_keys_and_sessions_are_refused() {
    let app = TestApp::spawn().await;
    let gus = app.register("gus@example.com").await;
    let (_, created) = app.post("/api/api-keys", Some(&gus.token), json!({"name": "soon", "scopes": ["write"]})).await;
    let key = created["key"].as_str().unwrap();
    let client = app.db.client().await;
    client.execute("UPDATE devx.api_keys SET expires_at = now() - interval '1 second'", &[]).await.unwrap();
    let (status, body) = app.get("/api/auth/me", Some(key)).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("expired"));

    client.execute("UPDATE devx.sessions SET expires_at = now() - interval '1 second'", &[]).await.unwrap();
    assert_eq!(app.get("/api/auth/me", Some(&gus.token)).await.0, StatusCode::UNAUTHORIZED);

    let (status, body) = app.post("/api/api-keys", None, json!({"name": "x"})).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/api/auth/me", Some("devx_not-a-real-key")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn idle_sessions_expire() {
    let app = TestApp::spawn().await;
    let hal = app.register("hal@example.com").await;
    app.db
        .client()
        .await
        .execute("UPDATE devx.sessions SET last_activity = now() - interval '30 days'", &[])
        .await
        .unwrap();
    let (status, body) = app.get("/api/auth/me", Some(&hal.token)).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("inactivity"));
}

/// A credential's last use is written off the request path: the request
/// that notes it does not write, the flusher writes every noted session and
/// key within about a second (and shutting down writes what is left).
#[tokio::test]
async fn last_use_is_written_in_batches_off_the_request_path() {
    let app = TestApp::spawn().await;
    let kim = app.register("kim@example.com").await;
    let lee = app.register("lee@example.com").await;
    let (_, created) = app.post("/api/api-keys", Some(&kim.token), json!({"name": "ci", "scopes": ["read"]})).await;
    let key = created["key"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/auth/me", Some(&key)).await.0, StatusCode::OK, "first use, written at once");
    let client = app.db.client().await;
    let stale = "UPDATE devx.sessions SET last_activity = now() - interval '5 minutes'; \
                 UPDATE devx.api_keys SET last_used_at = now() - interval '5 minutes'";
    client.batch_execute(stale).await.unwrap();
    let recent = "SELECT (SELECT count(*) FROM devx.sessions WHERE last_activity > now() - interval '1 minute') \
                + (SELECT count(*) FROM devx.api_keys WHERE last_used_at > now() - interval '1 minute')";

    // While another transaction holds every session and key row, requests
    // still answer: they only note the credential (a write would wait).
    let mut locker = app.db.client().await;
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("SELECT 1 FROM devx.sessions FOR UPDATE; SELECT 1 FROM devx.api_keys FOR UPDATE").await.unwrap();
    for token in [&kim.token, &lee.token, &key] {
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), app.get("/api/auth/me", Some(token)))
            .await
            .expect("the request does not wait for the bookkeeping write");
        assert_eq!(answer.0, StatusCode::OK);
    }
    lock.rollback().await.unwrap();
    // Written by the flusher, not by the requests: wait for it (a deadline,
    // not a fixed sleep).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(&client, recent).await < 3 {
        assert!(std::time::Instant::now() < deadline, "the flusher wrote all three within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn admins_manage_users_and_others_cannot() {
    let app = TestApp::spawn().await;
    let root = app.admin("root@example.com").await;
    let ivy = app.register("ivy@example.com").await;

    let (status, body) = app.get("/api/admin/users", Some(&ivy.token)).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);

    let (status, page) = app.get("/api/admin/users?limit=1", Some(&root.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page2) = app.get(&format!("/api/admin/users?limit=1&cursor={cursor}"), Some(&root.token)).await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_ne!(page["items"][0]["id"], page2["items"][0]["id"]);
    assert!(page2["next_cursor"].is_null());

    let (_, only_admins) = app.get("/api/admin/users?role=admin", Some(&root.token)).await;
    assert_eq!(only_admins["items"].as_array().unwrap().len(), 1);
    let (status, body) = app.get("/api/admin/users?rol=admin", Some(&root.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);

    let path = format!("/api/admin/users/{}", ivy.user_id);
    let (status, body) = app.patch(&path, Some(&root.token), json!({"plan_type": "team", "is_active": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan_type"], "team");
    assert_eq!(app.get("/api/auth/me", Some(&ivy.token)).await.0, StatusCode::UNAUTHORIZED, "deactivated: revoked");

    let (status, body) =
        app.patch(&format!("/api/admin/users/{}", root.user_id), Some(&root.token), json!({"role": "user"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT);

    let (status, body) =
        app.patch("/api/admin/users/7f1c0c6e-2f4e-4a8b-9a51-1c7b1d2e3f40", Some(&root.token), json!({})).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn audit_rows_name_the_actor() {
    let app = TestApp::spawn().await;
    let jo = app.register("jo@example.com").await;
    app.patch("/api/auth/me", Some(&jo.token), json!({"name": "Jo"})).await;
    let (_, key) = app.post("/api/api-keys", Some(&jo.token), json!({"name": "w", "scopes": ["write"]})).await;
    app.patch("/api/auth/me", Some(key["key"].as_str().unwrap()), json!({"name": "Jo Key"})).await;

    let rows = app
        .db
        .client()
        .await
        .query(
            "SELECT action, actor, old_values, new_values FROM devx.audit_logs
              WHERE entity_type = 'devx.users' AND entity_id = $1 ORDER BY id",
            &[&jo.user_id],
        )
        .await
        .unwrap();
    let actors: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
    assert!(actors.iter().all(|a| a.starts_with(&format!("user:{}", jo.user_id))), "{actors:?}");
    let insert: serde_json::Value = rows[0].get(3);
    assert_eq!(rows[0].get::<_, String>(0), "insert");
    assert_eq!(insert["password_hash"], "[redacted]", "secrets never reach the audit trail");
    let last_new: serde_json::Value = rows.last().unwrap().get(3);
    assert_eq!(last_new["name"], "Jo Key");
    assert!(actors.last().unwrap().contains("apikey:"), "a key's changes name the key");
}

/// A read that sends its caller's credential lookup with its own statements
/// (one round trip) answers exactly as one that looks the caller up first:
/// the owner and an admin read, another user gets the 404 of a missing id,
/// and a credential revoked, closed or used for the first time counts at once.
#[tokio::test]
async fn reads_sent_with_the_credential_lookup_check_it_first() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let root = app.admin("root@example.com").await;
    let (status, project) = app.post("/api/projects", Some(&ada.token), json!({"name": "shop"})).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let detail = format!("/api/projects/{}", project["id"].as_str().unwrap());
    let messages = format!("{detail}/messages");
    let (status, _) =
        app.post(&messages, Some(&ada.token), json!({"session_id": "s1", "role": "user", "content": "hello"})).await;
    assert_eq!(status, StatusCode::CREATED);

    for (who, token, expected) in [
        ("owner", &ada.token, StatusCode::OK),
        ("admin", &root.token, StatusCode::OK),
        ("other", &bob.token, StatusCode::NOT_FOUND),
    ] {
        let (status, body) = app.get(&detail, Some(token)).await;
        assert_eq!(status, expected, "{who} reads the project: {body}");
        let (status, body) = app.get(&messages, Some(token)).await;
        assert_eq!(status, expected, "{who} reads its chat: {body}");
        if expected == StatusCode::OK {
            assert_eq!(body["items"][0]["content"], "hello");
        } else {
            assert_eq!(
                body["title"],
                app.get("/api/projects/00000000-0000-4000-8000-000000000000", Some(token)).await.1["title"]
            );
        }
    }

    // A key's first use on such a read is recorded once, naming the route.
    let (_, key) = app.post("/api/api-keys", Some(&ada.token), json!({"name": "k", "scopes": ["read"]})).await;
    let key = key["key"].as_str().unwrap().to_string();
    assert_eq!(app.get(&detail, Some(&key)).await.0, StatusCode::OK);
    assert_eq!(app.get(&messages, Some(&key)).await.0, StatusCode::OK);
    let first_uses: Vec<serde_json::Value> = column(
        &app.db.client().await,
        "SELECT details->'request' FROM devx.activity_logs WHERE action = 'api_key_first_use'",
        &[],
    )
    .await;
    assert_eq!(first_uses, [json!("GET /api/projects/{id}")]);

    // Signing out refuses the very next read, as does a wrong token.
    let (status, _) = app.post("/api/auth/logout", Some(&bob.token), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for token in [bob.token.as_str(), "not-a-token"] {
        let (status, body) = app.get(&detail, Some(token)).await;
        assert_problem(status, &body, StatusCode::UNAUTHORIZED);
        let (status, body) = app.get(&messages, Some(token)).await;
        assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    }
    // So does closing the account, for its session and its key alike.
    let (status, _) = app.delete("/api/auth/me", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for token in [ada.token.as_str(), key.as_str()] {
        assert_eq!(app.get(&detail, Some(token)).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(app.get(&messages, Some(token)).await.0, StatusCode::UNAUTHORIZED);
    }
}
