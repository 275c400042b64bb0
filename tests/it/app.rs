//! A real devx server on 127.0.0.1:0 over a fresh migrated database, and a
//! small HTTP client for it. Every API test starts one: on the shared server
//! ([`TestApp::spawn`]), or, for a test that takes its database down or
//! kills its connections (`outage`), on a private server of its own
//! ([`TestApp::spawn_private`]) that lives as long as the app.

use std::net::SocketAddr;

use devx::app::Application;
use devx::config::{Config, DbSource};
use devx::db::Db;
use devx::http::AppState;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::harness::TestDb;

pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub db: TestDb,
    pub pool: Db,
    pub config: Config,
    /// The state the server runs with (its metrics, its probes' pool).
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// A signed-in user as the tests see it.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub user_id: String,
    pub email: String,
}

pub fn default_config(db: &TestDb) -> Config {
    let mut config = Config::from_lookup(&|_| None).expect("default configuration is valid");
    config.database.source = DbSource::Explicit(Box::new(db.config()));
    config.database.pool_max = 8;
    config.database.acquire_timeout = std::time::Duration::from_secs(2);
    // Tests stop servers often; the drain period is tested on its own.
    config.http.shutdown_drain = std::time::Duration::ZERO;
    config
}

/// A devx pool on `db`, for tests that call the library's SQL directly.
pub async fn pool(db: &TestDb) -> Db {
    Db::connect(&default_config(db).database, &db.config()).await.expect("pool connects")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tune: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::spawn_on(TestDb::migrated().await, tune).await
    }

    /// A server on a fresh migrated database alone on a private PostgreSQL
    /// server (data in `/tmp/<prefix>*`), which stops when the app drops.
    pub async fn spawn_private(prefix: &str, tune: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::spawn_on(TestDb::migrated_private(prefix).await, tune).await
    }

    /// A server on a database the test prepared (e.g. with a role of its own).
    pub async fn spawn_on(db: TestDb, tune: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = default_config(&db);
        tune(&mut config);
        // A tuned source (e.g. PgBouncer in front of this database) wins.
        let target = match &config.database.source {
            DbSource::Explicit(target) => (**target).clone(),
            DbSource::EmbeddedDefault => db.config(),
        };
        let pool = Db::connect(&config.database, &target).await.expect("pool connects");
        {
            let mut client = pool.client().await.unwrap();
            let tx = client.transaction_as("system:test-seed").await.unwrap();
            devx::catalog::seed_builtin(&tx).await.expect("catalog seeds");
            tx.commit().await.unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let state = AppState::new(pool.clone(), config.clone());
        let app = Application::build(listener, state.clone());
        let addr = app.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            http: reqwest::Client::new(),
            db,
            pool,
            config,
            state,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    /// Sends a JSON request and returns the status and the JSON body (or
    /// `Value::Null` when there is none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.request(method, path, token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, token, None).await
    }

    pub async fn register(&self, email: &str) -> Session {
        let (status, body) = self
            .post(
                "/api/auth/register",
                None,
                json!({"email": email, "password": "correct horse battery", "name": "Test"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register {email}: {body}");
        Session {
            token: body["token"].as_str().unwrap().to_string(),
            user_id: body["user"]["id"].as_str().unwrap().to_string(),
            email: email.to_string(),
        }
    }

    /// A registered user promoted to admin directly in the database.
    pub async fn admin(&self, email: &str) -> Session {
        let session = self.register(email).await;
        let client = self.db.client().await;
        client
            .execute("UPDATE devx.users SET role = 'admin' WHERE email = $1", &[&email])
            .await
            .expect("promote to admin");
        session
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await.expect("server task"),
            None => Ok(()),
        }
    }

    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(handle) = self.server.take() {
            handle.abort();
        }
        self.pool.close();
    }
}

/// Asserts a problem+json answer with this status, and returns its body.
pub fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode) -> &Value {
    assert_eq!(status, expected, "body: {body}");
    assert_eq!(body["status"], expected.as_u16(), "problem status field: {body}");
    assert!(body["type"].as_str().is_some_and(|t| t.starts_with("/problems/")), "problem type: {body}");
    assert!(body["title"].is_string() && body["detail"].is_string(), "problem fields: {body}");
    body
}
