//! Test databases on one PostgreSQL server (127.0.0.1:5432 as `postgres`, or
//! `DEVX_TEST_PG_URL`): every test gets a fresh database, dropped when its
//! `TestDb` drops.
//!
//! `TestDb::migrated()` clones `devx_tpl_<fingerprint>`, a template database
//! built once per migration set by running the embedded migrations through
//! the engine, so a test does not pay for the migrations. Processes
//! coordinate through advisory locks in the `postgres` database:
//! - `TEMPLATE_LOCK` serializes building templates and cleaning up;
//! - each process holds a shared lock on the template it uses for its whole
//!   life (a lease), so a template from an older migration set is dropped
//!   only once no process uses it.
//!
//! Test databases are named `devx_t_<pid>_<n>`; on first use a process drops
//! those left behind by processes that no longer run (local servers only).
//!
//! Faults are never injected into the shared server, which every other test
//! process is using at the same time. A test that terminates its database's
//! backends or refuses its connections (through `outage`) gets its database
//! alone on a [`PrivateServer`] of its own instead, with
//! [`TestDb::migrated_private`] (or `TestApp::spawn_private`): the embedded
//! migrations are run there directly, and the server is stopped and its
//! directory removed when the `TestDb` drops. Tests that kill, restart or
//! reconfigure a server start a [`PrivateServer`] themselves.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use devx::migrate::{MigrateOptions, MigrationSet, Migrator};
use tokio::sync::OnceCell;
use tokio_postgres::Client;

/// Serializes template builds and cleanup across test processes.
const TEMPLATE_LOCK: i64 = 0x6465_7678_7465_7374; // "devxtest"
/// First key of a template's lease (two-key advisory lock form); the second
/// is taken from the template's fingerprint.
const LEASE_CLASS: i32 = 0x6465_7678; // "devx"

static NEXT: AtomicUsize = AtomicUsize::new(0);
static TEMPLATE: OnceCell<String> = OnceCell::const_new();
static SWEPT: OnceCell<()> = OnceCell::const_new();

/// The server every test uses, without a database name.
fn server() -> tokio_postgres::Config {
    match std::env::var("DEVX_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => url.parse().expect("DEVX_TEST_PG_URL is a PostgreSQL connection URL"),
        _ => {
            let mut cfg = tokio_postgres::Config::new();
            cfg.host("127.0.0.1").port(5432).user("postgres");
            cfg
        }
    }
}

/// The test server, without a database name (for tests that put something
/// in front of it).
pub fn server_config() -> tokio_postgres::Config {
    server()
}

fn target(dbname: &str) -> tokio_postgres::Config {
    let mut cfg = server();
    cfg.dbname(dbname);
    cfg.application_name("devx-tests");
    cfg
}

/// A connection to `cfg` (no TLS), driven by a task of its own.
pub async fn connect(cfg: &tokio_postgres::Config) -> Client {
    let (client, connection) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test server ({:?}): {e}", cfg.get_dbname()));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A connection to the maintenance database `postgres`.
pub async fn admin_client() -> Client {
    connect(&target("postgres")).await
}

/// The devx binary, with no database configured (`DATABASE_URL` and every
/// other devx variable removed) and run from the temp directory, so neither
/// the caller's environment nor a `.env` file leaks in. Set `DATABASE_URL`
/// (e.g. to [`TestDb::url`]) for commands that need a database.
pub fn devx_command() -> Command {
    clean_command(env!("CARGO_BIN_EXE_devx"))
}

/// `program` with the same clean environment and working directory as
/// [`devx_command`] (e.g. a shell running devx commands).
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (name, _, _) in devx::config::VARIABLES {
        cmd.env_remove(name);
    }
    for name in ["POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "RUST_LOG"] {
        cmd.env_remove(name);
    }
    cmd.current_dir(std::env::temp_dir());
    cmd
}

/// A database of its own for one test: on the shared server, dropped
/// (`WITH (FORCE)`) on drop; or alone on a private server, stopped on drop.
pub struct TestDb {
    name: String,
    home: Home,
}

enum Home {
    Shared,
    /// Owned here so that it lives exactly as long as the database.
    Private(Box<PrivateServer>),
}

impl TestDb {
    /// A fresh database with the embedded migrations applied (cloned from the template).
    pub async fn migrated() -> TestDb {
        sweep_stale().await;
        let template = TEMPLATE.get_or_init(ensure_template).await;
        let db = TestDb::create(&format!("TEMPLATE \"{template}\"")).await;
        // CREATE DATABASE copies the template's contents but not the
        // settings a migration gave the database itself (`search_path`):
        // copy them, so the clone is what `devx migrate up` would leave.
        let admin = admin_client().await;
        let settings: Vec<String> = admin
            .query(
                "SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase \
                 WHERE d.datname = $1 AND s.setrole = 0",
                &[template],
            )
            .await
            .expect("the template's settings are readable")
            .iter()
            .map(|row| row.get(0))
            .collect();
        for setting in settings {
            let (name, value) = setting.split_once('=').expect("a setting is name=value");
            let sql = format!("ALTER DATABASE \"{}\" SET {name} = {value}", db.name);
            admin.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        db
    }

    /// A fresh migrated database alone on a new [`PrivateServer`] (data in
    /// `/tmp/<prefix>*`), for a test that injects faults into it. Fails
    /// loudly where PostgreSQL's server binaries are missing, rather than
    /// letting the test pass without running.
    pub async fn migrated_private(prefix: &str) -> TestDb {
        let server = PrivateServer::start(prefix)
            .await
            .expect("the private server starts (are PostgreSQL's server binaries installed?)");
        let db = TestDb {
            name: format!("devx_t_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)),
            home: Home::Private(Box::new(server)),
        };
        // One database per server: a template would cost as much as the
        // migrations it saves.
        let admin = db.admin_client().await;
        admin.batch_execute(&format!("CREATE DATABASE \"{}\" TEMPLATE template0", db.name)).await.unwrap();
        let set = MigrationSet::embedded().expect("the embedded migrations are valid");
        migrate_up(db.client().await, set).await;
        db
    }

    /// A fresh, empty database (from `template0`).
    pub async fn empty() -> TestDb {
        sweep_stale().await;
        TestDb::create("TEMPLATE template0").await
    }

    async fn create(options: &str) -> TestDb {
        let name = format!("devx_t_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let admin = admin_client().await;
        let sql = format!("CREATE DATABASE \"{name}\" {options}");
        let mut attempt = 0;
        loop {
            match admin.batch_execute(&sql).await {
                Ok(()) => break,
                // The template is briefly busy (another session copying it).
                Err(e) if attempt < 20 && e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{sql}: {e}"),
            }
        }
        TestDb { name, home: Home::Shared }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this database is alone on a private server of its own.
    pub fn is_private(&self) -> bool {
        matches!(self.home, Home::Private(_))
    }

    /// The server this database is on, without a database name.
    fn server(&self) -> tokio_postgres::Config {
        match &self.home {
            Home::Shared => server(),
            Home::Private(private) => {
                // Not the target itself: it names devx's application.
                let target = &private.server.target;
                let mut cfg = tokio_postgres::Config::new();
                for host in target.get_hosts() {
                    match host {
                        tokio_postgres::config::Host::Tcp(h) => cfg.host(h),
                        tokio_postgres::config::Host::Unix(p) => cfg.host_path(p),
                    };
                }
                for port in target.get_ports() {
                    cfg.port(*port);
                }
                if let Some(user) = target.get_user() {
                    cfg.user(user);
                }
                cfg
            }
        }
    }

    /// Where this database is.
    pub fn config(&self) -> tokio_postgres::Config {
        let mut cfg = self.server();
        cfg.dbname(&self.name);
        cfg
    }

    /// This database as a `DATABASE_URL` value (key/value form) for `devx_command()`.
    pub fn url(&self) -> String {
        use tokio_postgres::config::Host;
        let cfg = self.config();
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let mut parts = Vec::new();
        match cfg.get_hosts().first() {
            Some(Host::Tcp(h)) => parts.push(format!("host={}", quote(h))),
            Some(Host::Unix(p)) => parts.push(format!("host={}", quote(&p.to_string_lossy()))),
            None => {}
        }
        if let Some(port) = cfg.get_ports().first() {
            parts.push(format!("port={port}"));
        }
        if let Some(user) = cfg.get_user() {
            parts.push(format!("user={}", quote(user)));
        }
        if let Some(pw) = cfg.get_password() {
            parts.push(format!("password={}", quote(&String::from_utf8_lossy(pw))));
        }
        parts.push(format!("dbname={}", quote(&self.name)));
        parts.join(" ")
    }

    /// A direct connection to this database.
    pub async fn client(&self) -> Client {
        let mut cfg = self.config();
        cfg.application_name("devx-tests");
        connect(&cfg).await
    }

    /// A connection to the maintenance database `postgres` of the server
    /// this database is on.
    pub async fn admin_client(&self) -> Client {
        let mut cfg = self.server();
        cfg.dbname("postgres").application_name("devx-tests");
        connect(&cfg).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.is_private() {
            // The server goes with it (dropping `home`), and its data with it.
            return;
        }
        let name = std::mem::take(&mut self.name);
        // Drop may run inside a runtime: use a thread with one of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                admin_client().await.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("warning: could not drop a test database: {e}");
        }
    }
}

fn is_local_server() -> bool {
    use tokio_postgres::config::Host;
    server().get_hosts().iter().all(|h| match h {
        Host::Unix(_) => true,
        Host::Tcp(name) => name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()),
    })
}

/// Drops `devx_t_<pid>_*` databases of processes that are gone (once per process).
async fn sweep_stale() {
    SWEPT
        .get_or_init(|| async {
            if !is_local_server() {
                return;
            }
            let admin = admin_client().await;
            let rows = admin
                .query("SELECT datname FROM pg_database WHERE datname LIKE 'devx\\_t\\_%'", &[])
                .await
                .expect("list test databases");
            for row in rows {
                let name: String = row.get(0);
                let Some(pid) = name.split('_').nth(2).and_then(|p| p.parse::<i32>().ok()) else { continue };
                if pid as u32 == std::process::id() || process_alive(pid) {
                    continue;
                }
                if let Err(e) = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await {
                    eprintln!("warning: could not drop stale test database {name}: {e}");
                }
            }
        })
        .await;
}

fn process_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

/// The template for the embedded migrations: built if missing (by one
/// process at a time), leased for this process's life, and older templates
/// nobody leases dropped. Returns its name.
async fn ensure_template() -> String {
    let set = MigrationSet::embedded().expect("the embedded migrations are valid");
    let fingerprint = set.fingerprint();
    let name = format!("devx_tpl_{}", &fingerprint[..16]);
    let admin = admin_client().await;
    admin.query_one("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK]).await.expect("take the template lock");

    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("look up the template")
        .is_some();
    if !exists {
        build_template(&admin, &name, set).await;
    }
    lease(&name);
    drop_unused_templates(&admin, &name).await;

    admin.query_one("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK]).await.expect("release the template lock");
    name
}

/// Runs `set` on the empty database `client` is connected to, through the
/// engine, as `devx migrate up` would; the connection closes when done.
async fn migrate_up(client: Client, set: MigrationSet) {
    let mut migrator = Migrator::new(client, set, MigrateOptions::default());
    if let Err(e) = migrator.up(None).await {
        panic!("the embedded migrations fail on an empty database:\n{e}");
    }
}

/// Builds under a temporary name and renames at the end, so the template's
/// name exists only once it is complete.
async fn build_template(admin: &Client, name: &str, set: MigrationSet) {
    let building = format!("{name}_build");
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE \"{building}\" TEMPLATE template0")).await.unwrap();
    migrate_up(connect(&target(&building)).await, set).await;
    // The dropped connection closes asynchronously; RENAME needs it gone.
    for _ in 0..100 {
        let busy: i64 = admin
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", &[&building])
            .await
            .unwrap()
            .get(0);
        if busy == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{building}\" RENAME TO \"{name}\";
             ALTER DATABASE \"{name}\" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false;
             COMMENT ON DATABASE \"{name}\" IS 'devx test template (tests/it/harness.rs)'"
        ))
        .await
        .unwrap_or_else(|e| panic!("finishing the template {name}: {e}"));
}

/// The second lease key: the first 8 hex digits of the fingerprint.
fn lease_key(template: &str) -> Option<i32> {
    let hex = template.strip_prefix("devx_tpl_")?;
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(&hex[..8], 16).ok().map(|k| k as i32))
        .flatten()
}

/// Holds a shared lock on the template for the rest of this process's life,
/// on a connection owned by a thread of its own (test runtimes come and go).
fn lease(template: &str) {
    let key = lease_key(template).expect("template names carry a fingerprint");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let client = admin_client().await;
            client
                .query_one("SELECT pg_advisory_lock_shared($1, $2)", &[&LEASE_CLASS, &key])
                .await
                .expect("lease the template");
            let _ = ready_tx.send(());
            // Keep the session (and its lock) until the process exits.
            std::future::pending::<()>().await;
            drop(client);
        });
    });
    ready_rx.recv().expect("the lease thread took its lock");
}

/// Drops templates of other migration sets that no running process leases,
/// and unfinished builds (called holding `TEMPLATE_LOCK`).
async fn drop_unused_templates(admin: &Client, current: &str) {
    let rows = admin
        .query("SELECT datname FROM pg_database WHERE datname LIKE 'devx\\_tpl\\_%' AND datname <> $1", &[&current])
        .await
        .expect("list templates");
    for row in rows {
        let name: String = row.get(0);
        if name.ends_with("_build") {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
            continue;
        }
        let Some(key) = lease_key(&name) else { continue };
        let free: bool =
            admin.query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LEASE_CLASS, &key]).await.unwrap().get(0);
        if !free {
            continue;
        }
        // Two statements: DROP DATABASE refuses to run in a (multi-statement) transaction.
        let mut dropped = admin.batch_execute(&format!("ALTER DATABASE \"{name}\" WITH IS_TEMPLATE false")).await;
        if dropped.is_ok() {
            dropped = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
        }
        if let Err(e) = dropped {
            eprintln!("warning: could not drop the unused template {name}: {e}");
        }
        let _ = admin.query_one("SELECT pg_advisory_unlock($1, $2)", &[&LEASE_CLASS, &key]).await;
    }
}

/// A data directory in /tmp that the server's unprivileged user can reach
/// when the tests run as root.
pub fn private_data_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The default configuration (the embedded database) with its data in `dir`.
pub fn embedded_config(dir: &Path) -> devx::config::Config {
    let mut config = devx::config::Config::from_lookup(&|_| None).expect("default configuration is valid");
    assert_eq!(config.database.source, devx::config::DbSource::EmbeddedDefault);
    config.data_dir = dir.to_path_buf();
    config
}

/// As if no local server ran: the only place probed is a port nobody uses.
pub fn no_local_server() -> devx::embedded::ResolveOptions {
    devx::embedded::ResolveOptions {
        probe_targets: vec![devx::embedded::ProbeTarget::tcp("127.0.0.1", 1)],
        ..Default::default()
    }
}

/// A private PostgreSQL server in a temporary directory (devx's embedded
/// default), for tests that kill or terminate things; a devx child process
/// given the same `DEVX_DATA_DIR` uses it too. Dropped, it stops the server
/// (if no devx child still uses it) and removes the directory.
pub struct PrivateServer {
    /// Declared before `dir`, so it is dropped first: the server stops while
    /// its data and lock files still exist, instead of being left running
    /// over a deleted directory.
    pub server: devx::embedded::ResolvedDatabase,
    /// The configuration that resolved to it.
    pub config: devx::config::Config,
    pub dir: tempfile::TempDir,
}

impl PrivateServer {
    /// `None` when this machine has no PostgreSQL server binaries.
    pub async fn start(prefix: &str) -> Option<PrivateServer> {
        PrivateServer::start_in(private_data_dir(prefix)).await
    }

    /// Started in `dir` (from [`private_data_dir`]): its socket is
    /// `<dir>/postgres/.s.PGSQL.5432`, so a test can point devx at it first.
    pub async fn start_in(dir: tempfile::TempDir) -> Option<PrivateServer> {
        devx::embedded::find_binaries()?;
        let config = embedded_config(dir.path());
        let server =
            devx::embedded::resolve_with(&config, &no_local_server()).await.expect("the private server starts");
        Some(PrivateServer { server, config, dir })
    }

    pub async fn client(&self) -> Client {
        connect(&self.server.target).await
    }

    /// `devx` on this server (through its data directory).
    pub fn devx(&self) -> Command {
        let mut cmd = devx_command();
        cmd.env("DEVX_DATA_DIR", self.dir.path()).env("DEVX_LOG", "warn");
        cmd
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}
