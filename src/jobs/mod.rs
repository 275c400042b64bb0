//! Periodic jobs that do shared work, run once per period across every
//! `devx serve` process on one database.
//!
//! Each process runs the loop ([`run_every`]) of each such job (retention,
//! the agents' reaper), and the schedule is kept in PostgreSQL
//! (`devx.periodic_jobs`, one row per job), not in the process: a process
//! *claims* a period with one conditional upsert ([`queries::claim`]) that
//! starts a run only when the stored last start is at least the interval
//! old. Exactly one process gets the run; the others read when the next
//! period is due and sleep until then. Restarting a process does not reset
//! the schedule, and adding processes does not multiply the runs.
//!
//! The claim says *when* a run starts; it does not stop a run that outlasts
//! its interval from meeting the next one. Each job keeps its own advisory
//! lock for that (retention's session lock, the reaper's transaction lock),
//! and a claimed run that finds the lock taken does nothing and says so in
//! `last_error`.
//!
//! The rows are bookkeeping, not audited: the work each run does is
//! audited where it is done. `GET /api/admin/jobs` (`admin`) shows them.
//!
//! Per-process by nature, and so not here: the metrics history's sampler
//! (each process samples its own counters), the periodic database health
//! check (each process's `/readyz`), the flusher of credentials in use (each
//! process's noted touches) and the idle-connection reaper (each process's
//! pool).

pub mod queries;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use crate::db::{Db, DbError};

/// A job's interval now, or `None` while it is disabled.
pub type ScheduleFn = for<'a> fn(&'a Db) -> BoxFuture<'a, Result<Option<Duration>, DbError>>;
/// One run of a job; `Err` says why it failed or did nothing.
pub type RunFn = for<'a> fn(&'a Db) -> BoxFuture<'a, Result<(), String>>;

/// A periodic job as the shared loop runs it.
#[derive(Clone, Copy)]
pub struct Job {
    /// Its row in `devx.periodic_jobs` and its name in the logs and the API.
    pub name: &'static str,
    /// The interval now, or `None` while the job is disabled; read before
    /// each claim, so a changed setting takes effect at the next turn.
    pub schedule: ScheduleFn,
    /// One run; `Err` says why it failed or did nothing (logged by the job
    /// itself, and stored as the row's `last_error`).
    pub run: RunFn,
}

/// A fresh process serves for this long (or one interval, if shorter)
/// before its first claim, so that a start under load is not also a run.
pub const SETTLE: Duration = Duration::from_secs(60);
/// The longest sleep between two looks at the schedule, so that a changed
/// interval, or a job enabled again, takes effect within this.
pub const RECHECK: Duration = Duration::from_secs(60);

/// This process as the schedule names it: `hostname:pid`.
pub fn process_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_string());
        format!("{host}:{}", std::process::id())
    })
}

/// What a process does at one turn of a job's loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Turn {
    /// This process claimed the period: run the job, then [`finish`] run
    /// number `.0`.
    Run(i64),
    /// The period is another run's: look again after this long.
    Wait(Duration),
}

/// Claims the current period of `job` for this process, or says how long
/// until the next one is due.
pub async fn claim(db: &Db, job: &str, interval: Duration) -> Result<Turn, DbError> {
    let client = db.client().await?;
    let seconds = interval.as_secs_f64().max(0.001);
    if let Some(run) = queries::claim(&client, job, seconds, process_name()).await? {
        return Ok(Turn::Run(run));
    }
    let left = queries::seconds_until_due(&client, job, seconds).await?.unwrap_or(0.0);
    // A claim that lost a race to a start not yet visible to this read sees
    // the period as due: look again shortly rather than spin.
    let wait = if left.is_finite() && left > 0.0 { Duration::from_secs_f64(left) } else { Duration::ZERO };
    Ok(Turn::Wait(wait.max(Duration::from_millis(50))))
}

/// Records how run `run` of `job` ended; a failure to record is logged.
pub async fn finish(db: &Db, job: &str, run: i64, error: Option<&str>) {
    let recorded = async {
        let client = db.client().await?;
        queries::finish(&client, job, run, error).await
    };
    if let Err(e) = recorded.await {
        tracing::warn!(job, run, error = %e, "could not record the end of a periodic job's run");
    }
}

/// The loop of `job` inside `serve`, until aborted: wait for the settling
/// period, then claim each period as it comes due, run it when this
/// process got it, and sleep until the next one otherwise.
pub async fn run_every(db: Db, job: Job) {
    let started = Instant::now();
    loop {
        let interval = match (job.schedule)(&db).await {
            Ok(Some(interval)) => interval,
            Ok(None) => {
                tokio::time::sleep(RECHECK).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(job = job.name, error = %e, "cannot read the job's schedule; trying again later");
                tokio::time::sleep(RECHECK).await;
                continue;
            }
        };
        let settled = started + SETTLE.min(interval);
        let now = Instant::now();
        if now < settled {
            tokio::time::sleep((settled - now).min(RECHECK)).await;
            continue;
        }
        match claim(&db, job.name, interval).await {
            Ok(Turn::Run(run)) => {
                tracing::debug!(job = job.name, run, "periodic job: this process runs this period");
                let outcome = (job.run)(&db).await;
                finish(&db, job.name, run, outcome.err().as_deref()).await;
            }
            Ok(Turn::Wait(wait)) => tokio::time::sleep(wait.min(RECHECK)).await,
            Err(e) => {
                tracing::warn!(job = job.name, error = %e, "cannot claim the job's period; trying again later");
                tokio::time::sleep(RECHECK.min(interval)).await;
            }
        }
    }
}
