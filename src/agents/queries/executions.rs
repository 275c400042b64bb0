//! Task executions: start (at once, or queued and started later), read with
//! their owner, list, finish, cancel, and the summary by agent type.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::agents::model::{EXECUTION_COLUMNS, Execution, ExecutionStatus, ExecutionSummary};
use crate::db::row::{self, WithOwner};
use crate::db::{DbError, Queryable, Statement};

/// Inserts an execution that is running from now, as attempt `attempt` of
/// its task, holding a lease of `lease_seconds`, started by the actor `started_by`.
pub async fn start_execution(
    db: &impl Queryable,
    task_id: Uuid,
    agent_type: &str,
    agent_config: &Value,
    attempt: i32,
    lease_seconds: i32,
    started_by: &str,
) -> Result<Execution, DbError> {
    let sql = format!(
        "INSERT INTO devx.task_executions AS x (task_id, agent_type, agent_config, status, started_at, attempt,
                                               lease_seconds, lease_expires_at, started_by)
         VALUES ($1, $2, $3, 'running', now(), $4, $5::integer, now() + make_interval(secs => $5::integer), $6)
         RETURNING {EXECUTION_COLUMNS}"
    );
    db.query_one_as(&sql, &[&task_id, &agent_type, &agent_config, &attempt, &lease_seconds, &started_by]).await
}

/// Inserts an execution queued (`pending`) on its task: no start, no lease
/// until it starts ([`run_queued`]). `attempt` is the attempt it would be if
/// it started now; starting it sets the real one.
pub async fn queue_execution(
    db: &impl Queryable,
    task_id: Uuid,
    agent_type: &str,
    agent_config: &Value,
    attempt: i32,
    lease_seconds: i32,
) -> Result<Execution, DbError> {
    let sql = format!(
        "INSERT INTO devx.task_executions AS x (task_id, agent_type, agent_config, status, attempt, lease_seconds)
         VALUES ($1, $2, $3, 'pending', $4, $5)
         RETURNING {EXECUTION_COLUMNS}"
    );
    db.query_one_as(&sql, &[&task_id, &agent_type, &agent_config, &attempt, &lease_seconds]).await
}

/// Which queued execution [`run_queued`] starts.
#[derive(Debug, Clone, Copy)]
pub enum Queued {
    /// This execution, if it is queued.
    Execution(Uuid),
    /// The task's queued execution, if it has one (a task has at most one
    /// open execution).
    OfTask(Uuid),
}

/// Starts a queued execution: running from now as attempt `attempt` of its
/// task, holding a lease of `lease_seconds`, started by `started_by`.
/// `None` if there is no such queued (`pending`) execution.
pub async fn run_queued(
    db: &impl Queryable,
    which: Queued,
    attempt: i32,
    lease_seconds: i32,
    started_by: &str,
) -> Result<Option<Execution>, DbError> {
    let (column, id) = match which {
        Queued::Execution(id) => ("id", id),
        Queued::OfTask(task_id) => ("task_id", task_id),
    };
    let sql = format!(
        "UPDATE devx.task_executions x
            SET status = 'running', started_at = now(), attempt = $2, lease_seconds = $3::integer,
                lease_expires_at = now() + make_interval(secs => $3::integer), started_by = $4
          WHERE x.{column} = $1 AND x.status = 'pending'
         RETURNING {EXECUTION_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id, &attempt, &lease_seconds, &started_by]).await
}

/// The advisory lock that serializes claims (transaction scope, so it works
/// through PgBouncer in transaction mode): each claim counts the running
/// executions and starts one while holding it, so concurrent claimers cannot
/// overshoot a limit. Held until the claim's transaction ends.
pub async fn lock_claims(db: &impl Queryable) -> Result<(), DbError> {
    db.execute("SELECT pg_advisory_xact_lock($1)", &[&CLAIM_LOCK]).await.map(drop)
}

/// Key of [`lock_claims`]: "devxclam".
const CLAIM_LOCK: i64 = 0x6465_7678_636c_616d;

/// Running executions in all, and of one agent type.
pub async fn running_counts(db: &impl Queryable, agent_type: &str) -> Result<(i64, i64), DbError> {
    let row = db
        .query_one(
            "SELECT count(*) AS total, count(*) FILTER (WHERE agent_type = $1) AS of_type
               FROM devx.task_executions WHERE status = 'running'",
            &[&agent_type],
        )
        .await?;
    Ok((row::column(&row, "total")?, row::column(&row, "of_type")?))
}

/// Renews the lease of a running execution the caller may see (`owner`
/// `None`: any, for an admin): one update. The new expiry, or `None` when
/// the execution is not running or not the caller's.
pub async fn heartbeat(db: &impl Queryable, id: Uuid, owner: Option<Uuid>) -> Result<Option<DateTime<Utc>>, DbError> {
    let mut s = Statement::default();
    let id = s.bind(id);
    s.and(format!("x.id = {id} AND x.status = 'running' AND t.id = x.task_id AND p.status <> 'deleted'"));
    s.and_some(owner, |owner| format!("p.owner_id = {owner}"));
    s.sql = format!(
        "UPDATE devx.task_executions x
            SET lease_expires_at = now() + make_interval(secs => x.lease_seconds)
           FROM devx.tasks t JOIN devx.projects p ON p.id = t.project_id
          {}
         RETURNING x.lease_expires_at",
        s.where_clause()
    );
    db.query_scalar_opt(&s.sql, &s.param_refs()).await
}

/// Running executions whose lease has expired or that started more than
/// `timeout_seconds` ago, oldest lease first: (execution, task).
pub async fn expired(db: &impl Queryable, timeout_seconds: i64, limit: i64) -> Result<Vec<(Uuid, Uuid)>, DbError> {
    let rows = db
        .query(
            "SELECT id, task_id FROM devx.task_executions
              WHERE status = 'running' AND lease_expires_at < now()
             UNION
             SELECT id, task_id FROM devx.task_executions
              WHERE status = 'running' AND started_at < now() - make_interval(secs => $1::bigint::float8)
             LIMIT $2",
            &[&timeout_seconds, &limit],
        )
        .await?;
    rows.iter().map(|r| Ok((row::column(r, "id")?, row::column(r, "task_id")?))).collect()
}

/// Fails a running execution found expired, if it still is (a heartbeat or
/// an end may have come since it was found): `timed_out` when it ran longer
/// than `timeout_seconds`, else `lost`; the reason, a message and the lease's
/// end go in its error details.
pub async fn reap_execution(db: &impl Queryable, id: Uuid, timeout_seconds: i64) -> Result<Option<Execution>, DbError> {
    let sql = format!(
        "WITH found AS (
             SELECT x.id, x.lease_expires_at,
                    x.started_at < now() - make_interval(secs => $2::bigint::float8) AS timed_out
               FROM devx.task_executions x
              WHERE x.id = $1 AND x.status = 'running'
         )
         UPDATE devx.task_executions x
            SET status = 'failed', completed_at = greatest(now(), x.started_at), lease_expires_at = NULL,
                error_details = CASE WHEN found.timed_out THEN
                    jsonb_build_object('reason', 'timed_out', 'timeout_seconds', $2::bigint,
                        'message', format('ran longer than agents.execution_timeout_seconds (%s s)', $2::bigint))
                ELSE
                    jsonb_build_object('reason', 'lost', 'lease_expired_at', found.lease_expires_at,
                        'message', format('no heartbeat before the lease expired at %s: the agent is presumed lost',
                                          found.lease_expires_at))
                END
           FROM found
          WHERE x.id = found.id AND (found.timed_out OR found.lease_expires_at < now())
         RETURNING {EXECUTION_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id, &timeout_seconds]).await
}

/// An execution (of a task in a live project) and its project's owner.
pub async fn get_execution(db: &impl Queryable, id: Uuid) -> Result<Option<(Execution, Uuid)>, DbError> {
    let sql = format!(
        "SELECT {EXECUTION_COLUMNS}, p.owner_id
           FROM devx.task_executions x
           JOIN devx.tasks t ON t.id = x.task_id
           JOIN devx.projects p ON p.id = t.project_id
          WHERE x.id = $1 AND p.status <> 'deleted'"
    );
    Ok(db.query_opt_as::<WithOwner<Execution>>(&sql, &[&id]).await?.map(|r| (r.row, r.owner_id)))
}

/// The task's most recent execution.
pub async fn latest_execution(db: &impl Queryable, task_id: Uuid) -> Result<Option<Execution>, DbError> {
    let sql = format!(
        "SELECT {EXECUTION_COLUMNS} FROM devx.task_executions x
          WHERE x.task_id = $1 ORDER BY x.created_at DESC, x.id DESC LIMIT 1"
    );
    db.query_opt_as(&sql, &[&task_id]).await
}

/// A running (or pending) execution of the task, if any.
pub async fn open_execution(db: &impl Queryable, task_id: Uuid) -> Result<Option<Uuid>, DbError> {
    db.query_scalar_opt(
        "SELECT id FROM devx.task_executions WHERE task_id = $1 AND status IN ('pending', 'running') LIMIT 1",
        &[&task_id],
    )
    .await
}

/// A task's executions, newest first, keyset on (created_at, id); fetches `limit + 1`.
pub async fn list_executions(
    db: &impl Queryable,
    task_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Execution>, DbError> {
    let mut s = Statement::default();
    let task_id = s.bind(task_id);
    s.and(format!("x.task_id = {task_id}"));
    s.newest_first(&format!("SELECT {EXECUTION_COLUMNS} FROM devx.task_executions x"), "x", after, limit);
    s.query_as(db).await
}

/// Ends a running execution as `to` (completed or failed), recording the
/// error details of a failure. `None` if it was not running: of two
/// concurrent finishes, one wins.
pub async fn finish_execution(
    db: &impl Queryable,
    id: Uuid,
    to: ExecutionStatus,
    error_details: Option<&Value>,
) -> Result<Option<Execution>, DbError> {
    let sql = format!(
        "UPDATE devx.task_executions x
            SET status = $2, completed_at = greatest(now(), x.started_at), error_details = coalesce($3, x.error_details),
                lease_expires_at = NULL
          WHERE x.id = $1 AND x.status = 'running'
         RETURNING {EXECUTION_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id, &to.as_str(), &error_details]).await
}

/// Cancels the pending and running executions of these tasks; returns their ids.
pub async fn cancel_open_executions(db: &impl Queryable, task_ids: &[Uuid]) -> Result<Vec<Uuid>, DbError> {
    let rows = db
        .query(
            "UPDATE devx.task_executions
                SET status = 'cancelled', completed_at = greatest(now(), started_at), lease_expires_at = NULL
              WHERE task_id = ANY($1) AND status IN ('pending', 'running')
             RETURNING id",
            &[&task_ids],
        )
        .await?;
    rows.iter().map(row::single).collect()
}

const SUMMARY_COLUMNS: &str = "agent_type, runs, completed, failed, cancelled, in_flight, \
     success_rate::float8 AS success_rate, avg_duration_ms, p95_duration_ms, last_run_at";

/// By agent type. An admin (`owner` `None`) reads the
/// `devx.task_execution_summary` view; a user gets the same figures over the
/// executions of their own projects.
pub async fn summary(db: &impl Queryable, owner: Option<Uuid>) -> Result<Vec<ExecutionSummary>, DbError> {
    match owner {
        None => {
            let sql = format!("SELECT {SUMMARY_COLUMNS} FROM devx.task_execution_summary ORDER BY agent_type");
            db.query_as(&sql, &[]).await
        }
        Some(owner) => {
            // The view's definition, over the owner's live projects.
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM (
                     SELECT x.agent_type,
                            count(*) AS runs,
                            count(*) FILTER (WHERE x.status = 'completed') AS completed,
                            count(*) FILTER (WHERE x.status = 'failed') AS failed,
                            count(*) FILTER (WHERE x.status = 'cancelled') AS cancelled,
                            count(*) FILTER (WHERE x.status IN ('pending', 'running')) AS in_flight,
                            round(100.0 * count(*) FILTER (WHERE x.status = 'completed')
                                  / nullif(count(*) FILTER (WHERE x.status IN ('completed', 'failed')), 0), 2)
                                AS success_rate,
                            avg(x.duration_ms) AS avg_duration_ms,
                            percentile_cont(0.95) WITHIN GROUP (ORDER BY x.duration_ms) AS p95_duration_ms,
                            max(x.created_at) AS last_run_at
                       FROM (SELECT e.agent_type, e.status, e.created_at,
                                    (extract(epoch FROM e.completed_at - e.started_at) * 1000)::double precision
                                        AS duration_ms
                               FROM devx.task_executions e
                               JOIN devx.tasks t ON t.id = e.task_id
                               JOIN devx.projects p ON p.id = t.project_id
                              WHERE p.owner_id = $1 AND p.status <> 'deleted') x
                      GROUP BY x.agent_type
                 ) s ORDER BY agent_type"
            );
            db.query_as(&sql, &[&owner]).await
        }
    }
}
