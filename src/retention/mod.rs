//! Retention: rows that have outlived their configured period are deleted,
//! in bounded batches, by `devx retention run` and by a periodic job inside
//! `devx serve`.
//!
//! What goes, and after how long (`devx.system_config`, PostgreSQL interval
//! strings such as `"6 months"`), is [`RULES`]. Each batch deletes at most
//! `retention.batch_size` rows in a short transaction of its own, as the
//! audit actor `system:retention`, so no run holds locks for long or builds
//! a huge transaction; a table is done when a batch deletes fewer rows than
//! the batch size. The cutoff of each table is fixed when its turn starts, so
//! a run removes exactly the rows older than the period at that moment. After
//! a table, one audit row (entity `*`, actor `system:retention`) records how
//! many rows went and the cutoff, the trail of append-only tables. A dry run
//! counts and changes nothing. Before the deletions, a real run marks the
//! pull-request previews past their `expires_at` expired
//! (`runtime::previews`) and prunes the deployments' configuration
//! snapshots beyond `deploy.keep_snapshots` per service, running ones
//! excepted (the sealed value goes, the digest stays).
//!
//! The history tables (`HISTORY_TABLES`: the audit trail, execution and
//! deploy log lines, the activity log, error logs) are range-partitioned by
//! time, and each has its rule. A real run first creates their partitions
//! for the current period and `retention.partitions_ahead` more
//! (`devx.create_history_partitions`), then, for each of their rules, detaches
//! and drops every partition whose whole range ended `retention.partition_grace`
//! before the cutoff, one short transaction each: a catalog change, whatever
//! the partition holds. These tables age out by whole partitions: only the
//! DEFAULT partition (rows no partition covers) goes by the batched
//! deletion, so a row may outlive its period by one partition's span plus
//! the grace. A dry run names the partitions it would drop and counts the
//! DEFAULT rows the deletion would remove.
//!
//! Inside `serve` the run is a periodic job of `jobs`: whatever the number
//! of `serve` processes on the database, one of them runs it per
//! `retention.interval` (the schedule is in `devx.periodic_jobs`). `devx
//! retention run` runs it directly, whatever the schedule.
//!
//! Two runs never work at once: a real run holds a session advisory lock, and
//! a second one (a run that outlasted its interval, or the CLI beside
//! `serve`) is told so and skips. With `DB_STATEMENT_MODE=unnamed`
//! (PgBouncer in transaction mode, where a session lock would stay on
//! whichever server connection took it) the same key is held as a
//! transaction lock by a second pooled connection whose transaction stays
//! open for the run.

pub mod queries;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use crate::db::{Db, DbError, PgClient};

/// The audit actor of every deletion retention makes.
pub const ACTOR: &str = "system:retention";
/// Rows deleted per batch (JSON integer).
pub const BATCH_SIZE_KEY: &str = "retention.batch_size";
/// How often the job inside `serve` runs (JSON interval string).
pub const INTERVAL_KEY: &str = "retention.interval";
/// Whether the job inside `serve` runs (JSON boolean).
pub const ENABLED_KEY: &str = "retention.enabled";

/// Periods of partitions created ahead of time (JSON integer).
pub const PARTITIONS_AHEAD_KEY: &str = "retention.partitions_ahead";
/// How long after its whole range expired a partition is dropped (JSON
/// interval string).
pub const PARTITION_GRACE_KEY: &str = "retention.partition_grace";

pub const DEFAULT_PARTITIONS_AHEAD: i64 = 2;
pub const MAX_PARTITIONS_AHEAD: i64 = 366;
pub const DEFAULT_PARTITION_GRACE: &str = "1 day";

/// The tables range-partitioned by time (`devx.history_tables()` says the
/// same, with their time column), each partitioned monthly or, when
/// `retention.partition_interval.<table>` is `"day"`, daily.
pub const HISTORY_TABLES: &[&str] =
    &["audit_logs", "execution_logs", "deployment_log_lines", "activity_logs", "error_logs"];

/// The setting holding the partition interval of a history table.
pub fn partition_interval_key(table: &str) -> String {
    format!("retention.partition_interval.{table}")
}

/// Whether a rule's table is one of the partitioned history tables.
pub fn is_partitioned(rule: &Rule) -> bool {
    rule.table.strip_prefix("devx.").is_some_and(|t| HISTORY_TABLES.contains(&t))
}

pub const DEFAULT_BATCH_SIZE: i64 = 1000;
pub const MAX_BATCH_SIZE: i64 = 100_000;
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);
/// The job's shortest interval, whatever the setting says.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// One kind of row that ages out.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The name in reports and logs.
    pub name: &'static str,
    /// Schema-qualified table.
    pub table: &'static str,
    /// The `system_config` key holding the period.
    pub setting: &'static str,
    /// The period when the setting is missing.
    pub default_period: &'static str,
    /// Which rows are aged, `$1` being the cutoff (`now() - period`).
    /// Static SQL: never built from input.
    pub condition: &'static str,
    /// The indexed column batches take the oldest rows by, so that each
    /// batch starts where the previous one ended instead of scanning past
    /// the rows it deleted. `None` where the index cannot give that order.
    pub oldest_first: Option<&'static str>,
    /// The rows it removes, in words.
    pub what: &'static str,
}

/// Everything retention removes, in the order it is removed: the tables that
/// cascades would touch (chat, files, containers) before the accounts whose
/// deletion cascades, and the audit trail last, after the rows the run's own
/// deletions added to it.
pub const RULES: &[Rule] = &[
    Rule {
        name: "chat_messages",
        table: "devx.chat_messages",
        setting: "retention.chat_messages",
        default_period: "6 months",
        // The second clause is always true: it is the predicate of the
        // partial index this deletion reads (chat_messages_created_at_retention_idx),
        // which no other statement states, so no reader of one project's
        // chat can walk created_at across every project.
        condition: "created_at < $1 AND created_at > '-infinity'",
        oldest_first: Some("created_at"),
        what: "chat messages written before the cutoff",
    },
    Rule {
        name: "file_records",
        table: "devx.file_storage",
        setting: "retention.file_records",
        default_period: "1 year",
        condition: "is_deleted AND updated_at < $1",
        oldest_first: Some("updated_at"),
        what: "records of deleted files, deleted before the cutoff",
    },
    Rule {
        name: "containers",
        table: "devx.containers",
        setting: "retention.container_metadata",
        default_period: "1 year",
        condition: "status IN ('stopped', 'deleted') AND updated_at < $1",
        oldest_first: None,
        what: "stopped or deleted containers, last changed before the cutoff",
    },
    Rule {
        name: "execution_logs",
        table: "devx.execution_logs",
        setting: "retention.execution_logs",
        default_period: "90 days",
        condition: "logged_at < $1",
        oldest_first: Some("logged_at"),
        what: "task execution log lines logged before the cutoff",
    },
    Rule {
        name: "deployment_logs",
        table: "devx.deployment_log_lines",
        setting: "retention.deployment_logs",
        default_period: "90 days",
        condition: "time < $1",
        oldest_first: Some("time"),
        what: "deployment log lines logged before the cutoff",
    },
    Rule {
        name: "activity_logs",
        table: "devx.activity_logs",
        setting: "retention.activity_logs",
        default_period: "1 year",
        condition: "created_at < $1",
        oldest_first: Some("created_at"),
        what: "activity log rows (sign-ins, failures, lockouts, first key uses, generations started) written before the cutoff",
    },
    Rule {
        name: "error_logs",
        table: "devx.error_logs",
        setting: "retention.error_logs",
        default_period: "90 days",
        condition: "created_at < $1",
        // Its only time index leads with error_type; the batched deletion
        // touches only its DEFAULT partition, which is small.
        oldest_first: None,
        what: "error logs, resolved or not, written before the cutoff",
    },
    Rule {
        name: "webhook_deliveries",
        table: "devx.webhook_deliveries",
        setting: "retention.webhook_deliveries",
        default_period: "30 days",
        condition: "received_at < $1",
        oldest_first: Some("received_at"),
        what: "deploy webhook deliveries (and the answers replays get) received before the cutoff",
    },
    Rule {
        name: "closed_accounts",
        table: "devx.users",
        setting: "retention.user_data",
        default_period: "7 years",
        condition: "deleted_at < $1",
        oldest_first: Some("deleted_at"),
        what: "accounts closed before the cutoff, with everything they own (cascade)",
    },
    Rule {
        name: "audit_logs",
        table: "devx.audit_logs",
        setting: "retention.audit_logs",
        default_period: "1 year",
        condition: "created_at < $1",
        oldest_first: Some("created_at"),
        what: "audit trail rows written before the cutoff",
    },
    Rule {
        name: "sign_in_throttle",
        table: "devx.sign_in_throttle",
        setting: "retention.sign_in_throttle",
        default_period: "1 day",
        condition: "last_failure_at < $1 AND (locked_until IS NULL OR locked_until < now())",
        oldest_first: Some("last_failure_at"),
        what: "failed sign-in counters with no failure since the cutoff and no lockout running",
    },
    Rule {
        name: "idempotency_keys",
        table: "devx.idempotency_keys",
        setting: "retention.idempotency_keys",
        default_period: "24 hours",
        condition: "created_at < $1",
        oldest_first: Some("created_at"),
        what: "idempotency keys and the answers stored with them, first used before the cutoff",
    },
];

/// The rule whose period a setting holds.
pub fn rule_for_setting(key: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.setting == key)
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Count what would go; change nothing.
    pub dry_run: bool,
    /// Overrides `retention.batch_size`.
    pub batch_size: Option<i64>,
}

/// What a run did to one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub name: &'static str,
    pub table: &'static str,
    pub setting: &'static str,
    /// The period used, as configured.
    pub period: String,
    /// Rows older than this were removed (or counted).
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub cutoff: Option<DateTime<Utc>>,
    /// Rows removed; in a dry run, rows that would be.
    pub rows: u64,
    /// Delete statements run (each its own transaction); 0 in a dry run.
    pub batches: u32,
    /// Partitions detached and dropped whole (in a dry run, those that
    /// would be); their rows are not in `rows`.
    pub partitions_dropped: Vec<String>,
    /// Why the table was skipped or stopped early (rows removed before the
    /// failure stay removed).
    pub error: Option<String>,
}

/// What a run did, for the CLI, the logs and later metrics.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionReport {
    pub dry_run: bool,
    pub batch_size: i64,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub started_at: DateTime<Utc>,
    pub duration: Duration,
    /// History partitions created ahead by this run (none in a dry run).
    pub partitions_created: u32,
    /// Why creating partitions ahead failed (the tables still ran).
    pub partitions_error: Option<String>,
    pub tables: Vec<TableReport>,
}

impl RetentionReport {
    /// Rows removed (or that would be) over every table.
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn total_batches(&self) -> u32 {
        self.tables.iter().map(|t| t.batches).sum()
    }

    pub fn failed(&self) -> bool {
        self.partitions_error.is_some() || self.tables.iter().any(|t| t.error.is_some())
    }

    pub fn table(&self, name: &str) -> Option<&TableReport> {
        self.tables.iter().find(|t| t.name == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("another retention run is in progress (it holds the retention lock); this one was skipped")]
    Busy,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The `retention.*` settings as stored.
struct Settings(HashMap<String, Value>);

impl Settings {
    fn batch_size(&self) -> i64 {
        self.0.get(BATCH_SIZE_KEY).and_then(Value::as_i64).unwrap_or(DEFAULT_BATCH_SIZE)
    }

    fn partitions_ahead(&self) -> i32 {
        let n = self.0.get(PARTITIONS_AHEAD_KEY).and_then(Value::as_i64).unwrap_or(DEFAULT_PARTITIONS_AHEAD);
        i32::try_from(n.clamp(0, MAX_PARTITIONS_AHEAD)).unwrap_or(0)
    }

    fn partition_grace(&self) -> String {
        match self.0.get(PARTITION_GRACE_KEY) {
            Some(Value::String(s)) => s.clone(),
            _ => DEFAULT_PARTITION_GRACE.to_string(),
        }
    }

    fn enabled(&self) -> bool {
        self.0.get(ENABLED_KEY).and_then(Value::as_bool).unwrap_or(true)
    }

    /// The period text of a rule, or why it cannot be one.
    fn period(&self, rule: &Rule) -> Result<String, String> {
        match self.0.get(rule.setting) {
            None => Ok(rule.default_period.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("{} is {other}, not an interval string such as \"1 year\"", rule.setting)),
        }
    }
}

/// Runs retention once over every rule. Per-table failures are in the
/// report (the other tables still run); an error means nothing ran.
pub async fn run(db: &Db, opts: &RunOptions) -> Result<RetentionReport, RetentionError> {
    let started = Instant::now();
    let started_at = Utc::now();
    let mut client = db.client().await?;
    let settings = Settings(queries::settings(&client).await?);
    let batch_size = opts.batch_size.unwrap_or_else(|| settings.batch_size()).clamp(1, MAX_BATCH_SIZE);
    let unnamed = db.statement_mode() == crate::config::StatementMode::Unnamed;
    let mut lock_holder = if !opts.dry_run && unnamed { Some(db.client().await?) } else { None };
    let lock_tx = match lock_holder.as_mut() {
        Some(holder) => {
            let tx = holder.transaction().await?;
            if !queries::try_xact_lock(&tx).await? {
                return Err(RetentionError::Busy);
            }
            Some(tx)
        }
        None => None,
    };
    if !opts.dry_run && !unnamed && !queries::try_lock(&client).await? {
        return Err(RetentionError::Busy);
    }
    let (mut partitions_created, mut partitions_error) = (0, None);
    if !opts.dry_run {
        match create_partitions(&mut client, settings.partitions_ahead()).await {
            Ok(n) => partitions_created = n,
            Err(e) => partitions_error = Some(e.to_string()),
        }
        expire_previews(&mut client).await;
        prune_snapshots(&mut client).await;
    }
    let mut tables = Vec::with_capacity(RULES.len());
    for rule in RULES {
        tables.push(run_rule(&mut client, rule, &settings, batch_size, opts.dry_run).await);
    }
    if let Some(tx) = lock_tx {
        if let Err(e) = tx.commit().await {
            tracing::debug!(error = %e, "could not end the retention lock's transaction");
        }
    } else if !opts.dry_run
        && let Err(e) = queries::unlock(&client).await
    {
        // A broken session has released its lock with it.
        tracing::debug!(error = %e, "could not release the retention lock");
    }
    Ok(RetentionReport {
        dry_run: opts.dry_run,
        batch_size,
        started_at,
        duration: started.elapsed(),
        partitions_created,
        partitions_error,
        tables,
    })
}

async fn create_partitions(client: &mut PgClient, ahead: i32) -> Result<u32, DbError> {
    let tx = client.transaction_as(ACTOR).await?;
    queries::set_lock_timeout(&tx).await?;
    let n = queries::create_partitions(&tx, ahead).await?;
    tx.commit().await?;
    Ok(u32::try_from(n).unwrap_or(0))
}

async fn drop_partition(client: &mut PgClient, table: &str, partition: &str) -> Result<(), DbError> {
    let tx = client.transaction_as(ACTOR).await?;
    queries::set_lock_timeout(&tx).await?;
    queries::drop_partition(&tx, table, partition).await?;
    tx.commit().await?;
    Ok(())
}

/// Prunes configuration snapshots beyond `deploy.keep_snapshots` per
/// service. A failure is logged; the deletions still run.
async fn prune_snapshots(client: &mut PgClient) {
    let pruned = async {
        let tx = client.transaction_as(ACTOR).await?;
        queries::set_lock_timeout(&tx).await?;
        let n = crate::runtime::deployments::queries::prune_snapshots(&tx).await?;
        tx.commit().await?;
        Ok::<u64, DbError>(n)
    };
    match pruned.await {
        Ok(0) => {}
        Ok(n) => tracing::info!(snapshots = n, "retention: pruned deployment snapshots"),
        Err(e) => tracing::warn!(error = %e, "retention: could not prune deployment snapshots"),
    }
}

/// Marks the pull-request previews past their `expires_at` expired and
/// ends their deployments (their rows stay: the list shows them, and
/// deletion follows the service). A failure is logged; the deletions still run.
async fn expire_previews(client: &mut PgClient) {
    let expired = async {
        let tx = client.transaction_as(ACTOR).await.map_err(crate::http::ApiError::from)?;
        queries::set_lock_timeout(&tx).await.map_err(crate::http::ApiError::from)?;
        let n = crate::runtime::previews::expire_due(&tx).await?;
        tx.commit().await.map_err(crate::http::ApiError::from)?;
        Ok::<usize, crate::http::ApiError>(n)
    };
    match expired.await {
        Ok(0) => {}
        Ok(n) => tracing::info!(previews = n, "retention: marked expired previews"),
        Err(e) => tracing::warn!(error = %e, "retention: could not mark expired previews"),
    }
}

async fn run_rule(
    client: &mut PgClient,
    rule: &Rule,
    settings: &Settings,
    batch_size: i64,
    dry_run: bool,
) -> TableReport {
    let mut report = TableReport {
        name: rule.name,
        table: rule.table,
        setting: rule.setting,
        period: String::new(),
        cutoff: None,
        rows: 0,
        batches: 0,
        partitions_dropped: Vec::new(),
        error: None,
    };
    let period = match settings.period(rule) {
        Ok(p) => p,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    report.period = period.clone();
    let cutoff = match queries::cutoff(&*client, &period).await {
        Ok(Some((cutoff, true))) => cutoff,
        Ok(Some((_, false))) => {
            // A zero or negative period would delete every row: refuse.
            report.error = Some(format!("{} = {period:?} is not a positive period; table skipped", rule.setting));
            return report;
        }
        Ok(None) => {
            report.error = Some(format!(
                "{} = {period:?} is not a PostgreSQL interval (e.g. \"6 months\"); table skipped",
                rule.setting
            ));
            return report;
        }
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    report.cutoff = Some(cutoff);
    let expired = if is_partitioned(rule) {
        match queries::expired_partitions(&*client, rule.table, cutoff, &settings.partition_grace()).await {
            Ok(names) => names,
            Err(e) => {
                report.error = Some(format!("{PARTITION_GRACE_KEY}: {e}; table skipped"));
                return report;
            }
        }
    } else {
        Vec::new()
    };
    // A partitioned history table ages out by whole partitions: rows are
    // deleted one by one only where they have no partition of their own
    // (its DEFAULT one). So a row outlives its period by at most one
    // partition's span plus the grace, and the run costs a catalog change
    // whatever the table's size.
    let target = if is_partitioned(rule) { format!("{}_default", rule.table) } else { rule.table.to_owned() };
    if dry_run {
        let counted = queries::count_aged(&*client, &target, rule, cutoff).await;
        match counted {
            Ok(n) => report.rows = n,
            Err(e) => report.error = Some(e.to_string()),
        }
        report.partitions_dropped = expired;
        return report;
    }
    for partition in expired {
        match drop_partition(client, rule.table, &partition).await {
            Ok(()) => {
                tracing::debug!(table = rule.table, partition, "retention: partition dropped");
                report.partitions_dropped.push(partition);
            }
            Err(e) => {
                report.error = Some(format!("could not drop partition {partition}: {e}"));
                break;
            }
        }
    }
    loop {
        match delete_one_batch(client, &target, rule, cutoff, batch_size).await {
            Ok(n) => {
                report.rows += n;
                report.batches += 1;
                crate::metrics::record_retention_deleted(rule.table, n);
                tracing::debug!(table = rule.table, rows = n, batch = report.batches, "retention batch");
                if n < batch_size.unsigned_abs() {
                    break;
                }
            }
            Err(e) => {
                report.error = Some(e.to_string());
                break;
            }
        }
    }
    if (report.rows > 0 || !report.partitions_dropped.is_empty())
        && let Err(e) =
            queries::record_deletion(&*client, rule, &period, cutoff, report.rows, &report.partitions_dropped).await
    {
        report.error.get_or_insert_with(|| format!("deleted {} rows but could not audit it: {e}", report.rows));
    }
    report
}

async fn delete_one_batch(
    client: &mut PgClient,
    table: &str,
    rule: &Rule,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> Result<u64, DbError> {
    let tx = client.transaction_as(ACTOR).await?;
    queries::set_lock_timeout(&tx).await?;
    let n = queries::delete_batch(&tx, table, rule, cutoff, limit).await?;
    tx.commit().await?;
    Ok(n)
}

/// When the job inside `serve` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub enabled: bool,
    pub interval: Duration,
}

/// The job's schedule from `retention.enabled` and `retention.interval`; a
/// missing or unreadable interval means the default (an hour).
pub async fn schedule(db: &Db) -> Result<Schedule, DbError> {
    let client = db.client().await?;
    let settings = Settings(queries::settings(&client).await?);
    let interval = match settings.0.get(INTERVAL_KEY) {
        Some(Value::String(text)) => match queries::interval_seconds(&client, text).await? {
            Some(secs) if secs.is_finite() && secs > 0.0 => Duration::from_secs_f64(secs).max(MIN_INTERVAL),
            _ => {
                tracing::warn!(setting = INTERVAL_KEY, value = %text, "not a positive interval; using 1 hour");
                DEFAULT_INTERVAL
            }
        },
        _ => DEFAULT_INTERVAL,
    };
    Ok(Schedule { enabled: settings.enabled(), interval })
}

/// Retention as a periodic job (`jobs`): a run every `retention.interval`
/// while `retention.enabled` is true, once per period across every `serve`
/// process on the database.
pub const JOB: crate::jobs::Job = crate::jobs::Job { name: "retention", schedule: job_schedule, run: job_run };

fn job_schedule(db: &Db) -> BoxFuture<'_, Result<Option<Duration>, DbError>> {
    Box::pin(async move {
        let schedule = schedule(db).await?;
        Ok(schedule.enabled.then_some(schedule.interval))
    })
}

fn job_run(db: &Db) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        match run(db, &RunOptions::default()).await {
            Ok(report) => {
                log_report(&report);
                let unfinished: Vec<&str> =
                    report.tables.iter().filter(|t| t.error.is_some()).map(|t| t.name).collect();
                match (&report.partitions_error, unfinished.is_empty()) {
                    (None, true) => Ok(()),
                    (Some(error), _) => Err(format!("could not create history partitions ahead: {error}")),
                    (None, false) => Err(format!("tables not finished (see the log): {}", unfinished.join(", "))),
                }
            }
            Err(RetentionError::Busy) => {
                tracing::info!("retention: another run is in progress; skipped");
                Err(RetentionError::Busy.to_string())
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention run failed");
                Err(e.to_string())
            }
        }
    })
}

/// The periodic job inside `serve` ([`JOB`] in `jobs`' loop): runs
/// retention once per `retention.interval` across every process while
/// `retention.enabled` is true, and logs what it removed per table. Runs
/// until aborted.
pub async fn job(db: Db) {
    crate::jobs::run_every(db, JOB).await;
}

/// One log line per table that lost rows or failed, and a summary (at debug
/// level when there was nothing to do, so an idle system's log stays quiet).
pub fn log_report(report: &RetentionReport) {
    for t in &report.tables {
        if let Some(error) = &t.error {
            tracing::warn!(table = t.table, removed = t.rows, batches = t.batches, %error, "retention: table not finished");
        } else if t.rows > 0 {
            tracing::info!(table = t.table, removed = t.rows, batches = t.batches, period = %t.period, "retention: removed rows");
        }
        if !t.partitions_dropped.is_empty() {
            tracing::info!(table = t.table, partitions = ?t.partitions_dropped, "retention: dropped partitions");
        }
    }
    if let Some(error) = &report.partitions_error {
        tracing::warn!(%error, "retention: could not create history partitions ahead");
    }
    let (removed, batches) = (report.total_rows(), report.total_batches());
    let duration_ms = u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX);
    if removed > 0 || report.failed() {
        tracing::info!(removed, batches, duration_ms, "retention run finished");
    } else {
        tracing::debug!(batches, duration_ms, "retention run finished: nothing to remove");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history table without a rule would keep every partition forever
    /// (error logs did): each has one, and each rule on one is partitioned.
    #[test]
    fn every_history_table_ages_out_by_a_rule() {
        for table in HISTORY_TABLES {
            let rules: Vec<&Rule> = RULES.iter().filter(|r| r.table == format!("devx.{table}")).collect();
            assert_eq!(rules.len(), 1, "devx.{table} has one retention rule");
            assert!(is_partitioned(rules[0]));
        }
    }
}
