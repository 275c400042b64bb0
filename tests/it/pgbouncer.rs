//! devx behind PgBouncer in transaction pooling mode (`DB_STATEMENT_MODE=unnamed`):
//! each test starts its own pgbouncer (Debian's, installed by `.ci/run`) on a
//! free port in front of the test server, with fewer server connections than
//! devx has clients, so that server connections really are shared.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use devx::config::{Config, DbSource, StatementMode};
use devx::db::{Db, Queryable};
use devx::migrate::MigrationSet;
use reqwest::StatusCode;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{TestDb, admin_client, connect, devx_command, server_config};
use crate::support::one;

const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

/// A pgbouncer process in transaction mode, killed on drop. Its `*` database
/// entry forwards every database name to the test server.
struct PgBouncer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PgBouncer {
    async fn start(server_pool_size: usize) -> PgBouncer {
        use tokio_postgres::config::Host;
        let binary = which_pgbouncer().unwrap_or_else(|| {
            panic!(
                "pgbouncer is not installed (looked for {PGBOUNCER} and on PATH): \
                 run .ci/run, or `apt-get install -y pgbouncer`"
            )
        });
        let server = server_config();
        let host = match server.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "127.0.0.1".into(),
        };
        let server_port = server.get_ports().first().copied().unwrap_or(5432);
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name);
        fs::write(path("userlist.txt"), "\"postgres\" \"\"\n").unwrap();
        let ini = format!(
            "[databases]\n\
             * = host={host} port={server_port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {auth}\n\
             pool_mode = transaction\n\
             max_client_conn = 200\n\
             default_pool_size = {server_pool_size}\n\
             min_pool_size = 0\n\
             reserve_pool_size = 0\n\
             ignore_startup_parameters = extra_float_digits\n\
             admin_users = postgres\n\
             logfile = {log}\n",
            auth = path("userlist.txt").display(),
            log = path("pgbouncer.log").display(),
        );
        fs::write(path("pgbouncer.ini"), ini).unwrap();
        let mut cmd = Command::new(&binary);
        // pgbouncer refuses to run as root: drop to the postgres user, who
        // must be able to read the config and write the log.
        if nix::unistd::geteuid().is_root() {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
            cmd.arg("-u").arg("postgres");
        }
        cmd.arg(path("pgbouncer.ini")).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut bouncer = PgBouncer { child, port, dir };

        // Ready when it accepts a PostgreSQL connection and forwards a query.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = bouncer.child.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = bouncer.child.stderr.take() {
                    use std::io::Read;
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("pgbouncer exited at start ({status}): {err}\n{}", bouncer.log());
            }
            let attempt = async {
                let (client, connection) = bouncer.config("postgres").connect(tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client.simple_query("SELECT 1").await.map(|_| ())
            };
            match attempt.await {
                Ok(()) => return bouncer,
                Err(e) if Instant::now() > deadline => {
                    panic!("pgbouncer did not answer on port {port} within 15s: {e}\n{}", bouncer.log())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// A connection target for `dbname` through this pgbouncer.
    fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host("127.0.0.1").port(self.port).user("postgres").dbname(dbname);
        cfg
    }

    /// `dbname` through this pgbouncer as a `DATABASE_URL` value.
    fn url(&self, dbname: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname='{dbname}'", self.port)
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which_pgbouncer() -> Option<PathBuf> {
    let fixed = PathBuf::from(PGBOUNCER);
    if fixed.is_file() {
        return Some(fixed);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| PathBuf::from(d).join("pgbouncer")).find(|p| p.is_file())
}

fn dbname(cfg: &tokio_postgres::Config) -> String {
    cfg.get_dbname().expect("a database name").to_string()
}

/// Server connections open to `dbname` (every one of them is pgbouncer's).
async fn server_connections(dbname: &str) -> i64 {
    one(
        &admin_client().await,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
        &[&dbname],
    )
    .await
}

#[tokio::test]
async fn api_smoke_path_through_pgbouncer_in_transaction_mode() {
    const SERVER_POOL: usize = 4;
    const CLIENTS: usize = 12;
    let bouncer = PgBouncer::start(SERVER_POOL).await;
    let app = TestApp::spawn_with(|config| {
        let DbSource::Explicit(direct) = &config.database.source else {
            unreachable!("tests use an explicit database")
        };
        let via = bouncer.config(&dbname(direct));
        config.database.source = DbSource::Explicit(Box::new(via));
        config.database.statement_mode = StatementMode::Unnamed;
        config.database.pool_max = 16;
        config.database.pool_min = 8;
    })
    .await;
    assert!(app.pool.status().size >= 8, "devx holds more client connections than pgbouncer has server ones");

    let runs = (0..CLIENTS).map(|i| {
        let app = &app;
        async move {
            let email = format!("user{i}@example.com");
            let session = app.register(&email).await;
            let (status, body) =
                app.post("/api/auth/login", None, json!({"email": email, "password": "correct horse battery"})).await;
            assert_eq!(status, StatusCode::OK, "login: {body}");
            let token = body["token"].as_str().unwrap().to_string();

            let (status, key) =
                app.post("/api/api-keys", Some(&token), json!({"name": "ci", "scopes": ["read"]})).await;
            assert_eq!(status, StatusCode::CREATED, "api key: {key}");
            let key = key["key"].as_str().unwrap().to_string();
            let (status, me) = app.get("/api/auth/me", Some(&key)).await;
            assert_eq!(status, StatusCode::OK, "{me}");
            assert_eq!(me["id"].as_str(), Some(session.user_id.as_str()));

            // Templates, two pages by cursor.
            let (status, page) = app.get("/api/templates?limit=5", None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert_eq!(page["items"].as_array().unwrap().len(), 5);
            let cursor = page["next_cursor"].as_str().expect("a second page").to_string();
            let (status, next) = app.get(&format!("/api/templates?limit=5&cursor={cursor}"), None).await;
            assert_eq!(status, StatusCode::OK, "{next}");
            assert_ne!(next["items"][0], page["items"][0], "the second page goes on");

            // Create and read back a project.
            let (status, project) = app
                .post("/api/projects", Some(&token), json!({"name": format!("Shop {i}"), "settings": {"n": i}}))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{project}");
            let id = project["id"].as_str().unwrap();
            let (status, read) = app.get(&format!("/api/projects/{id}"), Some(&key)).await;
            assert_eq!(status, StatusCode::OK, "{read}");
            assert_eq!(read["name"], format!("Shop {i}"));
            assert_eq!(read["settings"], json!({"n": i}));
        }
    });
    futures_join_all(runs).await;

    let name = app.db.name().to_string();
    let servers = server_connections(&name).await;
    assert!(
        servers as usize <= SERVER_POOL,
        "{CLIENTS} clients over {} pooled connections shared {servers} server connections",
        app.pool.status().size
    );
    let (status, st) = app.get("/health", None).await;
    assert_eq!(status, StatusCode::OK, "{st}");
}

/// Awaits every future (concurrently, on this task).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut pending: Vec<_> = set.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for slot in &mut pending {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    all = false;
                }
            }
        }
        if all { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
}

/// A pool of one connection through pgbouncer (2 server connections).
async fn one_connection_pool(bouncer: &PgBouncer, db: &TestDb, mode: StatementMode) -> Db {
    let mut config = Config::from_lookup(&|_| None).unwrap();
    config.database.statement_mode = mode;
    config.database.pool_min = 1;
    config.database.pool_max = 1;
    // Prepared mode sends the session timeouts as startup options, which
    // this pgbouncer (rightly) refuses: leave them out to see the statements fail.
    if mode == StatementMode::Prepared {
        config.database.statement_timeout = Duration::ZERO;
        config.database.lock_timeout = Duration::ZERO;
        config.database.idle_in_transaction_timeout = Duration::ZERO;
    }
    Db::connect(&config.database, &bouncer.config(db.name())).await.expect("pool connects through pgbouncer")
}

/// Named statements break under transaction pooling, unnamed ones do not:
/// devx's connection prepares a statement on one server connection, another
/// client then holds that server connection in a transaction, and devx runs
/// the statement again, necessarily on the other server connection.
#[tokio::test]
async fn prepared_statements_break_under_transaction_pooling_and_unnamed_ones_do_not() {
    let bouncer = PgBouncer::start(2).await;
    for mode in [StatementMode::Prepared, StatementMode::Unnamed] {
        let db = TestDb::empty().await;
        let pool = one_connection_pool(&bouncer, &db, mode).await;
        let sql = "SELECT $1::int + 1";
        let client = pool.client().await.unwrap();
        let first: i32 = client.query_one(sql, &[&1i32]).await.expect("first run").get(0);
        assert_eq!(first, 2);

        // Another client takes the (only, most recently used) server connection.
        let other = connect(&bouncer.config(db.name())).await;
        other.batch_execute("BEGIN; SELECT 1").await.unwrap();

        let second = client.query_one(sql, &[&2i32]).await;
        match mode {
            StatementMode::Prepared => {
                let err = second.expect_err("a named statement is not on the other server connection");
                assert!(format!("{err:?}").contains("does not exist"), "{err:?}");
                // What a 500's log line says: PostgreSQL's words and the fix.
                let said = err.to_string();
                assert!(said.contains("prepared statement") && said.contains("does not exist"), "{said}");
                assert!(said.contains("DB_STATEMENT_MODE=unnamed"), "{said}");
            }
            StatementMode::Unnamed => assert_eq!(second.expect("unnamed mode works").get::<_, i32>(0), 3),
        }
        // A transaction in unnamed mode: its statements share one server connection.
        if mode == StatementMode::Unnamed {
            let mut client = client;
            let tx = client.transaction_as("system:test").await.unwrap();
            let actor: String = tx.query_one("SELECT current_setting('devx.actor')", &[]).await.unwrap().get(0);
            assert_eq!(actor, "system:test");
            // The session timeouts, which cannot travel as startup options
            // through pgbouncer, hold inside every transaction.
            let lock: String = tx.query_one("SHOW lock_timeout", &[]).await.unwrap().get(0);
            assert_eq!(lock, "5s");
            tx.commit().await.unwrap();
        }
        other.batch_execute("COMMIT").await.unwrap();
        pool.close();
    }
}

#[tokio::test]
async fn concurrent_migrate_up_through_pgbouncer_applies_each_migration_once() {
    let bouncer = PgBouncer::start(4).await;
    let db = TestDb::empty().await;
    let children: Vec<_> = (0..4)
        .map(|_| {
            devx_command()
                .env("DATABASE_URL", bouncer.url(db.name()))
                .env("DATABASE_MIGRATION_URL", db.url())
                .env("DB_STATEMENT_MODE", "unnamed")
                .args(["migrate", "up"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("devx migrate up starts")
        })
        .collect();
    let outputs: Vec<_> = tokio::task::spawn_blocking(move || {
        children.into_iter().map(|c| c.wait_with_output().expect("devx migrate up ends")).collect()
    })
    .await
    .unwrap();
    for out in &outputs {
        assert!(
            out.status.success(),
            "migrate up failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let expected = MigrationSet::embedded().unwrap().len() as i64;
    let row = db
        .client()
        .await
        .query_one("SELECT count(*), count(DISTINCT id) FROM devx_meta.schema_migrations", &[])
        .await
        .unwrap();
    let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!((rows, distinct), (expected, expected), "every migration applied exactly once");
}

/// Retention's lock is a transaction lock in unnamed mode: it still keeps two
/// runs apart, and nothing is left on pgbouncer's server connections after.
#[tokio::test]
async fn retention_through_pgbouncer_leaves_no_lock_behind() {
    use devx::retention::{self, RetentionError, RunOptions};
    let bouncer = PgBouncer::start(4).await;
    let db = TestDb::migrated().await;
    let mut config = Config::from_lookup(&|_| None).unwrap();
    config.database.statement_mode = StatementMode::Unnamed;
    config.database.pool_max = 4;
    let pool = Db::connect(&config.database, &bouncer.config(db.name())).await.expect("pool connects");

    let other = db.client().await;
    other.execute("SELECT pg_advisory_lock(hashtext('devx.retention'))", &[]).await.unwrap();
    let busy = retention::run(&pool, &RunOptions::default()).await;
    assert!(matches!(busy, Err(RetentionError::Busy)), "{busy:?}");
    other.execute("SELECT pg_advisory_unlock(hashtext('devx.retention'))", &[]).await.unwrap();

    let report = retention::run(&pool, &RunOptions::default()).await.expect("retention runs");
    assert!(!report.failed(), "{report:?}");
    let locks: i64 = other
        .query_one(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
              WHERE l.locktype = 'advisory' AND d.datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(locks, 0, "no advisory lock outlives the run on a server connection");
    pool.close();
}

/// Prepared mode through PgBouncer in transaction mode: the refusal of the
/// session options is named, with the setting that fixes it.
#[tokio::test]
async fn pgbouncer_refusing_startup_options_points_to_unnamed_mode() {
    let bouncer = PgBouncer::start(2).await;
    let db = TestDb::migrated().await;
    let out =
        devx_command().env("DATABASE_URL", bouncer.url(db.name())).args(["db", "health"]).output().expect("devx runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("unsupported startup parameter"), "{stdout}");
    assert!(stdout.contains("set DB_STATEMENT_MODE=unnamed"), "{stdout}");
}
