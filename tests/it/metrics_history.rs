//! `GET /api/admin/metrics/history`: the server samples its own request and
//! database statistics into memory (here every 100 ms, so samples come at
//! once) and serves them oldest first, with the process's identity, after
//! an optional `since`; admins only.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use crate::app::{TestApp, assert_problem};

const PATH: &str = "/api/admin/metrics/history";

/// Polls the history until it holds at least `n` samples (bounded).
async fn at_least(app: &TestApp, token: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = app.get(PATH, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["samples"].as_array().unwrap().len() >= n {
            return body;
        }
        assert!(Instant::now() < deadline, "no {n} samples after 30 s: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn at(sample: &Value) -> DateTime<Utc> {
    sample["at"].as_str().unwrap().parse().unwrap_or_else(|e| panic!("{e}: {sample}"))
}

#[tokio::test]
async fn the_history_holds_samples_oldest_first_with_the_process_identity() {
    let app = TestApp::spawn_with(|c| c.http.metrics_sample_interval = Duration::from_millis(100)).await;
    let admin = app.admin("ops@example.com").await;
    let body = at_least(&app, &admin.token, 4).await;

    let instance = &body["instance"];
    assert!(instance["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok(), "{instance}");
    assert_eq!(instance["pid"], std::process::id());
    assert_eq!(instance["version"], env!("CARGO_PKG_VERSION"));
    let started: DateTime<Utc> = instance["started_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(body["interval_seconds"], 0.1);
    assert_eq!(body["capacity"], 8640);

    let samples = body["samples"].as_array().unwrap();
    assert!(at(&samples[0]) > started, "the history starts with the process");
    assert!(samples.windows(2).all(|w| at(&w[0]) < at(&w[1])), "oldest first: {samples:#?}");
    for s in samples {
        for field in
            ["http_requests", "http_errors", "db_queries", "db_errors", "db_slow", "pool_size", "pool_max_size"]
        {
            assert!(s[field].is_u64(), "{field} in {s}");
        }
        for field in ["seconds", "http_per_second", "db_per_second"] {
            assert!(s[field].as_f64().is_some_and(|v| v >= 0.0), "{field} in {s}");
        }
        for field in ["http_mean_ms", "db_mean_ms"] {
            assert!(s[field].is_null() || s[field].as_f64().is_some_and(|v| v >= 0.0), "{field} in {s}");
        }
        assert_eq!(s["pool_max_size"], 8, "the test pool's size");
    }
    // The requests and statements so far (registration, the polls) are in it.
    let total = |field: &str| samples.iter().map(|s| s[field].as_u64().unwrap()).sum::<u64>();
    assert!(total("http_requests") >= 1, "{samples:#?}");
    assert!(total("db_queries") >= 1, "{samples:#?}");
    let busy = samples.iter().find(|s| s["http_requests"].as_u64() > Some(0)).unwrap();
    assert!(busy["http_mean_ms"].as_f64().is_some(), "a mean when there were requests: {busy}");

    // `since`: only the samples taken after it, with or without an offset.
    let cut = samples[1]["at"].as_str().unwrap();
    let (status, later) = app.get(&format!("{PATH}?since={cut}"), Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{later}");
    let later = later["samples"].as_array().unwrap();
    assert_eq!(later[0], samples[2], "strictly after `since`");
    assert!(later.iter().all(|s| at(s) > at(&samples[1])));
    let (status, all) = app.get(&format!("{PATH}?since=2000-01-01T01:00:00%2B01:00"), Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert!(all["samples"].as_array().unwrap().len() >= samples.len());
    let (status, none) = app.get(&format!("{PATH}?since=2999-01-01T00:00:00Z"), Some(&admin.token)).await;
    assert_eq!((status, none["samples"].as_array().unwrap().len()), (StatusCode::OK, 0));
}

#[tokio::test]
async fn the_history_is_for_admins_and_since_must_be_a_time() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ops@example.com").await;
    let user = app.register("dev@example.com").await;

    let (status, body) = app.get(PATH, Some(&user.token)).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app.get(PATH, None).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);

    for bad in ["yesterday", "2026-12-05", "2026-12-05T08:00:00", "2026-13-05T08:00:00Z"] {
        let (status, body) = app.get(&format!("{PATH}?since={bad}"), Some(&admin.token)).await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["errors"][0]["field"], "since", "{bad}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("RFC 3339") && message.contains("2026-12-05T08:00:00Z"), "{bad}: {message}");
    }
    let long = format!("2026-12-05T08:00:00.{}Z", "1".repeat(60));
    let (status, body) = app.get(&format!("{PATH}?since={long}"), Some(&admin.token)).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "since", "{body}");
    let (status, body) = app.get(&format!("{PATH}?since="), Some(&admin.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app.get(&format!("{PATH}?from=2026-12-05T08:00:00Z"), Some(&admin.token)).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("from"), "{body}");
}
