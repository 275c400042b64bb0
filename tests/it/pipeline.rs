//! Authenticated reads pipelined on a connection shared between requests:
//! each caller still gets only what is theirs, a read the shared
//! connection cannot finish in time runs again on the pool, and a broken
//! shared connection costs no request.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::TestDb;
use crate::support::one;

/// Backends of `db` that are devx's shared read connections.
async fn pipeline_backends(db: &TestDb) -> Vec<(i32, String)> {
    let admin = db.admin_client().await;
    admin
        .query(
            "SELECT pid, query FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE '% pipeline'",
            &[&db.name()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Until the terminated backend `pid` of `db`'s server has exited.
async fn until_gone(db: &TestDb, pid: i32) {
    let admin = db.admin_client().await;
    for _ in 0..200 {
        if one::<i64>(&admin, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", &[&pid]).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("backend {pid} is still there after pg_terminate_backend");
}

/// Whether a backend of `database` that is not a shared one comes to wait
/// on a lock within 5 s (only a pooled connection can: the shared one gives
/// up after its short timeout).
async fn a_pooled_connection_waits_on_a_lock(db: &TestDb) -> bool {
    let admin = db.admin_client().await;
    let waiting_on_the_pool = "SELECT count(*) FROM pg_stat_activity
                                WHERE datname = $1 AND wait_event_type = 'Lock' AND application_name NOT LIKE '% pipeline'";
    for _ in 0..200 {
        if one::<i64>(&admin, waiting_on_the_pool, &[&db.name()]).await > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn concurrent_reads_share_one_connection_and_each_caller_sees_only_their_own() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    let mut projects = Vec::new();
    for (owner, name) in [(&ada, "ada's"), (&bob, "bob's")] {
        let (status, p) = app.post("/api/projects", Some(&owner.token), json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{p}");
        projects.push(p["id"].as_str().unwrap().to_string());
    }

    let mut reads = tokio::task::JoinSet::new();
    for i in 0..48 {
        let (caller, project) = (if i % 2 == 0 { &ada } else { &bob }, &projects[i % 4 / 2]);
        let (url, token, own) =
            (app.url(&format!("/api/projects/{project}")), caller.token.clone(), i % 4 == 0 || i % 4 == 3);
        reads.spawn(async move {
            let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
            (own, response.status(), response.json::<serde_json::Value>().await.unwrap())
        });
    }
    while let Some(read) = reads.join_next().await {
        let (own, status, body) = read.unwrap();
        if own {
            assert_eq!(status, StatusCode::OK, "{body}");
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "another user's project looks missing: {body}");
        }
    }
    // One shared connection (the default), and the reads went through it.
    let backends = pipeline_backends(&app.db).await;
    assert_eq!(backends.len(), 1, "{backends:?}");
    assert!(backends[0].1.contains("devx.sessions") || backends[0].1.contains("devx.projects"), "{backends:?}");

    // A wrong token is refused there too.
    let (status, _) = app.get(&format!("/api/projects/{}", projects[0]), Some("devx_not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A read blocked on the shared connection past its short timeout runs
/// again on a pooled connection, which waits as long as any statement may.
#[tokio::test]
async fn a_read_the_shared_connection_cannot_finish_in_time_runs_again_on_the_pool() {
    let app = TestApp::spawn_with(|c| c.database.pipeline_timeout = Duration::from_millis(100)).await;
    let dev = app.register("dev@example.com").await;
    let (status, p) = app.post("/api/projects", Some(&dev.token), json!({"name": "locked"})).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let url = format!("/api/projects/{}", p["id"].as_str().unwrap());
    // Opens the shared connection before the lock is taken.
    assert_eq!(app.get(&url, Some(&dev.token)).await.0, StatusCode::OK);

    let locker = app.db.client().await;
    locker.batch_execute("BEGIN; LOCK TABLE devx.projects IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let read = tokio::spawn({
        let (url, token) = (app.url(&url), dev.token.clone());
        async move { reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap().status() }
    });
    assert!(a_pooled_connection_waits_on_a_lock(&app.db).await, "the read never reached a pooled connection");
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(read.await.unwrap(), StatusCode::OK);
    // The shared connection is still the same one, and serves again.
    assert_eq!(pipeline_backends(&app.db).await.len(), 1);
    assert_eq!(app.get(&url, Some(&dev.token)).await.0, StatusCode::OK);
    // Counted, and shown to Prometheus.
    let counts = app.state.db.pipeline_counts();
    assert_eq!((counts.retries, counts.opened, counts.open_failures), (1, 1, 0), "{counts:?}");
    assert!(counts.reads >= 3, "{counts:?}");
    let metrics = app.request(reqwest::Method::GET, "/metrics", None).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "devx_db_pipeline_retries_total 1"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "devx_db_pipeline_opened_total 1"), "{metrics}");
}

/// A page of one owner's projects is read on the shared connection too (it
/// walks an index); a name search, whose cost depends on the data, goes to
/// the pool; a page the shared connection cannot finish in time runs again
/// on the pool.
#[tokio::test]
async fn a_page_of_ones_projects_is_shared_and_a_search_is_not() {
    let app = TestApp::spawn_with(|c| c.database.pipeline_timeout = Duration::from_millis(100)).await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    for (owner, name) in [(&ada, "ada one"), (&ada, "ada two"), (&bob, "bob's")] {
        let (status, p) = app.post("/api/projects", Some(&owner.token), json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{p}");
    }
    let names = |page: &serde_json::Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    };
    let last_shared_statement = || async {
        let backends = pipeline_backends(&app.db).await;
        assert_eq!(backends.len(), 1, "{backends:?}");
        backends[0].1.clone()
    };

    let (status, page) = app.get("/api/projects", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(names(&page), ["ada two", "ada one"]);
    assert!(
        last_shared_statement().await.contains("FROM devx.projects p"),
        "the page was not read on the shared connection"
    );

    let (status, page) = app.get("/api/projects?q=two", Some(&ada.token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(names(&page), ["ada two"]);
    let last = last_shared_statement().await;
    assert!(!last.contains("ILIKE") && last.contains("devx.sessions"), "a search ran on the shared connection: {last}");

    let locker = app.db.client().await;
    locker.batch_execute("BEGIN; LOCK TABLE devx.projects IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let read = tokio::spawn({
        let (url, token) = (app.url("/api/projects"), bob.token.clone());
        async move {
            let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
            (response.status(), response.json::<serde_json::Value>().await.unwrap())
        }
    });
    assert!(a_pooled_connection_waits_on_a_lock(&app.db).await, "the page never reached a pooled connection");
    locker.batch_execute("ROLLBACK").await.unwrap();
    let (status, page) = read.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(names(&page), ["bob's"]);
}

/// A failover or an operator's `pg_terminate_backend` kills the shared
/// connection with the pool's: the next read opens a new shared connection
/// and costs no failed request.
#[tokio::test]
async fn pipelined_reads_survive_killed_connections_every_time() {
    let app = TestApp::spawn_private("devx-kill-", |_| {}).await;
    let dev = app.register("dev@example.com").await;
    let (status, p) = app.post("/api/projects", Some(&dev.token), json!({"name": "survivor"})).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let url = format!("/api/projects/{}", p["id"].as_str().unwrap());
    let mut pids = std::collections::BTreeSet::new();
    for round in 0..10 {
        let (status, body) = app.get(&url, Some(&dev.token)).await;
        assert_eq!(status, StatusCode::OK, "round {round}: {body}");
        let backends = pipeline_backends(&app.db).await;
        assert_eq!(backends.len(), 1, "round {round}: {backends:?}");
        pids.insert(backends[0].0);
        crate::outage::kill_connections(&app).await;
        until_gone(&app.db, backends[0].0).await;
    }
    assert_eq!(pids.len(), 10, "a new shared connection after every kill: {pids:?}");
    assert_eq!(app.state.db.pipeline_counts().opened, 10, "{:?}", app.state.db.pipeline_counts());
}

/// `DB_PIPELINE_CONNECTIONS=0`: no shared connection; reads use the pool.
#[tokio::test]
async fn without_shared_connections_reads_use_the_pool() {
    let app = TestApp::spawn_with(|c| c.database.pipeline_connections = 0).await;
    let dev = app.register("dev@example.com").await;
    let (status, p) = app.post("/api/projects", Some(&dev.token), json!({"name": "pooled"})).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let (status, body) = app.get(&format!("/api/projects/{}", p["id"].as_str().unwrap()), Some(&dev.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(pipeline_backends(&app.db).await.is_empty());
    assert_eq!(app.state.db.pipeline_counts(), devx::db::PipelineCounts::default());
}
