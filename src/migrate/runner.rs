//! [`Migrator`]: the operations on one database, over a direct session of
//! its own (the advisory lock belongs to a session, so not a pooled one).

use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tokio_postgres::error::{ErrorPosition, SqlState};

use super::ledger::{self, AppliedMigration, Record};
use super::source::is_no_transaction;
use super::split::{self, char_position_to_line_col};
use super::{Location, MigrateError, Migration, MigrationSet, ScriptFailure, Status, lock};
use crate::config::{Config, MigrationConfig};
use crate::db::row::single;

/// How the migrator waits and how long its statements may wait for locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateOptions {
    /// `SET LOCAL lock_timeout` for each migration (`DEVX_MIGRATION_LOCK_TIMEOUT`).
    pub lock_timeout: Duration,
    /// How long to wait for another process's migration lock (`DEVX_MIGRATION_WAIT`).
    pub wait_timeout: Duration,
    /// How often to try the migration lock while waiting.
    pub poll_interval: Duration,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            lock_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(200),
        }
    }
}

impl MigrateOptions {
    pub fn from_config(config: &MigrationConfig) -> Self {
        MigrateOptions {
            lock_timeout: config.lock_timeout,
            wait_timeout: config.wait_timeout,
            ..MigrateOptions::default()
        }
    }
}

/// A migration that was applied (or stamped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub id: String,
    pub name: String,
    /// 0 for a stamped one.
    pub execution_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpReport {
    /// In the order applied; empty when nothing was pending.
    pub applied: Vec<Step>,
}

/// Where a down script came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownSource {
    /// The `.down.sql` file of this binary's set.
    File,
    /// The down script stored in the ledger when the migration was applied
    /// (its file is gone, or this devx does not know the migration).
    Ledger,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reverted {
    pub id: String,
    pub name: String,
    pub execution_ms: u64,
    pub source: DownSource,
}

/// A down script `down` would run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDown {
    pub id: String,
    pub name: String,
    pub sql: String,
    /// The file it comes from, or `... (stored in the ledger)`.
    pub file: String,
    pub source: DownSource,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownReport {
    /// Newest first, in the order reverted; empty when nothing was applied.
    pub reverted: Vec<Reverted>,
}

/// What to write in the ledger once a script ran.
enum Bookkeeping<'a> {
    Insert(Record<'a>),
    Delete(&'a str),
}

/// Migrates one database through a session of its own.
pub struct Migrator {
    client: Client,
    set: MigrationSet,
    options: MigrateOptions,
    /// Each applied migration logged at debug instead of info (a scratch
    /// database, whose migrations are nobody's news).
    quiet: bool,
}

impl Migrator {
    /// Over an open session (tests pass their own).
    pub fn new(client: Client, set: MigrationSet, options: MigrateOptions) -> Self {
        Migrator { client, set, options, quiet: false }
    }

    /// Logs each applied migration at debug rather than info.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Opens a session to `DATABASE_MIGRATION_URL` if set (a direct server
    /// when the pool goes through PgBouncer), else to `target`. The session
    /// has no statement timeout (a migration may take long; `lock_timeout`
    /// keeps it from stalling traffic).
    pub async fn connect(
        config: &Config,
        target: &tokio_postgres::Config,
        set: MigrationSet,
    ) -> Result<Migrator, MigrateError> {
        let direct = config.database.migration_source.is_some()
            || config.database.statement_mode == crate::config::StatementMode::Prepared;
        if !direct {
            tracing::warn!(
                "DB_STATEMENT_MODE=unnamed without DATABASE_MIGRATION_URL: migrating through DATABASE_URL; \
                 behind PgBouncer in transaction mode the migration lock cannot hold, set DATABASE_MIGRATION_URL \
                 to the server itself"
            );
        }
        let mut target = config.database.migration_source.as_deref().unwrap_or(target).clone();
        if target.get_application_name().is_none() {
            target.application_name("devx migrate");
        }
        let client =
            crate::db::connect_one_via(&config.database, &target, direct).await.map_err(MigrateError::Connect)?;
        client.batch_execute("SET statement_timeout = 0").await?;
        Ok(Migrator::new(client, set, MigrateOptions::from_config(&config.migrations)))
    }

    pub fn set(&self) -> &MigrationSet {
        &self.set
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn into_client(self) -> Client {
        self.client
    }

    /// Applied, pending and problems. Reads only; takes no lock.
    pub async fn status(&self) -> Result<Status, MigrateError> {
        let mut status = Status::compute(&self.set, ledger::read(&self.client).await?);
        status.invalid_indexes = super::invalid_indexes(&self.client).await?;
        Ok(status)
    }

    /// The ledger, oldest first.
    pub async fn history(&self) -> Result<Vec<AppliedMigration>, MigrateError> {
        Ok(ledger::read(&self.client).await?)
    }

    /// The last migration applied (the one `down` would revert next).
    pub async fn current(&self) -> Result<Option<AppliedMigration>, MigrateError> {
        Ok(ledger::read(&self.client).await?.pop())
    }

    /// Applies every pending migration in id order, or those up to and
    /// including `to`. Refuses (changing nothing) while the database has
    /// problems. Stops at the first failure; those before it stay applied.
    pub async fn up(&mut self, to: Option<&str>) -> Result<UpReport, MigrateError> {
        if let Some(to) = to {
            self.require_known(to)?;
        }
        self.locked(async |m: &mut Migrator| m.up_locked(to).await).await
    }

    /// Reverts the last `steps` applied migrations, newest first, each with
    /// its file's down script or else the one stored in the ledger. Checks
    /// that every one of them has a down script before reverting any.
    pub async fn down(&mut self, steps: usize) -> Result<DownReport, MigrateError> {
        if steps == 0 {
            return Ok(DownReport::default());
        }
        self.locked(async |m: &mut Migrator| m.down_locked(steps).await).await
    }

    /// Records every pending migration up to and including `to` as applied
    /// without running it (for a database whose schema already has them).
    pub async fn stamp(&mut self, to: &str) -> Result<Vec<Step>, MigrateError> {
        self.require_known(to)?;
        self.locked(async |m: &mut Migrator| m.stamp_locked(to).await).await
    }

    fn require_known(&self, id: &str) -> Result<(), MigrateError> {
        match self.set.get(id) {
            Some(_) => Ok(()),
            None => Err(MigrateError::UnknownMigration { id: id.to_string(), origin: self.set.origin().to_string() }),
        }
    }

    /// Runs `f` holding the migration lock, and always releases it.
    async fn locked<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut Migrator) -> Result<T, MigrateError>,
    ) -> Result<T, MigrateError> {
        lock::acquire(&self.client, self.options.wait_timeout, self.options.poll_interval).await?;
        let result = f(self).await;
        lock::release(&self.client).await;
        result
    }

    /// Rebuilds the indexes an interrupted `CREATE INDEX CONCURRENTLY` (a
    /// killed `migrate up`) left invalid, before anything else runs: an
    /// invalid index is kept up to date but never used, and `IF NOT EXISTS`
    /// would skip it. `REINDEX ... CONCURRENTLY` rebuilds it under its own
    /// name, whether or not its migration was recorded; the `_ccnew` and
    /// `_ccold` leftovers of an interrupted reindex are dropped. Under the
    /// migration lock, so no other devx is building one right now.
    async fn repair_invalid_indexes(&self) -> Result<(), MigrateError> {
        for index in super::invalid_indexes(&self.client).await? {
            let leftover = index.trim_end_matches(|c: char| c.is_ascii_digit() || c == '"');
            let statement = if leftover.ends_with("_ccnew") || leftover.ends_with("_ccold") {
                format!("DROP INDEX CONCURRENTLY IF EXISTS {index}")
            } else {
                format!("REINDEX INDEX CONCURRENTLY {index}")
            };
            tracing::warn!(%index, %statement, "an interrupted index build left this index invalid; repairing it");
            self.client.batch_execute(&statement).await?;
        }
        Ok(())
    }

    /// Checked under the lock: what another process did while we waited counts.
    async fn checked_status(&self) -> Result<Status, MigrateError> {
        ledger::ensure(&self.client).await?;
        let status = self.status().await?;
        if !status.problems.is_empty() {
            return Err(MigrateError::Problems { problems: status.problems });
        }
        Ok(status)
    }

    async fn up_locked(&mut self, to: Option<&str>) -> Result<UpReport, MigrateError> {
        let status = self.checked_status().await?;
        // An empty script (a generated file not filled in) would be recorded
        // as applied while doing nothing: refuse before anything runs.
        for pending in status.pending.iter().filter(|p| to.is_none_or(|to| p.id.as_str() <= to)) {
            if let Some(m) = self.set.get(&pending.id)
                && split::split(&m.up).is_empty()
            {
                return Err(MigrateError::NoStatements { file: m.up_file() });
            }
        }
        self.repair_invalid_indexes().await?;
        let applied_by = self.applied_by("").await?;
        let mut report = UpReport::default();
        for pending in status.pending.iter().filter(|p| to.is_none_or(|to| p.id.as_str() <= to)) {
            let m: Migration = self.set.get(&pending.id).expect("pending comes from the set").clone();
            let record = Record {
                id: &m.id,
                name: &m.name,
                checksum: &m.checksum,
                up_sql: &m.up,
                down_sql: m.down.as_deref(),
                applied_by: &applied_by,
                execution_ms: None,
            };
            let ms = self.run_script(&m.up_file(), &m.up, m.no_transaction, Bookkeeping::Insert(record)).await?;
            if self.quiet {
                tracing::debug!(id = %m.id, name = %m.name, ms, no_transaction = m.no_transaction, "applied migration");
            } else {
                tracing::info!(id = %m.id, name = %m.name, ms, no_transaction = m.no_transaction, "applied migration");
            }
            report.applied.push(Step { id: m.id, name: m.name, execution_ms: ms });
        }
        Ok(report)
    }

    /// The down scripts `down(steps)` would run, newest first, with where
    /// each comes from; an error if one of them has none. Reads only.
    pub async fn down_plan(&self, steps: usize) -> Result<Vec<PlannedDown>, MigrateError> {
        if steps == 0 || !ledger::exists(&self.client).await? {
            return Ok(Vec::new());
        }
        let applied = ledger::read(&self.client).await?;
        self.plan_down(&applied, steps)
    }

    async fn down_locked(&mut self, steps: usize) -> Result<DownReport, MigrateError> {
        if !ledger::exists(&self.client).await? {
            return Ok(DownReport::default());
        }
        let applied = ledger::read(&self.client).await?;
        let plan = self.plan_down(&applied, steps)?;
        let mut report = DownReport::default();
        for PlannedDown { id, name, sql, file, source } in plan {
            let ms = self.run_script(&file, &sql, is_no_transaction(&sql), Bookkeeping::Delete(&id)).await?;
            tracing::info!(id = %id, name = %name, ms, "reverted migration");
            report.reverted.push(Reverted { id, name, execution_ms: ms, source });
        }
        Ok(report)
    }

    /// Every step planned before any runs, so a missing down script refuses
    /// the whole command.
    fn plan_down(&self, applied: &[AppliedMigration], steps: usize) -> Result<Vec<PlannedDown>, MigrateError> {
        let mut plan = Vec::new();
        for row in applied.iter().rev().take(steps) {
            let from_file = self.set.get(&row.id).and_then(|m| m.down.clone().map(|d| (d, m.down_file())));
            let (sql, file, source) = match (from_file, &row.down_sql) {
                (Some((sql, file)), _) => (sql, file, DownSource::File),
                (None, Some(stored)) => (
                    stored.clone(),
                    format!("{}_{}.down.sql (stored in the ledger)", row.id, row.name),
                    DownSource::Ledger,
                ),
                (None, None) => {
                    return Err(MigrateError::NoDown {
                        id: row.id.clone(),
                        name: row.name.clone(),
                        reason: "it has no down script (no .down.sql file, and none stored when it was applied)".into(),
                    });
                }
            };
            if split::split(&sql).is_empty() {
                return Err(MigrateError::NoDown {
                    id: row.id.clone(),
                    name: row.name.clone(),
                    reason: format!("its down script {file} has no statements"),
                });
            }
            plan.push(PlannedDown { id: row.id.clone(), name: row.name.clone(), sql, file, source });
        }
        Ok(plan)
    }

    async fn stamp_locked(&mut self, to: &str) -> Result<Vec<Step>, MigrateError> {
        let status = self.checked_status().await?;
        let applied_by = self.applied_by(" stamp").await?;
        let mut stamped = Vec::new();
        for pending in status.pending.iter().filter(|p| p.id.as_str() <= to) {
            let m = self.set.get(&pending.id).expect("pending comes from the set");
            let record = Record {
                id: &m.id,
                name: &m.name,
                checksum: &m.checksum,
                up_sql: &m.up,
                down_sql: m.down.as_deref(),
                applied_by: &applied_by,
                execution_ms: None,
            };
            ledger::insert(&self.client, &record).await?;
            tracing::info!(id = %m.id, name = %m.name, "stamped migration as applied (not run)");
            stamped.push(Step { id: m.id.clone(), name: m.name.clone(), execution_ms: 0 });
        }
        Ok(stamped)
    }

    /// `user@host (devx 0.1.0, pid 42)`.
    async fn applied_by(&self, what: &str) -> Result<String, MigrateError> {
        let user: String = single(&self.client.query_one("SELECT current_user::text", &[]).await?)?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".into());
        Ok(format!("{user}@{host} (devx {}{what}, pid {})", env!("CARGO_PKG_VERSION"), std::process::id()))
    }

    /// Runs one script and its ledger bookkeeping; returns its run time in ms.
    async fn run_script(
        &mut self,
        file: &str,
        sql: &str,
        no_transaction: bool,
        bookkeeping: Bookkeeping<'_>,
    ) -> Result<u64, MigrateError> {
        let lock_timeout = format!("{}ms", self.options.lock_timeout.as_millis().max(1));
        if no_transaction {
            return self.run_outside_transaction(file, sql, &lock_timeout, bookkeeping).await;
        }
        let tx = self.client.transaction().await?;
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{lock_timeout}'")).await?;
        let start = Instant::now();
        if let Err(e) = tx.batch_execute(sql).await {
            let _ = tx.rollback().await;
            return Err(failure(file, sql, &e, None, false, 0, &lock_timeout));
        }
        let ms = start.elapsed().as_millis() as u64;
        match bookkeeping {
            Bookkeeping::Insert(record) => {
                ledger::insert(&tx, &Record { execution_ms: Some(ms as i64), ..record }).await?;
            }
            Bookkeeping::Delete(id) => {
                ledger::delete(&tx, id).await?;
            }
        }
        tx.commit().await?;
        Ok(ms)
    }

    async fn run_outside_transaction(
        &mut self,
        file: &str,
        sql: &str,
        lock_timeout: &str,
        bookkeeping: Bookkeeping<'_>,
    ) -> Result<u64, MigrateError> {
        self.client.batch_execute(&format!("SET lock_timeout = '{lock_timeout}'")).await?;
        let start = Instant::now();
        let statements = split::split(sql);
        for (n, statement) in statements.iter().enumerate() {
            if let Err(e) = self.client.batch_execute(statement.sql).await {
                let _ = self.client.batch_execute("RESET lock_timeout").await;
                return Err(failure(file, sql, &e, Some((n, statement)), true, n, lock_timeout));
            }
        }
        let ms = start.elapsed().as_millis() as u64;
        self.client.batch_execute("RESET lock_timeout").await?;
        // A concurrent index build that failed without an error reaching us
        // (or one skipped by IF NOT EXISTS because an earlier, killed run
        // left it invalid) must not be recorded as done.
        let invalid = super::invalid_indexes(&self.client).await?;
        if !invalid.is_empty() {
            return Err(MigrateError::InvalidIndexes { file: file.to_string(), indexes: invalid });
        }
        match bookkeeping {
            Bookkeeping::Insert(record) => {
                ledger::insert(&self.client, &Record { execution_ms: Some(ms as i64), ..record }).await?;
            }
            Bookkeeping::Delete(id) => {
                ledger::delete(&self.client, id).await?;
            }
        }
        Ok(ms)
    }
}

/// Describes a refused script: where (from PostgreSQL's error position, or
/// the statement that failed) and PostgreSQL's own words.
fn failure(
    file: &str,
    script: &str,
    error: &tokio_postgres::Error,
    statement: Option<(usize, &split::Statement<'_>)>,
    no_transaction: bool,
    statements_done: usize,
    lock_timeout: &str,
) -> MigrateError {
    let mut location = statement.map(|(n, s)| Location { line: s.line, column: None, statement: Some(n + 1) });
    let message = match error.as_db_error() {
        Some(db) => {
            if let Some(ErrorPosition::Original(position)) = db.position() {
                let position = *position as usize;
                location = Some(match statement {
                    None => {
                        let (line, column) = char_position_to_line_col(script, position);
                        Location { line, column: Some(column), statement: None }
                    }
                    Some((n, s)) => {
                        let (l, c) = char_position_to_line_col(s.sql, position);
                        let line_start = script[..s.offset].rfind('\n').map_or(0, |i| i + 1);
                        let lead = script[line_start..s.offset].chars().count();
                        let column = if l == 1 { lead + c } else { c };
                        Location { line: s.line + l - 1, column: Some(column), statement: Some(n + 1) }
                    }
                });
            }
            let mut m = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                m.push_str(&format!("\n  detail: {detail}"));
            }
            if let Some(hint) = db.hint() {
                m.push_str(&format!("\n  hint: {hint}"));
            }
            if let Some(context) = db.where_() {
                m.push_str(&format!("\n  context: {context}"));
            }
            if *db.code() == SqlState::LOCK_NOT_AVAILABLE {
                m.push_str(&format!(
                    "\n  The migration waited lock_timeout ({lock_timeout}, DEVX_MIGRATION_LOCK_TIMEOUT) for a lock \
                     that live traffic holds: retry when it is quieter, or raise DEVX_MIGRATION_LOCK_TIMEOUT."
                ));
            }
            m
        }
        None => {
            let mut m = error.to_string();
            if let Some(source) = std::error::Error::source(error) {
                m.push_str(&format!(": {source}"));
            }
            m
        }
    };
    MigrateError::Failed(Box::new(ScriptFailure {
        file: file.to_string(),
        location,
        message,
        no_transaction,
        statements_done,
    }))
}
