//! Looking for a PostgreSQL server that already runs on this machine and lets
//! devx in without a password (trust or peer authentication).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// Where a local server may listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeHost {
    /// A directory holding the server's `.s.PGSQL.<port>` socket.
    Unix(PathBuf),
    /// A host name or address for TCP.
    Tcp(String),
}

/// One place a local server may answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    pub host: ProbeHost,
    pub port: u16,
}

impl ProbeTarget {
    pub fn unix(dir: impl Into<PathBuf>, port: u16) -> Self {
        Self { host: ProbeHost::Unix(dir.into()), port }
    }

    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Self { host: ProbeHost::Tcp(host.into()), port }
    }

    /// The usual places: the Debian and the upstream socket directories, then
    /// the loopback address, all on port 5432.
    pub fn defaults() -> Vec<Self> {
        Self::from_libpq(None, None)
    }

    /// Where libpq would look given `$PGHOST` (comma-separated host names,
    /// addresses or socket directories) and `$PGPORT`; unset, the usual places.
    pub fn from_libpq(pghost: Option<&str>, pgport: Option<&str>) -> Vec<Self> {
        let port = pgport.and_then(|p| p.trim().parse().ok()).unwrap_or(5432);
        match pghost.map(str::trim).filter(|h| !h.is_empty()) {
            Some(hosts) => hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| if h.starts_with('/') { Self::unix(h, port) } else { Self::tcp(h, port) })
                .collect(),
            None => {
                vec![Self::unix("/var/run/postgresql", port), Self::unix("/tmp", port), Self::tcp("127.0.0.1", port)]
            }
        }
    }

    pub fn describe(&self) -> String {
        match &self.host {
            ProbeHost::Unix(dir) => format!("{}/.s.PGSQL.{}", dir.display(), self.port),
            ProbeHost::Tcp(host) => format!("{host}:{}", self.port),
        }
    }

    /// The socket file, for a unix target.
    fn socket(&self) -> Option<PathBuf> {
        match &self.host {
            ProbeHost::Unix(dir) => Some(dir.join(format!(".s.PGSQL.{}", self.port))),
            ProbeHost::Tcp(_) => None,
        }
    }

    pub fn config(&self, user: &str, dbname: &str) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        match &self.host {
            ProbeHost::Unix(dir) => cfg.host_path(dir),
            ProbeHost::Tcp(host) => cfg.host(host),
        };
        cfg.port(self.port).user(user).dbname(dbname).application_name("devx");
        cfg
    }
}

/// The user names to try, in order and without repeats: `$PGUSER` alone
/// when it is set (an explicit choice, as libpq takes it), else `postgres`
/// (the usual superuser) and the OS user (peer authentication's default
/// mapping).
pub fn candidate_users(pguser: Option<&str>, os_user: Option<&str>) -> Vec<String> {
    if let Some(user) = pguser.filter(|u| !u.is_empty()) {
        return vec![user.to_string()];
    }
    let mut users: Vec<String> = Vec::new();
    for user in [pguser, Some("postgres"), os_user].into_iter().flatten() {
        if !user.is_empty() && !users.iter().any(|u| u == user) {
            users.push(user.to_string());
        }
    }
    users
}

/// A local server that answered and that devx may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalServer {
    pub target: ProbeTarget,
    pub user: String,
    /// The database the probe connected to (`postgres`, else `template1`).
    pub admin_db: String,
}

impl LocalServer {
    pub fn describe(&self) -> String {
        format!("local server on {} as {}", self.target.describe(), self.user)
    }
}

/// What probing found, and what was tried (for the error message).
#[derive(Debug, Default)]
pub struct ProbeReport {
    pub found: Option<LocalServer>,
    pub tried: Vec<String>,
    /// The servers that answered but would not let devx in: where, as
    /// whom, and why.
    pub refused: Vec<String>,
}

impl ProbeReport {
    /// One line on the servers that refused devx, if any did.
    pub fn refusals(&self) -> Option<String> {
        match self.refused.len() {
            0 => None,
            1 => Some(format!("a local PostgreSQL server refused devx ({})", self.refused[0])),
            _ => Some(format!("local PostgreSQL servers refused devx ({})", self.refused.join("; "))),
        }
    }
}

/// Tries every target with every user, in order, and stops at the first
/// server that lets a user in who can use database `dbname` (it exists, or the
/// user may create it).
pub async fn probe(targets: &[ProbeTarget], users: &[String], dbname: &str, timeout: Duration) -> ProbeReport {
    let mut report = ProbeReport::default();
    for target in targets {
        if let Some(socket) = target.socket()
            && !socket_exists(&socket)
        {
            report.tried.push(format!("{}: no socket", target.describe()));
            continue;
        }
        for user in users {
            match try_user(target, user, dbname, timeout).await {
                Attempt::Usable(admin_db) => {
                    report.found = Some(LocalServer { target: target.clone(), user: user.clone(), admin_db });
                    return report;
                }
                Attempt::Refused(why) => {
                    let line = format!("{} as {user}: {why}", target.describe());
                    report.refused.push(line.clone());
                    report.tried.push(line);
                }
                Attempt::Unreachable(why) => {
                    // Nobody listens there: other users will not fare better.
                    report.tried.push(format!("{}: {why}", target.describe()));
                    break;
                }
            }
        }
    }
    report
}

fn socket_exists(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

enum Attempt {
    /// Usable, through this database.
    Usable(String),
    /// A server answered but will not serve this user.
    Refused(String),
    /// No server answered.
    Unreachable(String),
}

async fn try_user(target: &ProbeTarget, user: &str, dbname: &str, timeout: Duration) -> Attempt {
    // The `postgres` database exists on every cluster made by initdb; a few
    // clusters drop it, `template1` is the fallback.
    let mut client = None;
    let mut admin = "postgres";
    for admin_db in ["postgres", "template1"] {
        let mut cfg = target.config(user, admin_db);
        cfg.connect_timeout(timeout);
        match tokio::time::timeout(timeout, connect(&cfg)).await {
            Err(_) => return Attempt::Unreachable("no answer".into()),
            Ok(Ok(c)) => {
                client = Some(c);
                admin = admin_db;
                break;
            }
            Ok(Err(e)) => match e.code() {
                Some(code) if *code == SqlState::INVALID_CATALOG_NAME => continue,
                Some(_) => return Attempt::Refused(short_error(&e)),
                // tokio-postgres reports a password request without a
                // password as a client-side error: the server answered.
                None if e.to_string().contains("password") => return Attempt::Refused("asks for a password".into()),
                None => return Attempt::Unreachable(short_error(&e)),
            },
        }
    }
    let Some(client) = client else { return Attempt::Refused("no postgres or template1 database".into()) };
    let usable = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS database_exists, \
                    COALESCE((SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user), false) \
                        AS may_create",
            &[&dbname],
        )
        .await
        .and_then(|row| Ok(row.try_get::<_, bool>("database_exists")? || row.try_get::<_, bool>("may_create")?));
    match usable {
        Ok(true) => Attempt::Usable(admin.to_string()),
        Ok(false) => Attempt::Refused(format!("database {dbname} does not exist and the user may not create it")),
        Err(e) => Attempt::Refused(short_error(&e)),
    }
}

/// Connects without TLS (local servers only) and drives the connection in the
/// background until the client is dropped.
pub async fn connect(cfg: &tokio_postgres::Config) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = cfg.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn short_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                msg = format!("{msg}: {s}");
                source = s.source();
            }
            msg
        }
    }
}

/// Creates database `dbname` through `admin` (a connection target to another
/// database of the same server) unless it exists.
pub async fn ensure_database(admin: &tokio_postgres::Config, dbname: &str) -> Result<bool, tokio_postgres::Error> {
    let client = connect(admin).await?;
    let exists: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS database_exists", &[&dbname])
        .await?
        .try_get("database_exists")?;
    if exists {
        return Ok(false);
    }
    let quoted = format!("\"{}\"", dbname.replace('"', "\"\""));
    match client.batch_execute(&format!("CREATE DATABASE {quoted}")).await {
        Ok(()) => Ok(true),
        // Another process created it meanwhile.
        Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_pguser_then_postgres_then_the_os_user_without_repeats() {
        assert_eq!(candidate_users(Some("alice"), Some("bob")), ["alice"]);
        assert_eq!(candidate_users(None, Some("postgres")), ["postgres"]);
        assert_eq!(candidate_users(Some(""), None), ["postgres"]);
        assert_eq!(candidate_users(None, Some("root")), ["postgres", "root"]);
    }

    #[test]
    fn pghost_and_pgport_choose_where_to_look() {
        assert_eq!(ProbeTarget::from_libpq(None, None), ProbeTarget::defaults());
        assert_eq!(
            ProbeTarget::from_libpq(Some("/run/pg, db.local"), Some("5433")),
            [ProbeTarget::unix("/run/pg", 5433), ProbeTarget::tcp("db.local", 5433)]
        );
        assert!(ProbeTarget::from_libpq(None, Some("6000")).iter().all(|t| t.port == 6000));
    }

    #[test]
    fn targets_describe_themselves() {
        assert_eq!(ProbeTarget::unix("/tmp", 5432).describe(), "/tmp/.s.PGSQL.5432");
        assert_eq!(ProbeTarget::tcp("127.0.0.1", 5433).describe(), "127.0.0.1:5433");
        let cfg = ProbeTarget::unix("/var/run/postgresql", 5432).config("postgres", "devx");
        assert_eq!(cfg.get_hosts(), [tokio_postgres::config::Host::Unix("/var/run/postgresql".into())]);
        assert_eq!(cfg.get_user(), Some("postgres"));
        assert_eq!(cfg.get_dbname(), Some("devx"));
    }

    #[tokio::test]
    async fn nothing_answers_on_an_unused_port_or_a_missing_socket() {
        // Port 1 (tcpmux) is privileged and unused.
        let targets = [ProbeTarget::unix("/nonexistent-devx-dir", 5432), ProbeTarget::tcp("127.0.0.1", 1)];
        let users = candidate_users(None, Some("someone"));
        let report = probe(&targets, &users, "devx", Duration::from_secs(1)).await;
        assert_eq!(report.found, None);
        assert_eq!(report.tried.len(), 2, "{:?}", report.tried);
        assert_eq!(report.tried[0], "/nonexistent-devx-dir/.s.PGSQL.5432: no socket");
        assert!(report.tried[1].starts_with("127.0.0.1:1: "), "{:?}", report.tried);
    }
}
