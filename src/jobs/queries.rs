//! The SQL of the shared schedule (`devx.periodic_jobs`): claiming a job's
//! period, recording how the run ended, how long until the next period, and
//! the rows as the admin API shows them.

use chrono::{DateTime, Utc};

use crate::db::{DbError, FromRow, Queryable};

/// Claims the period of `job` for `process`: one upsert that starts a run
/// only when the last one started at least `interval_seconds` ago (or never).
/// Returns the run's number, or `None` when the period is someone else's.
///
/// The condition is checked on the row's latest version under its row lock
/// (`ON CONFLICT DO UPDATE ... WHERE`), so however many processes send this
/// at once, one gets a row back per period; two stored starts are never
/// less than the interval apart, both being the database's `now()`.
pub async fn claim(
    db: &impl Queryable,
    job: &str,
    interval_seconds: f64,
    process: &str,
) -> Result<Option<i64>, DbError> {
    db.query_opt_as::<Runs>(
        "INSERT INTO devx.periodic_jobs AS j
                (job, interval_seconds, runs, last_started_at, last_finished_at, last_process, last_error)
         VALUES ($1, $2::float8, 1, now(), NULL, $3, NULL)
         ON CONFLICT (job) DO UPDATE
            SET interval_seconds = EXCLUDED.interval_seconds, runs = j.runs + 1, last_started_at = now(),
                last_finished_at = NULL, last_process = EXCLUDED.last_process, last_error = NULL
          WHERE j.last_started_at IS NULL
             OR j.last_started_at <= now() - make_interval(secs => $2::float8)
         RETURNING runs",
        &[&job, &interval_seconds, &process],
    )
    .await
    .map(|row| row.map(|r| r.runs))
}

#[derive(FromRow)]
struct Runs {
    runs: i64,
}

/// Seconds from now until the period after the last start of `job` begins
/// (zero or less: due now; `None`: no row yet).
pub async fn seconds_until_due(db: &impl Queryable, job: &str, interval_seconds: f64) -> Result<Option<f64>, DbError> {
    let row: Option<Due> = db
        .query_opt_as(
            "SELECT extract(epoch FROM last_started_at + make_interval(secs => $2::float8) - now())::float8 AS seconds
               FROM devx.periodic_jobs WHERE job = $1",
            &[&job, &interval_seconds],
        )
        .await?;
    Ok(row.and_then(|r| r.seconds))
}

#[derive(FromRow)]
struct Due {
    seconds: Option<f64>,
}

/// Records that run `run` of `job` ended (with `error` when it failed or did
/// nothing). A later run already started leaves the row to that run.
pub async fn finish(db: &impl Queryable, job: &str, run: i64, error: Option<&str>) -> Result<(), DbError> {
    db.execute(
        "UPDATE devx.periodic_jobs SET last_finished_at = now(), last_error = $3 WHERE job = $1 AND runs = $2",
        &[&job, &run, &error],
    )
    .await?;
    Ok(())
}

/// One job's row as stored.
#[derive(Debug, Clone, FromRow)]
pub struct JobRow {
    pub job: String,
    pub interval_seconds: Option<f64>,
    pub runs: i64,
    pub last_started_at: Option<DateTime<Utc>>,
    pub last_finished_at: Option<DateTime<Utc>>,
    pub last_process: Option<String>,
    pub last_error: Option<String>,
}

/// Every job's row, by name.
pub async fn list(db: &impl Queryable) -> Result<Vec<JobRow>, DbError> {
    db.query_as(
        "SELECT job, interval_seconds, runs, last_started_at, last_finished_at, last_process, last_error
           FROM devx.periodic_jobs ORDER BY job",
        &[],
    )
    .await
}
