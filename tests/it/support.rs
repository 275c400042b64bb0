//! Helpers every test module may use, written once: reading ids and problem
//! fields out of answers, walking a list's pages, inserting a project without
//! the projects API (or a user with it, in SQL), and one-value or one-column
//! queries.

#![allow(dead_code)]

use reqwest::StatusCode;
use serde_json::Value;
use tokio_postgres::Client;
use tokio_postgres::types::{FromSqlOwned, ToSql};
use uuid::Uuid;

use crate::app::{Session, TestApp};

/// The `id` of an API object.
pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_string()
}

/// The ids of a page's `items`, in order.
pub fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap_or_else(|| panic!("not a page: {page}")).iter().map(id).collect()
}

/// The `field` of each of a problem's `errors`, in order (none when it has
/// no `errors`).
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|e| e.iter().map(|x| x["field"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Every page of the list at `path`, following `next_cursor` to the end;
/// each page must answer 200.
pub async fn pages(app: &TestApp, token: Option<&str>, path: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}cursor={c}"),
            None => path.to_string(),
        };
        let (status, page) = app.get(&url, token).await;
        assert_eq!(status, StatusCode::OK, "{url}: {page}");
        cursor = page["next_cursor"].as_str().map(str::to_string);
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
    }
    panic!("paging {path} never ended");
}

/// The items of every page of the list at `path`.
pub async fn all_pages(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let pages = pages(app, Some(token), path).await;
    pages.iter().flat_map(|page| page["items"].as_array().unwrap().iter().cloned()).collect()
}

/// The ids of every page of the list at `path`, `limit` at a time (no page
/// may hold more).
pub async fn walk(app: &TestApp, token: &str, path: &str, limit: usize) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut all = Vec::new();
    for page in pages(app, Some(token), &format!("{path}{sep}limit={limit}")).await {
        let got = ids(&page);
        assert!(got.len() <= limit, "{} items on a page of {limit}: {page}", got.len());
        all.extend(got);
    }
    all
}

/// A project of `owner`, inserted directly (for tests of other resources
/// than projects); its id.
pub async fn project(app: &TestApp, owner: &Session, name: &str) -> String {
    let client = app.db.client().await;
    client
        .query_one(
            "INSERT INTO devx.projects (owner_id, name) VALUES ($1::text::uuid, $2) RETURNING id::text",
            &[&owner.user_id, &name],
        )
        .await
        .expect("insert project")
        .get(0)
}

/// A user (`owner@example.com`) and a project of theirs, inserted directly:
/// their ids.
pub async fn seed_owner(client: &Client) -> (Uuid, Uuid) {
    let user: Uuid = one(client, "INSERT INTO devx.users (email) VALUES ('owner@example.com') RETURNING id", &[]).await;
    let project: Uuid =
        one(client, "INSERT INTO devx.projects (owner_id, name) VALUES ($1, 'demo') RETURNING id", &[&user]).await;
    (user, project)
}

/// The one value `sql` returns (first column of its one row).
pub async fn one<T: FromSqlOwned>(client: &Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> T {
    client.query_one(sql, params).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

/// The number a `SELECT count(*) ...` without parameters returns.
pub async fn count(client: &Client, sql: &str) -> i64 {
    one(client, sql, &[]).await
}

/// The first column of every row `sql` returns.
pub async fn column<T: FromSqlOwned>(client: &Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<T> {
    client.query(sql, params).await.unwrap_or_else(|e| panic!("{sql}: {e}")).iter().map(|r| r.get(0)).collect()
}

/// A private PostgreSQL server in a temporary directory (devx's embedded
/// default), for tests that kill, terminate or reconfigure things; a devx
/// child process given the same `DEVX_DATA_DIR` uses it too.
pub struct PrivateServer {
    pub dir: tempfile::TempDir,
    pub server: devx::embedded::ResolvedDatabase,
}

impl PrivateServer {
    /// A data directory in /tmp that the server's unprivileged user can
    /// reach when the tests run as root.
    pub fn data_dir() -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("devx-fault-").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    /// Started in a fresh data directory; `None` without PostgreSQL's
    /// server binaries on this machine.
    pub async fn start() -> Option<PrivateServer> {
        PrivateServer::start_in(PrivateServer::data_dir()).await
    }

    /// Started in `dir` (from [`PrivateServer::data_dir`]): its socket is
    /// `<dir>/postgres/.s.PGSQL.5432`.
    pub async fn start_in(dir: tempfile::TempDir) -> Option<PrivateServer> {
        devx::embedded::find_binaries()?;
        let mut config = devx::config::Config::from_lookup(&|_| None).unwrap();
        config.data_dir = dir.path().to_path_buf();
        let options = devx::embedded::ResolveOptions {
            probe_targets: vec![devx::embedded::ProbeTarget::tcp("127.0.0.1", 1)],
            ..Default::default()
        };
        let server = devx::embedded::resolve_with(&config, &options).await.expect("the private server starts");
        Some(PrivateServer { dir, server })
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        crate::harness::connect(&self.server.target).await
    }

    /// `devx` on this server (through its data directory).
    pub fn devx(&self) -> std::process::Command {
        let mut cmd = crate::harness::devx_command();
        cmd.env("DEVX_DATA_DIR", self.dir.path()).env("DEVX_LOG", "warn");
        cmd
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}
