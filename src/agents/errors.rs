//! Error logs over HTTP: record, list, read, resolve, count a recovery
//! attempt, and the summary by error type.
//!
//! An error log tied to a task is seen by the owner of the task's project;
//! one tied to no task by the user who recorded it; admins see all.
//! Recovery attempts are bounded by the `errors.max_recovery_attempts`
//! setting: past it, an error needs a person (resolve it by hand).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::executions::visible_execution;
use super::model::{ErrorLog, ErrorSummary, ErrorType};
use super::queries::errors::{self as q, ErrorFilter, NewError};
use super::tasks::visible_task;
use super::{Items, JSON_MAX, TimeKey};
use crate::accounts::{Bearer, Principal};
use crate::db::{DbError, Queryable};
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, Json, Path, Query};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_errors, create_error))
        .routes(routes!(error_summary))
        .routes(routes!(get_error))
        .routes(routes!(resolve_error))
        .routes(routes!(recovery_attempt))
}

/// The error log if it exists and the caller may see it.
async fn visible(db: &impl Queryable, principal: &Principal, id: Uuid) -> Result<Option<ErrorLog>, DbError> {
    Ok(principal.visibility().filter(q::get_error(db, id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ErrorListParams {
    pub error_type: Option<ErrorType>,
    pub resolved: Option<bool>,
    pub task_id: Option<Uuid>,
    pub execution_id: Option<Uuid>,
    /// Only errors recorded at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The error logs the caller may see, newest first.
#[utoipa::path(
    get, path = "/api/errors", tag = "errors", security(("bearer" = ["read"])),
    params(ErrorListParams),
    responses(
        (status = 200, body = Page<ErrorLog>),
        (status = 400, description = "Bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_errors(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<ErrorListParams>,
) -> ApiResult<Json<Page<ErrorLog>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let filter = ErrorFilter {
        owner: principal.visibility().owner(),
        error_type: p.error_type,
        resolved: p.resolved,
        task_id: p.task_id,
        execution_id: p.execution_id,
        since: p.since,
        after,
        limit,
    };
    let rows = crate::db_read!(state.db, |c| q::list_errors(c, &filter))?;
    Ok(Json(Page::from_rows(rows, limit, |e| (e.created_at, e.id))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateError {
    pub error_type: ErrorType,
    /// Trimmed; 1 to 10,000 characters.
    #[schema(
        example = "connection reset by peer",
        min_length = 1,
        max_length = 10_000,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub message: String,
    #[schema(max_length = 200_000)]
    pub stack: Option<String>,
    /// At most 256 KiB of JSON.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
    /// A task of yours; implied by `execution_id` when omitted. Without
    /// either, the error log is yours alone (and admins').
    pub task_id: Option<Uuid>,
    /// An execution of yours (of `task_id`, when both are given; 404 naming
    /// the field otherwise).
    pub execution_id: Option<Uuid>,
}

/// Record an error.
#[utoipa::path(
    post, path = "/api/errors", tag = "errors", security(("bearer" = ["write"])),
    params(IdempotencyKey),
    request_body = CreateError,
    responses(
        (status = 201, body = ErrorLog, headers(("Location" = String, description = "The new error log: /api/errors/{id}"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; no such task or execution of yours; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_error(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CreateError>,
) -> ApiResult<Created<ErrorLog>> {
    let context = Value::Object(req.context);
    let mut v = Validator::new();
    v.text("message", &req.message, 1, 10_000);
    v.opt_text("stack", req.stack.as_deref(), 0, 200_000);
    v.json_object("context", &context, JSON_MAX);
    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let mut task_id = req.task_id;
    if let Some(execution_id) = req.execution_id {
        let x = visible_execution(&tx, &principal, execution_id)
            .await?
            .ok_or_else(|| ApiError::no_such("execution_id", "no such execution of yours"))?;
        if task_id.is_some_and(|t| t != x.task_id) {
            // The execution named is none of task_id's: answered as a
            // reference to a row that does not exist.
            return Err(ApiError::no_such(
                "execution_id",
                "no such execution of task_id; leave task_id out to take the execution's task",
            ));
        }
        task_id = Some(x.task_id);
    } else if let Some(id) = task_id {
        visible_task(&tx, &principal, id, false)
            .await?
            .ok_or_else(|| ApiError::no_such("task_id", "no such task of yours"))?;
    }
    let error = q::insert_error(
        &tx,
        &NewError {
            task_id,
            execution_id: req.execution_id,
            error_type: req.error_type,
            message: req.message.trim(),
            stack: req.stack.as_deref(),
            context: &context,
            created_by: Some(principal.user_id),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Created::at(format!("/api/errors/{}", error.id), error))
}

/// Per error type over the error logs the caller may see (all for an admin,
/// from the `error_summary` view): counts, unresolved, last seen.
#[utoipa::path(
    get, path = "/api/errors/summary", tag = "errors", security(("bearer" = ["read"])),
    responses(
        (status = 200, body = Items<ErrorSummary>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn error_summary(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Items<ErrorSummary>>> {
    let owner = principal.visibility().owner();
    let items = crate::db_read!(state.db, |c| q::summary(c, owner))?;
    Ok(Json(Items { items }))
}

/// One error log.
#[utoipa::path(
    get, path = "/api/errors/{id}", tag = "errors", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Error log id")),
    responses(
        (status = 200, body = ErrorLog),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such error log of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_error(State(state): State<AppState>, bearer: Bearer, Path(id): Path<Uuid>) -> ApiResult<Json<ErrorLog>> {
    let (principal, e) = crate::db_read_as!(state, bearer, |c| q::get_error(c, id))?;
    principal.visibility().filter(e).map(Json).ok_or(ApiError::NotFound("error log"))
}

fn already_resolved(e: &ErrorLog) -> ApiError {
    let at = e.resolved_at.map(|t| format!(" at {}", t.to_rfc3339())).unwrap_or_default();
    ApiError::Conflict { detail: format!("the error is already resolved{at}, which is final"), field: None }
}

/// Mark an error resolved.
#[utoipa::path(
    post, path = "/api/errors/{id}/resolve", tag = "errors", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Error log id")),
    responses(
        (status = 200, body = ErrorLog),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such error log of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already resolved", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn resolve_error(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ErrorLog>> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    visible(&tx, &principal, id).await?.ok_or(ApiError::NotFound("error log"))?;
    match q::resolve_error(&tx, id).await? {
        Some(e) => {
            tx.commit().await?;
            Ok(Json(e))
        }
        None => {
            let now = visible(&tx, &principal, id).await?.ok_or(ApiError::NotFound("error log"))?;
            Err(already_resolved(&now))
        }
    }
}

crate::text_enum! {
    pub enum RecoveryOutcome {
        Succeeded,
        Failed,
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryAttempt {
    pub outcome: RecoveryOutcome,
    /// What was tried and what came of it; at most 256 KiB of JSON.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
    /// Resolve the error; default: when the attempt succeeded.
    pub resolve: Option<bool>,
}

/// Count a recovery attempt on an unresolved error and record its outcome
/// in the error's `recovery_log`; a successful one resolves the error
/// unless `resolve` is false.
#[utoipa::path(
    post, path = "/api/errors/{id}/recovery-attempt", tag = "errors", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Error log id"), IdempotencyKey),
    request_body = RecoveryAttempt,
    responses(
        (status = 200, body = ErrorLog),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such error log of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already resolved, or out of recovery attempts (errors.max_recovery_attempts); or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn recovery_attempt(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Json(req): Json<RecoveryAttempt>,
) -> ApiResult<Json<ErrorLog>> {
    let details = Value::Object(req.details);
    let mut v = Validator::new();
    v.json_object("details", &details, JSON_MAX);
    v.finish()?;
    let outcome = req.outcome.as_str();
    let resolve = req.resolve.unwrap_or(req.outcome == RecoveryOutcome::Succeeded);

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    visible(&tx, &principal, id).await?.ok_or(ApiError::NotFound("error log"))?;
    let max = q::max_recovery_attempts(&tx).await?;
    match q::record_recovery_attempt(&tx, id, outcome, &details, resolve, max).await? {
        Some(e) => {
            tx.commit().await?;
            Ok(Json(e))
        }
        None => {
            let now = visible(&tx, &principal, id).await?.ok_or(ApiError::NotFound("error log"))?;
            if now.resolved {
                Err(already_resolved(&now))
            } else {
                Err(ApiError::Conflict {
                    detail: format!(
                        "the error has had {} recovery attempts, the most allowed \
                         (errors.max_recovery_attempts = {max}); it needs a person: resolve it by hand",
                        now.recovery_attempts
                    ),
                    field: None,
                })
            }
        }
    }
}
