//! Error logs: record, read with their owner, list, resolve, count recovery
//! attempts, and the summary by error type.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::agents::model::{ERROR_LOG_COLUMNS, ErrorLog, ErrorSummary, ErrorType};
use crate::db::{DbError, FromRow, Queryable, Statement};

/// Who may see an error log: the owner of its task's project, or when it has
/// no task, whoever recorded it (`NULL` once that user is gone: admins
/// only). Rows of tasks in deleted projects are left out for everyone.
const OWNER: &str = "CASE WHEN l.task_id IS NULL THEN l.created_by ELSE p.owner_id END";
const JOINS: &str = "LEFT JOIN devx.tasks t ON t.id = l.task_id
     LEFT JOIN devx.projects p ON p.id = t.project_id AND p.status <> 'deleted'";

/// An error log and its owner ([`OWNER`] read as `owner_id`; `NULL`: only
/// admins see it).
#[derive(FromRow)]
struct OwnedError {
    #[from_row(flatten)]
    error: ErrorLog,
    owner_id: Option<Uuid>,
}

pub struct NewError<'a> {
    pub task_id: Option<Uuid>,
    pub execution_id: Option<Uuid>,
    pub error_type: ErrorType,
    pub message: &'a str,
    pub stack: Option<&'a str>,
    pub context: &'a Value,
    /// `None`: devx itself (the reaper).
    pub created_by: Option<Uuid>,
}

pub async fn insert_error(db: &impl Queryable, e: &NewError<'_>) -> Result<ErrorLog, DbError> {
    let sql = format!(
        "INSERT INTO devx.error_logs AS l (task_id, execution_id, error_type, message, stack, context, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING {ERROR_LOG_COLUMNS}"
    );
    db.query_one_as(
        &sql,
        &[&e.task_id, &e.execution_id, &e.error_type.as_str(), &e.message, &e.stack, &e.context, &e.created_by],
    )
    .await
}

/// An error log and who owns it (`None`: only admins see it).
pub async fn get_error(db: &impl Queryable, id: Uuid) -> Result<Option<(ErrorLog, Option<Uuid>)>, DbError> {
    let sql = format!(
        "SELECT {ERROR_LOG_COLUMNS}, {OWNER} AS owner_id FROM devx.error_logs l {JOINS}
          WHERE l.id = $1 AND (l.task_id IS NULL OR p.id IS NOT NULL)"
    );
    Ok(db.query_opt_as::<OwnedError>(&sql, &[&id]).await?.map(|r| (r.error, r.owner_id)))
}

#[derive(Debug, Default)]
pub struct ErrorFilter {
    /// `None`: every owner (an admin).
    pub owner: Option<Uuid>,
    pub error_type: Option<ErrorType>,
    pub resolved: Option<bool>,
    pub task_id: Option<Uuid>,
    pub execution_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Newest first; fetches `limit + 1` rows.
pub async fn list_errors(db: &impl Queryable, f: &ErrorFilter) -> Result<Vec<ErrorLog>, DbError> {
    let mut s = Statement::default();
    s.and_some(f.owner, |owner| format!("{OWNER} = {owner}"));
    s.and("(l.task_id IS NULL OR p.id IS NOT NULL)");
    s.and_some(f.error_type.map(ErrorType::as_str), |t| format!("l.error_type = {t}"));
    s.and_some(f.resolved, |resolved| format!("l.resolved = {resolved}"));
    s.and_some(f.task_id, |task| format!("l.task_id = {task}"));
    s.and_some(f.execution_id, |execution| format!("l.execution_id = {execution}"));
    s.and_some(f.since, |since| format!("l.created_at >= {since}"));
    s.newest_first(&format!("SELECT {ERROR_LOG_COLUMNS} FROM devx.error_logs l {JOINS}"), "l", f.after, f.limit);
    s.query_as(db).await
}

/// Marks an unresolved error resolved. `None` if it was resolved already.
pub async fn resolve_error(db: &impl Queryable, id: Uuid) -> Result<Option<ErrorLog>, DbError> {
    let sql = format!(
        "UPDATE devx.error_logs l SET resolved = true, resolved_at = now()
          WHERE l.id = $1 AND NOT l.resolved
         RETURNING {ERROR_LOG_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id]).await
}

/// The `errors.max_recovery_attempts` setting (3 when unset or not a number).
pub async fn max_recovery_attempts(db: &impl Queryable) -> Result<i32, DbError> {
    db.query_scalar(
        "SELECT coalesce((SELECT CASE WHEN jsonb_typeof(value) = 'number'
                                      THEN least(floor((value #>> '{}')::numeric), 1000000)::int END
                            FROM devx.system_config WHERE key = 'errors.max_recovery_attempts'), 3)",
        &[],
    )
    .await
}

/// Counts one recovery attempt on an unresolved error that has had fewer
/// than `max_attempts`, appends `{attempt, outcome, details, at}` to its
/// recovery log, and resolves it when `resolve`. `None` if the error is
/// resolved or out of attempts (a concurrent attempt may have taken the last).
pub async fn record_recovery_attempt(
    db: &impl Queryable,
    id: Uuid,
    outcome: &str,
    details: &Value,
    resolve: bool,
    max_attempts: i32,
) -> Result<Option<ErrorLog>, DbError> {
    let sql = format!(
        "UPDATE devx.error_logs l
            SET recovery_attempts = l.recovery_attempts + 1,
                recovery_log = l.recovery_log || jsonb_build_array(jsonb_build_object(
                    'attempt', l.recovery_attempts + 1, 'outcome', $2::text, 'details', $3::jsonb, 'at', now())),
                resolved = l.resolved OR $4,
                resolved_at = CASE WHEN $4 THEN now() ELSE l.resolved_at END
          WHERE l.id = $1 AND NOT l.resolved AND l.recovery_attempts < $5
         RETURNING {ERROR_LOG_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id, &outcome, &details, &resolve, &max_attempts]).await
}

const SUMMARY_COLUMNS: &str = "error_type, error_count, unresolved, resolved, \
     avg_recovery_attempts::float8 AS avg_recovery_attempts, last_seen";

/// By error type. An admin (`owner` `None`) reads the `devx.error_summary`
/// view; a user gets the same figures over the error logs they may see.
pub async fn summary(db: &impl Queryable, owner: Option<Uuid>) -> Result<Vec<ErrorSummary>, DbError> {
    match owner {
        None => {
            let sql = format!("SELECT {SUMMARY_COLUMNS} FROM devx.error_summary ORDER BY error_type");
            db.query_as(&sql, &[]).await
        }
        Some(owner) => {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM (
                     SELECT l.error_type,
                            count(*) AS error_count,
                            count(*) FILTER (WHERE NOT l.resolved) AS unresolved,
                            count(*) FILTER (WHERE l.resolved) AS resolved,
                            round(avg(l.recovery_attempts), 2) AS avg_recovery_attempts,
                            max(l.created_at) AS last_seen
                       FROM devx.error_logs l {JOINS}
                      WHERE {OWNER} = $1
                      GROUP BY l.error_type
                 ) s ORDER BY error_type"
            );
            db.query_as(&sql, &[&owner]).await
        }
    }
}
