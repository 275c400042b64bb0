//! The reaper: ends the executions whose agent is gone, so that no task
//! stays `in_progress` forever.
//!
//! A running execution is reaped when its lease expired (no heartbeat and
//! no log append for `lease_seconds`: `lost`) or when it started more than
//! `agents.execution_timeout_seconds` ago (`timed_out`). Reaping one fails
//! it (the reason in its `error_details`), writes an error log and a last
//! log line saying why, and records a failed attempt on its task: pending
//! again after a backoff while attempts are left, else failed (a dead
//! letter). An agent that comes back and completes or fails the execution
//! gets a 409 saying its lease was lost.
//!
//! [`reap_once`] is one pass (tests call it directly); [`job`] runs passes
//! inside `serve`, one per `agents.reaper_interval_seconds` across every
//! process on the database: the period is claimed in `devx.periodic_jobs`
//! (`jobs`), so more replicas do not mean more passes. Only one process
//! reaps at a time (a pass that outlasts its interval meets the next one): a
//! pass runs in one transaction that first takes a transaction-scoped
//! advisory lock with `pg_try_advisory_xact_lock` (which PgBouncer in
//! transaction mode keeps with the transaction); a pass that does not get it
//! does nothing.
//! Locks are taken task first, then execution, as everywhere in `agents`,
//! and the execution is failed only if it is still expired once its task is
//! locked, so a heartbeat or an end that came first wins.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;
use uuid::Uuid;

use super::executions::{attempt_error, fail_attempt};
use super::model::{ErrorType, LogLevel, TaskStatus};
use super::queries::errors::{self as eq, NewError};
use super::queries::executions as xq;
use super::queries::logs::{self as lq, NewLines};
use super::queries::tasks as tq;
use super::settings::AgentSettings;
use crate::db::{Db, DbError, Queryable};

/// The audit actor of every change the reaper makes.
pub const ACTOR: &str = "system:reaper";
/// Key of the advisory lock only one reaper holds: "devxreap".
const LOCK_KEY: i64 = 0x6465_7678_7265_6170;
/// Executions reaped per transaction; a pass continues while batches are full.
const BATCH: i64 = 100;

/// What one pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReapReport {
    /// Another process held the reaper's lock: this pass did nothing.
    pub skipped: bool,
    /// Executions failed because their lease expired.
    pub lost: Vec<Uuid>,
    /// Executions failed because they ran past the timeout.
    pub timed_out: Vec<Uuid>,
    /// Tasks put back to pending for another attempt.
    pub retried: Vec<Uuid>,
    /// Tasks failed for good (out of attempts).
    pub failed: Vec<Uuid>,
}

impl ReapReport {
    pub fn reaped(&self) -> usize {
        self.lost.len() + self.timed_out.len()
    }
}

/// One pass: reaps every execution expired now, in batches. Returns with
/// `skipped` when another process is reaping.
pub async fn reap_once(db: &Db) -> Result<ReapReport, DbError> {
    let mut report = ReapReport::default();
    let mut client = db.client().await?;
    loop {
        let tx = client.transaction_as(ACTOR).await?;
        if !tx.query_scalar::<bool>("SELECT pg_try_advisory_xact_lock($1)", &[&LOCK_KEY]).await? {
            report.skipped = true;
            return Ok(report);
        }
        let settings = AgentSettings::load(&tx).await?;
        let found = xq::expired(&tx, settings.execution_timeout_seconds, BATCH).await?;
        for &(execution_id, task_id) in &found {
            reap(&tx, &settings, execution_id, task_id, &mut report).await?;
        }
        tx.commit().await?;
        if (found.len() as i64) < BATCH {
            return Ok(report);
        }
    }
}

/// Reaps one execution found expired, if it still is once its task is locked.
async fn reap(
    db: &impl Queryable,
    settings: &AgentSettings,
    execution_id: Uuid,
    task_id: Uuid,
    report: &mut ReapReport,
) -> Result<(), DbError> {
    tq::lock_task(db, task_id).await?;
    let Some(x) = xq::reap_execution(db, execution_id, settings.execution_timeout_seconds).await? else {
        return Ok(());
    };
    let details = x.error_details.clone().unwrap_or_default();
    let reason = details.get("reason").and_then(|r| r.as_str()).unwrap_or("lost").to_string();
    let message = details.get("message").and_then(|m| m.as_str()).unwrap_or("the execution was reaped").to_string();
    let error = eq::insert_error(
        db,
        &NewError {
            task_id: Some(task_id),
            execution_id: Some(x.id),
            error_type: ErrorType::Timeout,
            message: &message,
            stack: None,
            context: &details,
            created_by: None,
        },
    )
    .await?;
    // The error, then the final line: why the execution ended.
    let lines = [
        (LogLevel::Error, message.clone()),
        (LogLevel::Error, format!("execution failed as {reason} by devx's reaper; its task is handed on")),
    ];
    let bytes = lines.iter().map(|(_, m)| m.len() as i64).sum();
    if let Some(last) = lq::reserve_seqs(db, x.id, None, lines.len() as i64, bytes, None).await? {
        let first = last - lines.len() as i64 + 1;
        let seqs: Vec<i64> = (first..=last).collect();
        let levels: Vec<&str> = lines.iter().map(|(level, _)| level.as_str()).collect();
        let messages: Vec<&str> = lines.iter().map(|(_, m)| m.as_str()).collect();
        let times = vec![None; lines.len()];
        lq::insert_lines(db, x.id, &NewLines { seqs: &seqs, levels: &levels, messages: &messages, times: &times })
            .await?;
    }
    let entry = attempt_error(&x, &reason, &message, error.id);
    match fail_attempt(db, settings, &x, &entry, true).await? {
        Some(task) if task.status == TaskStatus::Pending => report.retried.push(task.id),
        Some(task) => report.failed.push(task.id),
        None => {}
    }
    if reason == "timed_out" {
        report.timed_out.push(x.id);
    } else {
        report.lost.push(x.id);
    }
    tracing::info!(execution = %x.id, task = %task_id, %reason, "reaped an execution");
    Ok(())
}

/// The reaper as a periodic job (`jobs`): a pass every
/// `agents.reaper_interval_seconds`, once per period across every `serve`
/// process on the database.
pub const JOB: crate::jobs::Job = crate::jobs::Job { name: "agents.reaper", schedule: job_schedule, run: job_run };

fn job_schedule(db: &Db) -> BoxFuture<'_, Result<Option<Duration>, DbError>> {
    Box::pin(async move {
        let client = db.client().await?;
        let settings = AgentSettings::load(&client).await?;
        Ok(Some(Duration::from_secs(settings.reaper_interval_seconds.unsigned_abs())))
    })
}

fn job_run(db: &Db) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        match reap_once(db).await {
            Ok(report) if report.skipped => {
                tracing::debug!("reaper: another process is reaping; skipped");
                Err("another pass held the reaper's lock; this one did nothing".into())
            }
            Ok(report) => {
                if report.reaped() > 0 {
                    tracing::info!(
                        lost = report.lost.len(),
                        timed_out = report.timed_out.len(),
                        retried = report.retried.len(),
                        failed = report.failed.len(),
                        "reaper pass"
                    );
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "reaper pass failed; trying again at the next interval");
                Err(e.to_string())
            }
        }
    })
}

/// The reaper inside `serve` ([`JOB`] in `jobs`' loop): a pass per
/// `agents.reaper_interval_seconds` (read again before each claim) across
/// every process, until aborted. Failures are logged and the next period
/// tries again.
pub async fn job(db: Db) {
    crate::jobs::run_every(db, JOB).await;
}
