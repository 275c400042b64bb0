//! The migration engine: devx's own, because no crate has the whole set devx
//! needs (down scripts, per-migration no-transaction opt-out, stamp,
//! checksums with the applied SQL stored, a lock that polls).
//!
//! - [`source`]: the migrations, embedded in the binary or read from a directory.
//! - [`ledger`]: `devx_meta.schema_migrations`, what was applied, when, by whom, with its SQL.
//! - [`lock`]: the session advisory lock that makes concurrent starts migrate once.
//! - [`runner`]: [`Migrator`], the operations (status, up, down, stamp, history, current).
//! - [`split`]: the statement splitter for no-transaction migrations.
//!
//! How a migration flows: take the lock (polling, bounded by
//! `DEVX_MIGRATION_WAIT`), create the ledger if missing, compare the set with
//! the ledger (a changed applied file or an applied id this binary does not
//! know stops everything), then run each pending migration in its own
//! transaction together with its ledger row, under `SET LOCAL lock_timeout`
//! (`DEVX_MIGRATION_LOCK_TIMEOUT`), and release the lock.

pub mod ledger;
pub mod lock;
pub mod runner;
pub mod source;
pub mod split;

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

pub use ledger::AppliedMigration;
pub use lock::{LockHolder, MIGRATION_LOCK_KEY};
pub use runner::{DownReport, DownSource, MigrateOptions, Migrator, PlannedDown, Reverted, Step, UpReport};
pub use source::{CreatedMigration, Migration, MigrationSet, create};

use crate::config::Config;
use crate::db::{DbError, Queryable};

/// Something wrong between the migration set and the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An applied migration's up file differs from what ran.
    Modified {
        id: String,
        name: String,
        applied_checksum: String,
        file_checksum: String,
        /// Only whitespace or comments differ from the SQL that ran.
        cosmetic: bool,
    },
    /// The database has a migration this devx does not know: it is newer.
    UnknownApplied { id: String, name: String },
}

impl Problem {
    pub fn id(&self) -> &str {
        match self {
            Problem::Modified { id, .. } | Problem::UnknownApplied { id, .. } => id,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Modified { id, name, applied_checksum, file_checksum, cosmetic } => {
                write!(
                    f,
                    "{id}_{name}.up.sql was modified after it was applied (checksum {applied_checksum} when applied, \
                     {file_checksum} now): restore the file as it was applied (the SQL that ran is kept in \
                     devx_meta.schema_migrations.up_sql) and put the change into a new migration \
                     (`devx migrate create NAME`)"
                )?;
                if *cosmetic {
                    write!(f, ". Note: only whitespace or comments changed, so the schema it builds is the same")?;
                }
                Ok(())
            }
            Problem::UnknownApplied { id, name } => write!(
                f,
                "{id}_{name} is applied in the database but unknown to this devx: the database is newer than this \
                 devx; run a devx that includes it, or revert it with `devx migrate down` (which uses the down \
                 script stored in the ledger)"
            ),
        }
    }
}

/// Whether two scripts hold the same statements once comments between
/// statements and differences in whitespace are set aside.
pub fn same_statements(a: &str, b: &str) -> bool {
    let statements = |sql: &str| {
        split::split(sql).iter().map(|s| s.sql.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>()
    };
    statements(a) == statements(b)
}

/// A pending migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: String,
    pub name: String,
    pub no_transaction: bool,
}

/// The set compared with the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Ledger rows, in the order they were applied.
    pub applied: Vec<AppliedMigration>,
    /// In id order.
    pub pending: Vec<Pending>,
    pub problems: Vec<Problem>,
    /// Indexes in devx's schemas left invalid by an interrupted concurrent
    /// build (`schema.index`); `devx migrate up` rebuilds them.
    pub invalid_indexes: Vec<String>,
}

impl Status {
    /// Nothing pending, nothing wrong, no index left half-built: what
    /// `devx migrate check` wants.
    pub fn is_clean(&self) -> bool {
        self.pending.is_empty() && self.problems.is_empty() && self.invalid_indexes.is_empty()
    }

    pub fn pending_ids(&self) -> Vec<String> {
        self.pending.iter().map(|p| p.id.clone()).collect()
    }

    /// Compares `set` with the ledger rows `applied`.
    pub fn compute(set: &MigrationSet, applied: Vec<AppliedMigration>) -> Status {
        let mut problems = Vec::new();
        for row in &applied {
            match set.get(&row.id) {
                Some(m) if m.checksum != row.checksum => problems.push(Problem::Modified {
                    id: row.id.clone(),
                    name: m.name.clone(),
                    applied_checksum: row.checksum.clone(),
                    file_checksum: m.checksum.clone(),
                    cosmetic: row.up_sql.as_deref().is_some_and(|ran| same_statements(ran, &m.up)),
                }),
                Some(_) => {}
                None => problems.push(Problem::UnknownApplied { id: row.id.clone(), name: row.name.clone() }),
            }
        }
        let applied_ids: std::collections::HashSet<&str> = applied.iter().map(|r| r.id.as_str()).collect();
        let pending = set
            .migrations()
            .iter()
            .filter(|m| !applied_ids.contains(m.id.as_str()))
            .map(|m| Pending { id: m.id.clone(), name: m.name.clone(), no_transaction: m.no_transaction })
            .collect();
        Status { applied, pending, problems, invalid_indexes: Vec::new() }
    }
}

/// What a migration is, seen from both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    Applied,
    /// Applied, but its file changed since (a [`Problem::Modified`]).
    Modified,
    Pending,
    /// Applied by a newer devx: this binary does not have it.
    Unknown,
}

/// One row of the combined view: a migration of the set or of the ledger.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub state: EntryState,
    /// The ledger row, when applied.
    pub applied: Option<&'a AppliedMigration>,
    /// Of the set's file; false for [`EntryState::Unknown`].
    pub no_transaction: bool,
    pub problem: Option<&'a Problem>,
}

impl Status {
    /// Every migration of `set` in id order, then the applied ones `set` does
    /// not know: what `devx migrate status` prints and the dashboard shows.
    pub fn entries<'a>(&'a self, set: &'a MigrationSet) -> Vec<Entry<'a>> {
        let applied: std::collections::HashMap<&str, &AppliedMigration> =
            self.applied.iter().map(|a| (a.id.as_str(), a)).collect();
        let problem = |id: &str| self.problems.iter().find(|p| p.id() == id);
        let mut entries: Vec<Entry<'a>> = set
            .migrations()
            .iter()
            .map(|m| {
                let row = applied.get(m.id.as_str()).copied();
                let problem = problem(&m.id);
                let state = match (row, problem) {
                    (Some(_), Some(_)) => EntryState::Modified,
                    (Some(_), None) => EntryState::Applied,
                    (None, _) => EntryState::Pending,
                };
                Entry { id: &m.id, name: &m.name, state, applied: row, no_transaction: m.no_transaction, problem }
            })
            .collect();
        entries.extend(self.applied.iter().filter(|a| set.get(&a.id).is_none()).map(|a| Entry {
            id: &a.id,
            name: &a.name,
            state: EntryState::Unknown,
            applied: Some(a),
            no_transaction: false,
            problem: problem(&a.id),
        }));
        entries
    }
}

/// Where a failing statement is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based line in the file.
    pub line: usize,
    pub column: Option<usize>,
    /// 1-based statement number, for scripts run statement by statement.
    pub statement: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.statement {
            write!(f, "statement {n}, ")?;
        }
        write!(f, "line {}", self.line)?;
        if let Some(c) = self.column {
            write!(f, ", column {c}")?;
        }
        Ok(())
    }
}

/// A migration script that PostgreSQL refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFailure {
    /// `<id>_<name>.up.sql` (or `.down.sql`; `(stored down script)` when it
    /// came from the ledger).
    pub file: String,
    pub location: Option<Location>,
    /// PostgreSQL's message, with SQLSTATE, detail, hint and context.
    pub message: String,
    /// Outside a transaction: statements before the failing one stay applied.
    pub no_transaction: bool,
    /// How many statements ran and stay applied (no-transaction scripts).
    pub statements_done: usize,
}

impl fmt::Display for ScriptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "migration {} failed", self.file)?;
        if let Some(loc) = &self.location {
            write!(f, " at {loc}")?;
        }
        write!(f, ": {}", self.message)?;
        if self.no_transaction {
            if self.statements_done == 0 {
                write!(f, "\nNothing of it was applied and nothing was recorded.")?;
            } else {
                let done = match self.statements_done {
                    1 => "its first statement was".to_string(),
                    n => format!("its first {n} statements were"),
                };
                write!(
                    f,
                    "\nIt runs outside a transaction (-- devx:no-transaction): {done} applied and stay applied, \
                     but nothing was recorded in the ledger. Make its statements idempotent (IF NOT EXISTS / \
                     IF EXISTS) or undo them by hand before running it again; a failed CREATE INDEX CONCURRENTLY \
                     leaves an INVALID index to drop."
                )?;
            }
        } else {
            write!(f, "\nIts transaction was rolled back: nothing of it was applied and nothing was recorded.")?;
        }
        write!(f, " Fix the script and run the command again.")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("migration file {file} (in {origin}) {reason}")]
    InvalidFile { file: String, origin: String, reason: String },
    #[error(
        "two migrations share the id {id} in {origin}: {first} and {second}; give one of them a later id \
         (`devx migrate create NAME` picks a fresh one)"
    )]
    DuplicateId { id: String, first: String, second: String, origin: String },
    #[error("{name:?} is not a usable migration name: use letters, digits and `_`, starting with a letter")]
    InvalidName { name: String },
    #[error("no migration {id} in {origin}; `devx migrate status` lists them")]
    UnknownMigration { id: String, origin: String },
    #[error("{}", render_problems(.problems))]
    Problems { problems: Vec<Problem> },
    #[error(
        "{} migration(s) pending ({}) and DEVX_AUTO_MIGRATE is false: run `devx migrate up`, \
         or set DEVX_AUTO_MIGRATE=true to apply them at start",
        .ids.len(), .ids.join(", ")
    )]
    PendingAtStart { ids: Vec<String> },
    #[error(
        "cannot revert {id}_{name}: {reason}. Write its down script, or revert it by hand and delete its row \
         from devx_meta.schema_migrations. Nothing was reverted."
    )]
    NoDown { id: String, name: String, reason: String },
    #[error(
        "timed out after {} waiting for the migration lock{}. Another devx is migrating this database: \
         wait for it to finish, raise DEVX_MIGRATION_WAIT to wait longer{}",
        humantime::format_duration(*.waited),
        .holder.as_ref().map(|h| format!(", held by {h}")).unwrap_or_default(),
        .holder.as_ref().map(|h| format!(", or if that session is stuck end it with SELECT pg_terminate_backend({})", h.pid)).unwrap_or_default(),
    )]
    LockTimeout { waited: Duration, holder: Option<LockHolder> },
    #[error("{0}")]
    Failed(Box<ScriptFailure>),
    #[error(
        "{file} ran, but left invalid index(es) {}: a concurrent index build failed. It was not recorded as \
         applied; run `devx migrate up` again, which rebuilds invalid indexes first",
        .indexes.join(", ")
    )]
    InvalidIndexes { file: String, indexes: Vec<String> },
    #[error(
        "cannot apply {file}: it has no statements (only comments or nothing). Write its SQL, or delete the \
         pair of files if the migration is not needed. Nothing was applied."
    )]
    NoStatements { file: String },
    /// The reason is in the message (not also a source, so it is said once).
    #[error("cannot connect to the database to migrate it: {0}")]
    Connect(DbError),
    #[error("migration bookkeeping failed: {0}")]
    Db(#[from] DbError),
}

impl MigrateError {
    /// Whether the command was asked for something that cannot be (an id
    /// that names no migration, an unusable name or migration file): bad
    /// usage, not a failure of the database.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            MigrateError::UnknownMigration { .. }
                | MigrateError::InvalidName { .. }
                | MigrateError::InvalidFile { .. }
                | MigrateError::DuplicateId { .. }
        )
    }
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Db(e.into())
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = format!(
        "the database's migrations do not match this devx ({} problem{}); nothing was changed:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  - ");
        out.push_str(&p.to_string());
    }
    out
}

/// The embedded set, validated once (a unit test proves it valid).
fn embedded_cached() -> &'static MigrationSet {
    static SET: OnceLock<MigrationSet> = OnceLock::new();
    SET.get_or_init(|| MigrationSet::embedded().expect("the embedded migrations are valid"))
}

/// Run by `devx serve` before it opens its pool: with `DEVX_AUTO_MIGRATE`
/// apply pending migrations (under the lock, so replicas starting together
/// migrate once); without, refuse to start while any are pending. Refuses
/// to start when the database does not match the binary.
pub async fn prepare_for_serve(config: &Config, target: &tokio_postgres::Config) -> Result<(), MigrateError> {
    let set = MigrationSet::embedded()?;
    let mut migrator = Migrator::connect(config, target, set).await?;
    let status = migrator.status().await?;
    if !status.problems.is_empty() {
        return Err(MigrateError::Problems { problems: status.problems });
    }
    if status.pending.is_empty() {
        tracing::info!(applied = status.applied.len(), "schema is up to date");
        return Ok(());
    }
    if !config.migrations.auto_migrate {
        return Err(MigrateError::PendingAtStart { ids: status.pending_ids() });
    }
    let report = migrator.up(None).await?;
    tracing::info!(applied = report.applied.len(), "migrations applied; schema is up to date");
    Ok(())
}

/// Ids of embedded migrations the database has not applied (readiness).
pub async fn pending_ids(db: &impl Queryable) -> Result<Vec<String>, DbError> {
    Ok(ledger_counts(db).await?.1)
}

/// Indexes in devx's schemas that are not valid (`schema.index`, quoted
/// where needed): an interrupted `CREATE INDEX CONCURRENTLY` leaves one
/// behind, maintained on every write but never used by a plan.
pub async fn invalid_indexes(db: &impl tokio_postgres::GenericClient) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) AS index
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE NOT i.indisvalid AND n.nspname IN ('devx', 'templates', 'devx_meta')
              ORDER BY 1",
            &[],
        )
        .await?;
    rows.iter().map(|r| r.try_get("index")).collect()
}

/// How many migrations the ledger records, and the ids of the embedded ones
/// it lacks, from one read of the ledger's ids (cheap enough to poll).
pub async fn ledger_counts(db: &impl Queryable) -> Result<(usize, Vec<String>), DbError> {
    let applied = ledger::applied_ids(db).await?;
    let applied_set: std::collections::HashSet<&str> = applied.iter().map(String::as_str).collect();
    let pending = embedded_cached().ids().filter(|id| !applied_set.contains(id)).map(str::to_string).collect();
    Ok((applied.len(), pending))
}

/// The embedded set compared with the database, read through the pool
/// (the admin API; the CLI reads it through [`Migrator::status`]).
pub async fn embedded_status(db: &impl Queryable) -> Result<(&'static MigrationSet, Status), DbError> {
    let set = embedded_cached();
    Ok((set, Status::compute(set, ledger::read_pooled(db).await?)))
}
