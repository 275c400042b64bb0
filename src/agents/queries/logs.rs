//! Execution log lines: an append-only table keyed by (execution, seq).
//!
//! Appending a batch is two statements whatever the log's length: one
//! `UPDATE` of the execution's `last_log_seq` reserves the batch's seqs (and
//! holds the execution's row lock until commit, so batches of one execution
//! commit in seq order and a reader never sees seq n+1 before seq n), then
//! one multi-row `INSERT` from arrays.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::agents::model::{ExecutionStatus, LogLine};
use crate::db::{DbError, Queryable, Statement};

/// Reserves `count` seqs for `bytes` of messages on an execution the caller
/// may see (`owner` `None`: any, for an admin), renewing its lease when it
/// is running (an agent that logs is alive); with `cap`, only while the
/// log's bytes stay within it. Returns the last seq reserved, or `None`
/// when the execution is missing, not the caller's, or the batch would pass
/// the cap.
pub async fn reserve_seqs(
    db: &impl Queryable,
    execution_id: Uuid,
    owner: Option<Uuid>,
    count: i64,
    bytes: i64,
    cap: Option<i64>,
) -> Result<Option<i64>, DbError> {
    let mut s = Statement::default();
    let count = s.bind(count);
    let bytes = s.bind(bytes);
    let execution_id = s.bind(execution_id);
    s.and(format!("x.id = {execution_id} AND t.id = x.task_id AND p.status <> 'deleted'"));
    s.and_some(owner, |owner| format!("p.owner_id = {owner}"));
    s.and_some(cap, |cap| format!("x.log_bytes + {bytes} <= {cap}"));
    s.sql = format!(
        "UPDATE devx.task_executions x
            SET last_log_seq = x.last_log_seq + {count},
                log_bytes = x.log_bytes + {bytes},
                lease_expires_at = CASE WHEN x.status = 'running'
                                        THEN now() + make_interval(secs => x.lease_seconds)
                                        ELSE x.lease_expires_at END
           FROM devx.tasks t JOIN devx.projects p ON p.id = t.project_id
          {}
         RETURNING x.last_log_seq",
        s.where_clause()
    );
    db.query_scalar_opt(&s.sql, &s.param_refs()).await
}

/// Marks the execution's log truncated the first time an append goes past
/// the cap, reserving the seq of the line that says so; `None` if it was
/// marked already.
pub async fn mark_truncated(db: &impl Queryable, execution_id: Uuid) -> Result<Option<i64>, DbError> {
    db.query_scalar_opt(
        "UPDATE devx.task_executions SET log_truncated = true, last_log_seq = last_log_seq + 1
          WHERE id = $1 AND NOT log_truncated
         RETURNING last_log_seq",
        &[&execution_id],
    )
    .await
}

/// Lines to insert, as parallel arrays (a missing time means now).
pub struct NewLines<'a> {
    pub seqs: &'a [i64],
    pub levels: &'a [&'a str],
    pub messages: &'a [&'a str],
    pub times: &'a [Option<DateTime<Utc>>],
}

pub async fn insert_lines(db: &impl Queryable, execution_id: Uuid, lines: &NewLines<'_>) -> Result<u64, DbError> {
    db.execute(
        "INSERT INTO devx.execution_logs (execution_id, seq, level, message, logged_at)
         SELECT $1, l.seq, l.level, l.message, coalesce(l.logged_at, now())
           FROM unnest($2::bigint[], $3::text[], $4::text[], $5::timestamptz[]) AS l(seq, level, message, logged_at)",
        &[&execution_id, &lines.seqs, &lines.levels, &lines.messages, &lines.times],
    )
    .await
}

/// Up to `limit` lines after `after`, in seq order.
pub async fn tail(db: &impl Queryable, execution_id: Uuid, after: i64, limit: i64) -> Result<Vec<LogLine>, DbError> {
    db.query_as(
        "SELECT seq, level, message, logged_at FROM devx.execution_logs
          WHERE execution_id = $1 AND seq > $2
          ORDER BY seq
          LIMIT $3",
        &[&execution_id, &after, &limit],
    )
    .await
}

/// An execution's status and the seq of its last line (`None` if it is gone).
pub async fn progress(db: &impl Queryable, execution_id: Uuid) -> Result<Option<(ExecutionStatus, i64)>, DbError> {
    let row =
        db.query_opt("SELECT status, last_log_seq FROM devx.task_executions WHERE id = $1", &[&execution_id]).await?;
    row.map(|r| Ok((crate::db::row::column(&r, "status")?, crate::db::row::column(&r, "last_log_seq")?))).transpose()
}
