//! Where the database is: as configured, or, with nothing configured, the
//! embedded default.
//!
//! # The embedded default
//!
//! With no `DATABASE_URL` and no `DB_*` set, [`resolve`] finds a database that
//! works on a fresh machine, without Docker and without downloading anything:
//!
//! 1. **A local server.** It tries the unix sockets in `/var/run/postgresql`
//!    and `/tmp`, then `127.0.0.1:5432` (or, as libpq, `$PGHOST` and
//!    `$PGPORT`), as `$PGUSER` if set, else as `postgres` and the OS user,
//!    and takes the first server that lets one of them in without a
//!    password (trust or peer authentication) and where database `devx`
//!    exists or may be created. It creates `devx` if missing. devx never stops
//!    such a server. A server that answers but refuses devx (peer
//!    authentication for another user, a password asked) is said in one
//!    line (where, as whom, why) before devx falls back to:
//! 2. **A private server** from the system's PostgreSQL binaries (found by
//!    `pg_config --bindir`, then `/usr/lib/postgresql/*/bin` highest version
//!    first, then `PATH`: see [`binaries`]), in `<DEVX_DATA_DIR>/postgres`:
//!    the cluster in `data/` (made by initdb on first use, superuser
//!    `postgres`, trust authentication), listening on no TCP port at all
//!    (`listen_addresses = ''`), only on a unix socket in that 0700 directory,
//!    with `pg_stat_statements` preloaded when it is installed. Its log is
//!    `server.log` beside it.
//!
//! Once a private cluster exists it is preferred to a local server, so that a
//! user's data does not seem to vanish when a system server appears later. The
//! choice is the pure function `decide`.
//!
//! When devx runs as root, PostgreSQL refuses to run; the private server then
//! runs as the owner of the existing cluster, else as `postgres`, else as
//! `nobody` (set in the child between fork and exec), and its directory is
//! handed to that user, which must be able to reach it (checked, with advice).
//!
//! # Sharing and stopping the private server
//!
//! Several devx processes (a `devx serve` and a `devx migrate status` next to
//! it) share one private server. Two `flock(2)` locks in its directory do the
//! bookkeeping; the kernel drops them when a process dies, however it dies:
//!
//! - `users.lock`: every process that uses the server holds a **shared** lock
//!   on it for as long as it does.
//! - `lifecycle.lock`: held **exclusively**, briefly, by a process that is
//!   starting the server or deciding whether to stop it. Starting and stopping
//!   never interleave.
//!
//! Starting: take the lifecycle lock, take a shared `users.lock`; if the
//! socket answers, the server runs: use it; else initdb if needed, rewrite
//! `data/devx.conf`, `pg_ctl start -w`, and record the postmaster's identity
//! (pid and start time from `postmaster.pid`) in `started-by-devx`. Release
//! the lifecycle lock.
//!
//! Stopping ([`ResolvedDatabase::shutdown`], or the guard's `Drop` after a
//! panic or an early return): take the lifecycle lock, drop the shared
//! `users.lock`, and try to lock `users.lock` exclusively without waiting.
//! If that fails another devx process still uses the server: leave it
//! running. Otherwise this was the last user: if the running postmaster is
//! the one recorded in `started-by-devx`, stop it with `pg_ctl stop -m fast`
//! (a server someone started by hand is left alone).
//!
//! So the server is stopped by the last devx process to leave it, which is
//! the one that started it unless another process joined meanwhile. This
//! rather than "only the starter stops it": a `devx db health` that happened
//! to start the server must neither wait for a long `devx serve` that joined
//! it, nor leave the server running after that `devx serve` is gone.
//!
//! A devx killed outright (SIGKILL, or Ctrl-C on a command other than
//! `serve`) cannot stop the server; the next devx finds it running, adopts it
//! (its identity is still the recorded one), and stops it when it leaves.
//!
//! Environment: like libpq, the probe honours `PGHOST`, `PGPORT` and
//! `PGUSER`; binaries are looked for on `PATH`. The server's own programs run without any `PG*` variable.

pub mod binaries;
mod probe;
mod server;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use binaries::{Binaries, PgVersion, find_binaries};
pub use probe::{ProbeHost, ProbeTarget};

use crate::config::{Config, DbSource, masked_target};
use binaries::BinariesError;
use probe::LocalServer;

/// The database devx uses on a local or private server.
pub const DATABASE: &str = "devx";

/// The database a command will use, and the private server behind it if
/// there is one.
pub struct ResolvedDatabase {
    pub target: tokio_postgres::Config,
    /// Where it came from, for logs: `configured`, `local server on ...`,
    /// `private server in ...`.
    pub origin: String,
    guard: Guard,
}

impl fmt::Debug for ResolvedDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedDatabase")
            .field("target", &masked_target(&self.target))
            .field("origin", &self.origin)
            .field("private", &self.guard.0.is_some())
            .finish()
    }
}

/// This process's use of the private server; released on drop.
struct Guard(Option<server::Lease>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(lease) = self.0.take() {
            // After a panic or an early return: stop synchronously (a fast
            // shutdown takes well under a second).
            lease.release();
        }
    }
}

impl ResolvedDatabase {
    /// Stops the private server if this process started it (or adopted it)
    /// and no other devx process uses it. Nothing happens for a configured or
    /// local server.
    pub async fn shutdown(self) {
        let ResolvedDatabase { mut guard, .. } = self;
        if let Some(lease) = guard.0.take()
            && let Err(e) = tokio::task::spawn_blocking(move || lease.release()).await
        {
            tracing::warn!(error = %e, "stopping the private PostgreSQL server failed");
        }
    }
}

/// Why no database could be found or started.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("{}", no_database_message(tried, looked, root))]
    NoDatabase {
        /// The local servers tried, and why each failed.
        tried: Vec<String>,
        /// Where the binaries were looked for.
        looked: String,
        root: PathBuf,
    },
    #[error(
        "the private PostgreSQL cluster {data} was created by PostgreSQL {wanted}, but only {found} is \
         installed here: install PostgreSQL {wanted}'s server (Debian/Ubuntu: `apt-get install \
         postgresql-{wanted}`), upgrade the cluster with pg_upgrade, or move it away to start afresh; \
         or set DATABASE_URL"
    )]
    WrongVersion { data: PathBuf, wanted: PgVersion, found: String },
    #[error(
        "devx runs as root, and PostgreSQL refuses to: it runs its private server as user `postgres` or \
         `nobody`, and neither exists. Create one (`useradd --system postgres`), run devx as another \
         user, or set DATABASE_URL"
    )]
    NoServerUser,
    #[error(
        "the private PostgreSQL server runs as user `{user}` (PostgreSQL refuses to run as root), and \
         that user cannot reach {root}: it may not enter {blocker}. Set DEVX_DATA_DIR to a directory it \
         can reach (for example /var/lib/devx), allow it in (`chmod o+x {blocker}`), or set DATABASE_URL"
    )]
    Unreachable { user: String, root: PathBuf, blocker: PathBuf },
    #[error(
        "the private PostgreSQL server's socket {path} would be longer than the {max} bytes unix sockets \
         allow: set DEVX_DATA_DIR to a shorter path",
        max = server::MAX_SOCKET_PATH
    )]
    SocketPathTooLong { path: PathBuf },
    #[error("{path} cannot hold the private PostgreSQL server's socket: set DEVX_DATA_DIR to a plain path")]
    UnusablePath { path: PathBuf },
    #[error("cannot {action} {path}: {error}")]
    Io { action: String, path: PathBuf, error: std::io::Error },
    #[error("{what} failed ({status}):\n{output}")]
    Command { what: String, status: String, output: String },
    #[error(
        "waited {}s for another devx process that is starting or stopping the private PostgreSQL server \
         (it holds {path}); try again, or stop that process",
        waited.as_secs()
    )]
    LockTimeout { path: PathBuf, waited: Duration },
    #[error("cannot use database {DATABASE} on the {origin}: {error}")]
    Database { origin: String, error: String },
}

impl EmbeddedError {
    fn io(action: impl Into<String>, path: &std::path::Path, error: std::io::Error) -> Self {
        Self::Io { action: action.into(), path: path.to_path_buf(), error }
    }
}

fn no_database_message(tried: &[String], looked: &str, root: &std::path::Path) -> String {
    let tried = if tried.is_empty() { "nothing".to_string() } else { tried.join("; ") };
    format!(
        "no PostgreSQL database to use: no local server let devx in without a password (tried {tried}), \
         and no PostgreSQL server binaries were found to start a private one in {root} (looked in {looked}).\n\
         Either install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`; Fedora/RHEL: \
         `dnf install postgresql-server`; macOS: `brew install postgresql`) and run devx again, \
         or set DATABASE_URL to a server you have, e.g. DATABASE_URL=postgres://user:password@host:5432/devx",
        root = root.display()
    )
}

/// What to do, given what was found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Use a local server (with a warning to log, if a private cluster
    /// exists but cannot be started).
    Local(LocalServer, Option<String>),
    /// Start (or join) the private server with these binaries.
    Private(Binaries),
    /// Neither is possible.
    Fail(BinariesError),
}

/// The choice of database under the embedded default: an existing private
/// cluster that can be started, else a local server that answered, else a new
/// private cluster, else nothing.
pub(crate) fn decide(
    private_initialized: bool,
    local: Option<LocalServer>,
    binaries: Result<Binaries, BinariesError>,
) -> Decision {
    match (private_initialized, local, binaries) {
        (true, _, Ok(b)) => Decision::Private(b),
        (true, Some(local), Err(e)) => {
            let why = match e {
                BinariesError::NotFound { .. } => "no PostgreSQL server binaries were found".to_string(),
                BinariesError::WrongVersion { wanted, .. } => {
                    format!("it needs PostgreSQL {wanted}, which is not installed")
                }
            };
            let warning = format!(
                "devx's private PostgreSQL cluster exists but cannot be started ({why}); using the {} \
                 instead, without the data of the private cluster",
                local.describe()
            );
            Decision::Local(local, Some(warning))
        }
        (false, Some(local), _) => Decision::Local(local, None),
        (false, None, Ok(b)) => Decision::Private(b),
        (_, None, Err(e)) => Decision::Fail(e),
    }
}

/// Where [`resolve_with`] looks for a local server.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// Places a local server may answer, tried in order; empty skips straight
    /// to the private server.
    pub probe_targets: Vec<ProbeTarget>,
    /// Users to try at each place, in order.
    pub probe_users: Vec<String>,
    /// How long to wait for one answer.
    pub probe_timeout: Duration,
}

impl Default for ResolveOptions {
    /// The usual sockets and 127.0.0.1:5432 (or `$PGHOST`, `$PGPORT`), as
    /// `$PGUSER`, else `postgres` and the OS user.
    fn default() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        let pguser = var("PGUSER");
        let os_user = nix::unistd::User::from_uid(nix::unistd::geteuid()).ok().flatten().map(|u| u.name);
        Self {
            probe_targets: ProbeTarget::from_libpq(var("PGHOST").as_deref(), var("PGPORT").as_deref()),
            probe_users: probe::candidate_users(pguser.as_deref(), os_user.as_deref()),
            probe_timeout: Duration::from_secs(2),
        }
    }
}

/// The database to use: as configured (origin `configured`), or under the
/// embedded default a local server or the private one (see the module doc).
pub async fn resolve(config: &Config) -> Result<ResolvedDatabase, EmbeddedError> {
    resolve_with(config, &ResolveOptions::default()).await
}

/// [`resolve`], looking for local servers where `options` says.
pub async fn resolve_with(config: &Config, options: &ResolveOptions) -> Result<ResolvedDatabase, EmbeddedError> {
    if let DbSource::Explicit(target) = &config.database.source {
        return Ok(ResolvedDatabase { target: (**target).clone(), origin: "configured".into(), guard: Guard(None) });
    }
    let layout = server::Layout::new(&config.data_dir)?;
    let mut report = probe::probe(&options.probe_targets, &options.probe_users, DATABASE, options.probe_timeout).await;
    let wanted = layout.data_version();
    let binaries = tokio::task::spawn_blocking(move || binaries::find(wanted))
        .await
        .unwrap_or_else(|e| Err(BinariesError::NotFound { looked: format!("(the search failed: {e})") }));

    match decide(layout.initialized(), report.found.take(), binaries) {
        Decision::Local(local, warning) => {
            if let Some(warning) = warning {
                tracing::warn!("{warning}");
            }
            let origin = local.describe();
            let admin = local.target.config(&local.user, &local.admin_db);
            if probe::ensure_database(&admin, DATABASE).await.map_err(|e| database_error(&origin, &e))? {
                tracing::info!("created database {DATABASE} on the {origin}");
            }
            Ok(ResolvedDatabase { target: local.target.config(&local.user, DATABASE), origin, guard: Guard(None) })
        }
        Decision::Private(binaries) => {
            if let Some(refusals) = report.refusals() {
                tracing::warn!(
                    "{refusals}; using devx's private PostgreSQL server in {} instead",
                    layout.root.display()
                );
            }
            let run_as = server::run_as(&layout)?;
            let lease = {
                let layout = layout.clone();
                tokio::task::spawn_blocking(move || server::acquire(&layout, &binaries, run_as))
                    .await
                    .map_err(|e| EmbeddedError::Database { origin: "private server".into(), error: e.to_string() })??
            };
            let origin = format!(
                "private server in {} ({})",
                layout.root.display(),
                if lease.started { "started by this process" } else { "already running, shared" }
            );
            // From here on, an error releases the server through the guard.
            let guard = Guard(Some(lease));
            ensure_private_database(&layout, &origin).await?;
            Ok(ResolvedDatabase { target: layout.target(DATABASE), origin, guard })
        }
        Decision::Fail(BinariesError::NotFound { looked }) => {
            Err(EmbeddedError::NoDatabase { tried: report.tried, looked, root: layout.root })
        }
        Decision::Fail(BinariesError::WrongVersion { wanted, found }) => {
            let found = found
                .iter()
                .map(|b| match b.version {
                    Some(v) => format!("PostgreSQL {v} ({})", b.bindir.display()),
                    None => b.bindir.display().to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            Err(EmbeddedError::WrongVersion { data: layout.data, wanted, found })
        }
    }
}

/// Which database a command would use and why, in one sentence, without
/// starting or creating anything (`devx config check`).
pub async fn explain(config: &Config) -> String {
    explain_with(config, &ResolveOptions::default()).await
}

/// [`explain`], looking for local servers where `options` says.
pub async fn explain_with(config: &Config, options: &ResolveOptions) -> String {
    if let DbSource::Explicit(target) = &config.database.source {
        return format!("{} (configured)", masked_target(target));
    }
    let layout = match server::Layout::new(&config.data_dir) {
        Ok(layout) => layout,
        Err(e) => return format!("none: {e}"),
    };
    let mut report = probe::probe(&options.probe_targets, &options.probe_users, DATABASE, options.probe_timeout).await;
    let wanted = layout.data_version();
    let binaries = tokio::task::spawn_blocking(move || binaries::find(wanted))
        .await
        .unwrap_or_else(|e| Err(BinariesError::NotFound { looked: format!("(the search failed: {e})") }));
    let initialized = layout.initialized();
    let refusals = report.refusals().map(|r| format!(": {r}")).unwrap_or_default();
    match decide(initialized, report.found.take(), binaries) {
        Decision::Local(local, warning) => {
            let mut out = format!(
                "database {DATABASE} on the {} (nothing configured, and it lets devx in without a password)",
                local.describe()
            );
            if let Some(warning) = warning {
                out.push_str(&format!("; {warning}"));
            }
            out
        }
        Decision::Private(binaries) => {
            let cluster = if initialized { "its existing cluster" } else { "a new cluster" };
            let version = binaries.version.map_or_else(|| "PostgreSQL".into(), |v| format!("PostgreSQL {v}"));
            let why = if initialized {
                "a private cluster exists, and it is preferred to any local server".to_string()
            } else {
                format!("nothing is configured and no local server lets devx in{refusals}")
            };
            format!(
                "database {DATABASE} on devx's private server in {} ({cluster}, {version} from {}, started when \
                 needed), because {why}",
                layout.root.display(),
                binaries.bindir.display()
            )
        }
        Decision::Fail(BinariesError::NotFound { looked }) => {
            format!("none: {}", EmbeddedError::NoDatabase { tried: report.tried, looked, root: layout.root })
        }
        Decision::Fail(BinariesError::WrongVersion { wanted, .. }) => format!(
            "none: the private cluster {} was created by PostgreSQL {wanted}, which is not installed",
            layout.data.display()
        ),
    }
}

/// Creates `devx` on the private server, waiting briefly if the server is
/// still starting up (a server found running may be recovering after a crash).
async fn ensure_private_database(layout: &server::Layout, origin: &str) -> Result<(), EmbeddedError> {
    let admin = layout.target("postgres");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match probe::ensure_database(&admin, DATABASE).await {
            Ok(created) => {
                if created {
                    tracing::info!("created database {DATABASE} on the {origin}");
                }
                return Ok(());
            }
            Err(e)
                if tokio::time::Instant::now() < deadline
                    && (e.code() == Some(&tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW)
                        || e.as_db_error().is_none() && layout.socket_answers()) =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(database_error(origin, &e)),
        }
    }
}

fn database_error(origin: &str, e: &tokio_postgres::Error) -> EmbeddedError {
    let error = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    };
    EmbeddedError::Database { origin: origin.to_string(), error }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalServer {
        LocalServer {
            target: ProbeTarget::unix("/var/run/postgresql", 5432),
            user: "postgres".into(),
            admin_db: "postgres".into(),
        }
    }

    fn bins(version: &str) -> Binaries {
        Binaries {
            bindir: PathBuf::from(format!("/usr/lib/postgresql/{version}/bin")),
            version: PgVersion::parse(version),
        }
    }

    fn not_found() -> BinariesError {
        BinariesError::NotFound { looked: "pg_config --bindir, /usr/lib/postgresql/*/bin, PATH".into() }
    }

    #[test]
    fn a_fresh_machine_prefers_a_local_server_then_a_new_private_one() {
        assert_eq!(decide(false, Some(local()), Ok(bins("16"))), Decision::Local(local(), None));
        assert_eq!(decide(false, Some(local()), Err(not_found())), Decision::Local(local(), None));
        assert_eq!(decide(false, None, Ok(bins("16"))), Decision::Private(bins("16")));
        assert_eq!(decide(false, None, Err(not_found())), Decision::Fail(not_found()));
    }

    #[test]
    fn an_existing_private_cluster_keeps_the_data_where_it_is() {
        assert_eq!(decide(true, Some(local()), Ok(bins("15"))), Decision::Private(bins("15")));
        assert_eq!(decide(true, None, Ok(bins("15"))), Decision::Private(bins("15")));
        // It cannot be started: a local server is better than nothing, with a warning.
        let Decision::Local(server, Some(warning)) = decide(true, Some(local()), Err(not_found())) else {
            panic!("expected the local server with a warning");
        };
        assert_eq!(server, local());
        assert!(warning.contains("no PostgreSQL server binaries"), "{warning}");
        let wrong = BinariesError::WrongVersion { wanted: PgVersion::parse("13").unwrap(), found: vec![bins("16")] };
        let Decision::Local(_, Some(warning)) = decide(true, Some(local()), Err(wrong.clone())) else {
            panic!("expected the local server with a warning");
        };
        assert!(warning.contains("PostgreSQL 13"), "{warning}");
        assert_eq!(decide(true, None, Err(wrong.clone())), Decision::Fail(wrong));
    }

    #[test]
    fn nothing_found_says_what_to_install_or_set() {
        let err = EmbeddedError::NoDatabase {
            tried: vec!["/var/run/postgresql/.s.PGSQL.5432: no socket".into(), "127.0.0.1:5432: refused".into()],
            looked: "pg_config --bindir (no pg_config), /usr/lib/postgresql/*/bin, PATH".into(),
            root: PathBuf::from("/home/me/app/.devx/postgres"),
        };
        let msg = err.to_string();
        for part in [
            "apt-get install postgresql`",
            "DATABASE_URL=postgres://",
            "/home/me/app/.devx/postgres",
            "127.0.0.1:5432: refused",
            "/usr/lib/postgresql/*/bin",
        ] {
            assert!(msg.contains(part), "{part:?} missing from: {msg}");
        }
    }

    #[test]
    fn other_errors_give_advice() {
        let wrong = EmbeddedError::WrongVersion {
            data: "/x/postgres/data".into(),
            wanted: PgVersion::parse("15").unwrap(),
            found: "PostgreSQL 16 (/usr/lib/postgresql/16/bin)".into(),
        };
        assert!(wrong.to_string().contains("apt-get install postgresql-15"), "{wrong}");
        let unreachable = EmbeddedError::Unreachable {
            user: "postgres".into(),
            root: "/root/app/.devx/postgres".into(),
            blocker: "/root".into(),
        };
        let msg = unreachable.to_string();
        assert!(msg.contains("DEVX_DATA_DIR") && msg.contains("chmod o+x /root"), "{msg}");
        assert!(EmbeddedError::NoServerUser.to_string().contains("useradd"));
    }

    #[tokio::test]
    async fn an_explicit_configuration_is_used_as_is() {
        let mut config = Config::from_lookup(&|_| None).unwrap();
        let target: tokio_postgres::Config = "postgres://u:p@db.example:6543/app".parse().unwrap();
        config.database.source = DbSource::Explicit(Box::new(target.clone()));
        let resolved = resolve(&config).await.unwrap();
        assert_eq!(resolved.target, target);
        assert_eq!(resolved.origin, "configured");
        resolved.shutdown().await;
    }
}
