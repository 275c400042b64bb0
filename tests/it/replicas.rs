//! Read replicas with read-your-writes, on PostgreSQL's own streaming
//! replication: a private primary and a standby made by `pg_basebackup`
//! that applies WAL only after `recovery_min_apply_delay`, so that anything
//! read from it is visibly older than the primary. devx must serve reads
//! from the standby, yet a caller that writes and reads at once must never
//! see the state before its own write; a replica that goes away is taken
//! out and reads fall back to the primary.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use devx::app::Application;
use devx::config::{Config, DbSource};
use devx::db::Db;
use devx::http::AppState;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::failover::{pg, start_standby, target};
use crate::harness::{PrivateServer, connect};

/// How far behind the standby applies the primary's WAL.
const APPLY_DELAY: Duration = Duration::from_secs(3);

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

async fn register(http: &reqwest::Client, base: &str, email: &str) -> Client {
    let resp = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    Client { http: http.clone(), base: base.to_string(), token: body["token"].as_str().unwrap().to_string() }
}

/// Polls `/api/database/status` until `check` holds for it, or panics after `within`.
async fn status_until(admin: &Client, within: Duration, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (code, status) = admin.get("/api/database/status").await;
        assert_eq!(code, StatusCode::OK, "{status}");
        if check(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}: {status:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_replica_serves_reads_yet_a_caller_always_reads_its_own_writes() {
    let Some(primary) = PrivateServer::start("devx-replica-").await else {
        eprintln!("skipped: no PostgreSQL server binaries on this machine");
        return;
    };
    let binaries = devx::embedded::find_binaries().unwrap();
    let primary_root: PathBuf = primary.dir.path().join("postgres");
    let (_standby_dir, standby_root, standby_data) = start_standby(
        &binaries,
        &primary_root,
        &format!("recovery_min_apply_delay = '{}ms'\n", APPLY_DELAY.as_millis()),
    );

    let primary_target = target(&[&primary_root]);
    let mut replica_target = target(&[&standby_root]);
    replica_target.target_session_attrs(tokio_postgres::config::TargetSessionAttrs::Any);
    let standby = connect(&replica_target).await;
    let in_recovery: bool = standby.query_one("SELECT pg_is_in_recovery()", &[]).await.unwrap().get(0);
    assert!(in_recovery, "the standby streams from the primary");

    let mut config = Config::from_lookup(&|_| None).unwrap();
    config.database.source = DbSource::Explicit(Box::new(primary_target.clone()));
    config.database.replicas.targets = vec![replica_target.clone()];
    config.database.replicas.max_lag = Duration::from_secs(120);
    config.database.replicas.probe_interval = Duration::from_millis(100);
    // The list of projects is pinned to the primary; a project by id is not.
    config.database.replicas.primary_routes = vec![("GET".into(), "/api/projects".into())];
    config.database.acquire_timeout = Duration::from_secs(2);
    config.http.shutdown_drain = Duration::ZERO;
    devx::migrate::prepare_for_serve(&config, &primary_target).await.expect("migrates on the primary");
    let pool = Db::connect(&config.database, &primary_target).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build(listener, AppState::new(pool.clone(), config.clone()));
    let base = format!("http://{}", app.local_addr().unwrap());
    let server = tokio::spawn(app.run_until(std::future::pending()));
    // A second devx process on the same primary and replica: the write
    // position lives in PostgreSQL, so reads through it follow writes made
    // through the first.
    let second_pool = Db::connect(&config.database, &primary_target).await.unwrap();
    let second_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second_app = Application::build(second_listener, AppState::new(second_pool.clone(), config.clone()));
    let second_base = format!("http://{}", second_app.local_addr().unwrap());
    let second_server = tokio::spawn(second_app.run_until(std::future::pending()));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();

    // Ada writes; Grace, an administrator, reads Ada's projects.
    let ada = register(&http, &base, "ada@example.com").await;
    let grace = register(&http, &base, "grace@example.com").await;
    let primary_client = primary.client().await;
    primary_client
        .execute("UPDATE devx.users SET role = 'admin' WHERE email = 'grace@example.com'", &[])
        .await
        .unwrap();

    // The replica takes reads once it has replayed the migrated schema;
    // wait until it has also replayed the sign-ups, so that Grace's own
    // registration no longer keeps her reads on the primary.
    status_until(&grace, Duration::from_secs(60), "the replica takes reads", |s| {
        s["replicas"][0]["usable"] == json!(true)
    })
    .await;
    let written: String = primary_client.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !standby
        .query_one("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", &[&written])
        .await
        .unwrap()
        .get::<_, bool>(0)
    {
        assert!(Instant::now() < deadline, "the standby replays the sign-ups");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One more probe round, so that devx knows it too.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A write read back at once, many times over: never the state before it.
    let (code, created) = ada.send(reqwest::Method::POST, "/api/projects", json!({"name": "v0"})).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (code, read) = ada.get(&format!("/api/projects/{id}")).await;
    assert_eq!(code, StatusCode::OK, "a project just created is found by its creator: {read}");
    let (_, mine) = ada.get("/api/projects").await;
    assert!(mine["items"].as_array().unwrap().iter().any(|p| p["id"] == json!(id)), "and is in their list: {mine}");
    let ada_elsewhere = Client { http: ada.http.clone(), base: second_base.clone(), token: ada.token.clone() };
    for n in 1..=8 {
        let name = format!("v{n}");
        let (code, body) =
            ada.send(reqwest::Method::PATCH, &format!("/api/projects/{id}"), json!({"name": name})).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        // Read back through the process that wrote, or through the other one.
        let reader = if n % 2 == 0 { &ada } else { &ada_elsewhere };
        let (code, read) = reader.get(&format!("/api/projects/{id}")).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(read["name"], json!(name), "the writer reads its own write at once (round {n}, {})", reader.base);
    }
    let grace_elsewhere = Client { http: grace.http.clone(), base: second_base.clone(), token: grace.token.clone() };
    let (_, elsewhere) = grace_elsewhere.get("/api/database/status").await;
    assert!(
        elsewhere["reads"]["sticky"].as_u64().unwrap() > 0,
        "the other process sent Ada's reads to the primary, from the position the first one stored: {elsewhere:#}"
    );
    let latest = "v8";
    // The same through the idempotency layer, which runs the handler in a task of its own.
    let resp = ada
        .http
        .post(format!("{base}/api/projects"))
        .bearer_auth(&ada.token)
        .header("Idempotency-Key", "replica-test-1")
        .json(&json!({"name": "keyed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let keyed: Value = resp.json().await.unwrap();
    let (code, read) = ada.get(&format!("/api/projects/{}", keyed["id"].as_str().unwrap())).await;
    assert_eq!(code, StatusCode::OK, "a keyed create is read back at once too: {read}");

    // Someone else reads the replica at once: the state before Ada's
    // writes, which proves the reads go there.
    let before = grace.status_counts().await;
    let (code, seen) = grace.get(&format!("/api/projects/{id}")).await;
    let after = grace.status_counts().await;
    assert!(
        code == StatusCode::NOT_FOUND || seen["name"] != json!(latest),
        "a reader who did not write reads the delayed replica: {code} {seen}"
    );
    assert!(after.0 > before.0, "that read went to the replica: {before:?} -> {after:?}");
    // A route pinned by DB_PRIMARY_ROUTES reads the primary, whoever asks.
    let (code, all) = grace.get("/api/projects?limit=100").await;
    assert_eq!(code, StatusCode::OK);
    let listed = all["items"].as_array().unwrap().iter().find(|p| p["id"] == json!(id)).cloned();
    assert_eq!(listed.map(|p| p["name"].clone()), Some(json!(latest)), "the pinned list is the primary's: {all}");

    // Ada's reads right after a write went to the primary (sticky); once
    // the replica has applied the write, they go to the replica too.
    let (_, status) = grace.get("/api/database/status").await;
    assert!(status["reads"]["sticky"].as_u64().unwrap() > 0, "sticky reads are counted: {status:#}");
    let deadline = Instant::now() + APPLY_DELAY * 10;
    loop {
        let (code, seen) = grace.get(&format!("/api/projects/{id}")).await;
        if code == StatusCode::OK && seen["name"] == json!(latest) {
            break;
        }
        assert!(Instant::now() < deadline, "the replica applies the write after its delay: {code} {seen}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + APPLY_DELAY * 10;
    loop {
        let (replica_reads_before, _) = grace.status_counts().await;
        let (code, read) = ada.get(&format!("/api/projects/{id}")).await;
        assert_eq!((code, read["name"].clone()), (StatusCode::OK, json!(latest)));
        let (replica_reads_after, _) = grace.status_counts().await;
        if replica_reads_after > replica_reads_before {
            break;
        }
        assert!(Instant::now() < deadline, "once its write is replayed, the writer reads the replica too");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The position lives in PostgreSQL, where every devx process finds it.
    let stored: i64 = primary_client
        .query_one(
            "SELECT count(*) FROM devx.read_positions p JOIN devx.users u ON u.id = p.user_id
              WHERE u.email = 'ada@example.com' AND p.expires_at > now()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1, "Ada's last write position is kept in devx.read_positions");

    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    for series in
        ["devx_db_reads_total{target=\"primary\"}", "devx_db_read_sticky_total", "devx_db_replica_lag_seconds"]
    {
        assert!(metrics.contains(series), "/metrics has {series}");
    }

    // The replica goes away: it is taken out and reads fall back to the primary.
    drop(standby);
    pg(
        &binaries.program("pg_ctl"),
        &standby_root,
        &["stop", "-w", "-m", "immediate", "-s", "-D", standby_data.to_str().unwrap()],
    );
    let (code, read) = grace.get(&format!("/api/projects/{id}")).await;
    assert_eq!((code, read["name"].clone()), (StatusCode::OK, json!(latest)), "a read survives the replica's loss");
    let status = status_until(&grace, Duration::from_secs(30), "the lost replica is out", |s| {
        s["replicas"][0]["usable"] == json!(false) && s["reads"]["fallbacks"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert!(status["replicas"][0]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{status:#}");
    for _ in 0..3 {
        let (code, _) = grace.get("/api/projects").await;
        assert_eq!(code, StatusCode::OK, "reads go on on the primary");
    }

    server.abort();
    second_server.abort();
    pool.close();
    second_pool.close();
    drop(primary_client);
    primary.stop().await;
}

impl Client {
    /// (reads served by replicas, reads served by the primary) so far.
    async fn status_counts(&self) -> (u64, u64) {
        let (code, status) = self.get("/api/database/status").await;
        assert_eq!(code, StatusCode::OK);
        (status["reads"]["replicas"].as_u64().unwrap(), status["reads"]["primary"].as_u64().unwrap())
    }
}
