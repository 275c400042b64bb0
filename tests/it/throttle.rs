//! Sign-in throttling: per account with doubling lockouts, per address with
//! a higher limit, shared through PostgreSQL by every devx process, the
//! client address taken from trusted proxies only, lockouts audited and
//! lifted by `devx users unlock`.

use std::net::SocketAddr;
use std::time::Duration;

use devx::app::Application;
use devx::http::AppState;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::app::TestApp;
use crate::harness::devx_command;
use crate::support::{count, one};

const RIGHT: &str = "correct horse battery";

async fn login(app: &TestApp, email: &str, password: &str, forwarded_for: Option<&str>) -> (StatusCode, Option<u64>) {
    let mut request = app.http.post(app.url("/api/auth/login")).json(&json!({"email": email, "password": password}));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    let response = request.send().await.unwrap();
    let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    (response.status(), retry)
}

/// Ends the running lockouts, as waiting them out would.
async fn let_lockouts_pass(app: &TestApp) {
    app.db
        .client()
        .await
        .execute("UPDATE devx.sign_in_throttle SET locked_until = now() - interval '1 second'", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn an_attacked_account_is_locked_with_doubling_delays_and_its_neighbours_are_not() {
    let app = TestApp::spawn_with(|c| {
        c.http.login_max_failures = 3;
        c.http.login_lockout = Duration::from_secs(60);
    })
    .await;
    app.register("ann@example.com").await;
    app.register("ben@example.com").await;
    for _ in 0..3 {
        assert_eq!(login(&app, "ann@example.com", "wrong", None).await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, retry) = login(&app, "ann@example.com", RIGHT, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits out the lockout");
    assert!(retry.is_some_and(|r| (50..=60).contains(&r)), "{retry:?}");
    // Same address (every test request comes from 127.0.0.1), another account.
    assert_eq!(login(&app, "ben@example.com", RIGHT, None).await.0, StatusCode::OK);

    // The next lockout in a row lasts twice as long.
    let_lockouts_pass(&app).await;
    for _ in 0..3 {
        assert_eq!(login(&app, "ann@example.com", "wrong", None).await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, retry) = login(&app, "ann@example.com", RIGHT, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some_and(|r| (110..=120).contains(&r)), "doubled: {retry:?}");

    // A success after a lockout forgets the account's count.
    let_lockouts_pass(&app).await;
    assert_eq!(login(&app, "ann@example.com", RIGHT, None).await.0, StatusCode::OK);
    let client = app.db.client().await;
    assert_eq!(count(&client, "SELECT count(*) FROM devx.sign_in_throttle WHERE key LIKE 'account:ann%'").await, 0);
    // Lockouts are in the audit trail.
    let lockouts = count(
        &client,
        "SELECT count(*) FROM devx.audit_logs WHERE entity_type = 'devx.sign_in_throttle' \
         AND entity_id = 'account:ann@example.com' AND action IN ('insert', 'update')",
    )
    .await;
    assert_eq!(lockouts, 2, "each lockout is audited once");
}

#[tokio::test]
async fn one_address_has_a_higher_limit_across_accounts() {
    let app = TestApp::spawn_with(|c| {
        c.http.login_max_failures = 100;
        c.http.login_max_failures_per_address = 4;
    })
    .await;
    app.register("cat@example.com").await;
    for n in 0..4 {
        let email = format!("guess{n}@example.com");
        assert_eq!(login(&app, &email, "wrong", None).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login(&app, "cat@example.com", RIGHT, None).await.0, StatusCode::TOO_MANY_REQUESTS);
}

/// Behind a trusted proxy the address is the right-most untrusted hop of
/// `X-Forwarded-For`; without trust the header is ignored.
#[tokio::test]
async fn the_client_address_comes_from_trusted_proxies_only() {
    let app = TestApp::spawn_with(|c| {
        c.http.login_max_failures = 100;
        c.http.login_max_failures_per_address = 2;
        c.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.register("dan@example.com").await;
    for _ in 0..2 {
        login(&app, "nobody@example.com", "wrong", Some("198.51.100.1, 203.0.113.1")).await;
    }
    assert_eq!(
        login(&app, "dan@example.com", RIGHT, Some("203.0.113.1")).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "203.0.113.1 is locked"
    );
    assert_eq!(
        login(&app, "dan@example.com", RIGHT, Some("203.0.113.1, 203.0.113.2")).await.0,
        StatusCode::OK,
        "203.0.113.2 is another client"
    );
    let untrusting = TestApp::spawn_with(|c| {
        c.http.login_max_failures = 100;
        c.http.login_max_failures_per_address = 2;
    })
    .await;
    untrusting.register("eve@example.com").await;
    for n in 0..2 {
        login(&untrusting, "nobody@example.com", "wrong", Some(&format!("203.0.113.{n}"))).await;
    }
    assert_eq!(
        login(&untrusting, "eve@example.com", RIGHT, Some("203.0.113.99")).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "an untrusted peer's X-Forwarded-For changes nothing: the peer is locked"
    );
}

/// The counters live in PostgreSQL: a second devx process on the same
/// database sees the lockout the first one made, and so does a restart.
#[tokio::test]
async fn every_devx_process_shares_the_counters() {
    let app = TestApp::spawn_with(|c| c.http.login_max_failures = 2).await;
    app.register("fay@example.com").await;
    for _ in 0..2 {
        login(&app, "fay@example.com", "wrong", None).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = Application::build(listener, AppState::new(app.pool.clone(), app.config.clone()));
    let addr: SocketAddr = second.local_addr().unwrap();
    let server = tokio::spawn(second.run_until(std::future::pending()));
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/auth/login"))
        .json(&json!({"email": "fay@example.com", "password": RIGHT}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    server.abort();
}

#[tokio::test]
async fn a_wrong_current_password_counts_as_a_failed_sign_in() {
    let app = TestApp::spawn_with(|c| c.http.login_max_failures = 2).await;
    let gus = app.register("gus@example.com").await;
    for _ in 0..2 {
        let (status, body) = app
            .patch(
                "/api/auth/me",
                Some(&gus.token),
                json!({"password": {"current": "not it", "new": "another good password"}}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, body) = app
        .patch(
            "/api/auth/me",
            Some(&gus.token),
            json!({"password": {"current": RIGHT, "new": "another good password"}}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(login(&app, "gus@example.com", RIGHT, None).await.0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn registrations_are_throttled_per_address() {
    let app = TestApp::spawn_with(|c| c.http.register_max_per_address = 2).await;
    app.register("h1@example.com").await;
    let (status, _) = app.post("/api/auth/register", None, json!({"email": "h1@example.com", "password": RIGHT})).await;
    assert_eq!(status, StatusCode::CONFLICT, "the second attempt, a duplicate, counts too");
    let (status, body): (StatusCode, Value) =
        app.post("/api/auth/register", None, json!({"email": "h3@example.com", "password": RIGHT})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

#[tokio::test]
async fn devx_users_unlock_lifts_a_lockout_and_the_trail_records_it() {
    let app = TestApp::spawn_with(|c| c.http.login_max_failures = 2).await;
    app.register("ida@example.com").await;
    for _ in 0..2 {
        login(&app, "ida@example.com", "wrong", None).await;
    }
    assert_eq!(login(&app, "ida@example.com", RIGHT, None).await.0, StatusCode::TOO_MANY_REQUESTS);
    let out = devx_command()
        .env("DATABASE_URL", app.db.url())
        .args(["users", "unlock", "--email", "IDA@example.com"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("unlocked"));
    assert_eq!(login(&app, "ida@example.com", RIGHT, None).await.0, StatusCode::OK);
    let client = app.db.client().await;
    let actor: String = one(
        &client,
        "SELECT actor FROM devx.audit_logs WHERE entity_type = 'devx.sign_in_throttle' AND action = 'delete'",
        &[],
    )
    .await;
    assert!(actor.starts_with("system:cli"), "{actor}");
}
