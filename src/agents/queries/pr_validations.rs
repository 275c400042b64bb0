//! PR validations: create, read with their owner, list, record one check's
//! result (the status follows in the same statement), set the status (and
//! the overall summary) as the CI system reports it, and the summary by
//! repository.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::agents::model::{PR_VALIDATION_COLUMNS, PrValidation, PrValidationSummary, ValidationStatus};
use crate::db::{DbError, FromRow, Queryable, Statement};

/// Who may see a validation: the owner of its task's project, or when it has
/// no task, whoever filed it (`NULL` once that user is gone: admins only).
/// Rows of tasks in deleted projects are left out for everyone.
const OWNER: &str = "CASE WHEN v.task_id IS NULL THEN v.created_by ELSE p.owner_id END";
const JOINS: &str = "LEFT JOIN devx.tasks t ON t.id = v.task_id
     LEFT JOIN devx.projects p ON p.id = t.project_id AND p.status <> 'deleted'";

/// A validation and its owner ([`OWNER`] read as `owner_id`; `NULL`: only
/// admins see it).
#[derive(FromRow)]
struct OwnedValidation {
    #[from_row(flatten)]
    validation: PrValidation,
    owner_id: Option<Uuid>,
}

pub struct NewValidation<'a> {
    pub task_id: Option<Uuid>,
    pub execution_id: Option<Uuid>,
    pub pr_number: i32,
    pub repository: &'a str,
    pub branch_name: Option<&'a str>,
    pub validation_results: &'a Value,
    pub webhook_payload: Option<&'a Value>,
    pub created_by: Uuid,
}

pub async fn insert_validation(db: &impl Queryable, n: &NewValidation<'_>) -> Result<PrValidation, DbError> {
    let sql = format!(
        "INSERT INTO devx.pr_validations AS v (task_id, execution_id, pr_number, repository, branch_name,
                                              validation_results, webhook_payload, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING {PR_VALIDATION_COLUMNS}"
    );
    db.query_one_as(
        &sql,
        &[
            &n.task_id,
            &n.execution_id,
            &n.pr_number,
            &n.repository,
            &n.branch_name,
            &n.validation_results,
            &n.webhook_payload,
            &n.created_by,
        ],
    )
    .await
}

/// A validation and who owns it (`None`: only admins see it).
pub async fn get_validation(db: &impl Queryable, id: Uuid) -> Result<Option<(PrValidation, Option<Uuid>)>, DbError> {
    let sql = format!(
        "SELECT {PR_VALIDATION_COLUMNS}, {OWNER} AS owner_id FROM devx.pr_validations v {JOINS}
          WHERE v.id = $1 AND (v.task_id IS NULL OR p.id IS NOT NULL)"
    );
    Ok(db.query_opt_as::<OwnedValidation>(&sql, &[&id]).await?.map(|r| (r.validation, r.owner_id)))
}

/// Locks a validation's row for the rest of the transaction and reads when
/// it last changed (its version).
pub async fn lock_validation(db: &impl Queryable, id: Uuid) -> Result<Option<DateTime<Utc>>, DbError> {
    db.query_scalar_opt("SELECT updated_at FROM devx.pr_validations WHERE id = $1 FOR UPDATE", &[&id]).await
}

#[derive(Debug, Default)]
pub struct ValidationFilter {
    /// `None`: every owner (an admin).
    pub owner: Option<Uuid>,
    pub repository: Option<String>,
    pub status: Option<ValidationStatus>,
    pub branch_name: Option<String>,
    pub pr_number: Option<i32>,
    pub task_id: Option<Uuid>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Newest first; fetches `limit + 1` rows.
pub async fn list_validations(db: &impl Queryable, f: &ValidationFilter) -> Result<Vec<PrValidation>, DbError> {
    let mut s = Statement::default();
    s.and_some(f.owner, |owner| format!("{OWNER} = {owner}"));
    s.and("(v.task_id IS NULL OR p.id IS NOT NULL)");
    s.and_some(f.repository.as_deref(), |repository| format!("v.repository = {repository}"));
    s.and_some(f.status.map(ValidationStatus::as_str), |status| format!("v.status = {status}"));
    s.and_some(f.branch_name.as_deref(), |branch| format!("v.branch_name = {branch}"));
    s.and_some(f.pr_number, |number| format!("v.pr_number = {number}"));
    s.and_some(f.task_id, |task| format!("v.task_id = {task}"));
    let select = format!("SELECT {PR_VALIDATION_COLUMNS} FROM devx.pr_validations v {JOINS}");
    s.newest_first(&select, "v", f.after, f.limit);
    s.query_as(db).await
}

/// Sets the result of check `name` and recomputes the validation's status
/// from all its checks in the same statement: any failed -> failed; every
/// one passed or skipped -> passed; otherwise running. Concurrent updates of
/// two checks serialize on the row and both count. `None` if the validation
/// is cancelled (or gone).
pub async fn record_check(
    db: &impl Queryable,
    id: Uuid,
    name: &str,
    result: &Value,
) -> Result<Option<PrValidation>, DbError> {
    let sql = format!(
        "UPDATE devx.pr_validations v
            SET validation_results = v.validation_results || jsonb_build_object($2::text, $3::jsonb),
                status = (SELECT CASE
                                     WHEN bool_or(c.value ->> 'status' = 'failed') THEN 'failed'
                                     WHEN bool_and(c.value ->> 'status' IN ('passed', 'skipped')) THEN 'passed'
                                     ELSE 'running'
                                 END
                            FROM jsonb_each(v.validation_results || jsonb_build_object($2::text, $3::jsonb)) c)
          WHERE v.id = $1 AND v.status <> 'cancelled'
         RETURNING {PR_VALIDATION_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id, &name, &result]).await
}

/// Sets the status of a validation that is still in `from` (and, when
/// given, its overall `summary`), so that of two concurrent changes one
/// wins. `None` if it is no longer in `from`.
pub async fn set_status(
    db: &impl Queryable,
    id: Uuid,
    from: ValidationStatus,
    to: ValidationStatus,
    summary: Option<&Value>,
) -> Result<Option<PrValidation>, DbError> {
    let sql = format!(
        "UPDATE devx.pr_validations v SET status = $3, summary = coalesce($4, v.summary)
          WHERE v.id = $1 AND v.status = $2
         RETURNING {PR_VALIDATION_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id, &from.as_str(), &to.as_str(), &summary]).await
}

const SUMMARY_COLUMNS: &str = "repository, validations, pending, running, passed, failed, cancelled, \
     pass_rate::float8 AS pass_rate, last_validation_at";

/// By repository. An admin (`owner` `None`) reads the
/// `devx.pr_validation_summary` view; a user gets the same figures over the
/// validations they may see.
pub async fn summary(db: &impl Queryable, owner: Option<Uuid>) -> Result<Vec<PrValidationSummary>, DbError> {
    match owner {
        None => {
            let sql = format!("SELECT {SUMMARY_COLUMNS} FROM devx.pr_validation_summary ORDER BY repository");
            db.query_as(&sql, &[]).await
        }
        Some(owner) => {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM (
                     SELECT v.repository,
                            count(*) AS validations,
                            count(*) FILTER (WHERE v.status = 'pending') AS pending,
                            count(*) FILTER (WHERE v.status = 'running') AS running,
                            count(*) FILTER (WHERE v.status = 'passed') AS passed,
                            count(*) FILTER (WHERE v.status = 'failed') AS failed,
                            count(*) FILTER (WHERE v.status = 'cancelled') AS cancelled,
                            round(100.0 * count(*) FILTER (WHERE v.status = 'passed')
                                  / nullif(count(*) FILTER (WHERE v.status IN ('passed', 'failed')), 0), 2)
                                AS pass_rate,
                            max(v.created_at) AS last_validation_at
                       FROM devx.pr_validations v {JOINS}
                      WHERE {OWNER} = $1
                      GROUP BY v.repository
                 ) s ORDER BY repository"
            );
            db.query_as(&sql, &[&owner]).await
        }
    }
}
