//! Task executions over HTTP: start one on a task (or queue it, `pending`,
//! and start it later), list a task's, read one,
//! renew its lease (heartbeat), complete or fail it (which finishes its
//! task: a failure writes an error log and records a failed attempt, which
//! puts the task back to pending after a backoff while attempts are left,
//! else fails it), and the summary by agent type.
//!
//! An execution ends by one conditional update on `running`, so of two
//! concurrent ends one wins; the other gets a 409 naming the status found,
//! or, when the reaper ended it, saying that its lease was lost and its task
//! handed on.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{
    ErrorType, Execution, ExecutionOutcome, ExecutionStatus, ExecutionSummary, Heartbeat, Task, TaskStatus,
};
use super::queries::errors::{self as eq, NewError};
use super::queries::executions as q;
use super::queries::tasks as tq;
use super::settings::AgentSettings;
use super::tasks::visible_task;
use super::{AGENT_TYPE_RULE, Items, JSON_MAX, TimeKey, is_agent_type};
use crate::accounts::{Bearer, Principal};
use crate::db::{DbError, Queryable};
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::pagination::{Page, PageParams, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, Json, Path, Query};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_executions, start_execution))
        .routes(routes!(execution_summary))
        .routes(routes!(get_execution))
        .routes(routes!(start_queued))
        .routes(routes!(heartbeat))
        .routes(routes!(complete_execution))
        .routes(routes!(fail_execution))
}

/// The execution if it exists and the caller may see it.
pub(super) async fn visible_execution(
    db: &impl Queryable,
    principal: &Principal,
    id: Uuid,
) -> Result<Option<Execution>, DbError> {
    Ok(principal.visibility().filter(q::get_execution(db, id).await?))
}

/// A task's executions, newest first.
#[utoipa::path(
    get, path = "/api/tasks/{id}/executions", tag = "executions", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Task id"), PageParams),
    responses(
        (status = 200, body = Page<Execution>),
        (status = 400, description = "The id is not a UUID, bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_executions(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Query(p): Query<PageParams>,
) -> ApiResult<Json<Page<Execution>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let rows = crate::db_read!(state.db, |c| async {
        match visible_task(c, &principal, id, false).await? {
            Some(_) => q::list_executions(c, id, after, limit).await.map(Some),
            None => Ok(None),
        }
    })?
    .ok_or(ApiError::NotFound("task"))?;
    Ok(Json(Page::from_rows(rows, limit, |x| (x.created_at, x.id))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartExecution {
    #[schema(example = "claude-code", pattern = "^[a-z][a-z0-9_-]{0,49}$")]
    pub agent_type: String,
    /// At most 256 KiB of JSON.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub agent_config: Map<String, Value>,
    /// `running` (the default): the execution starts now, holding a lease;
    /// `pending`: it is queued, holding no lease and leaving the task as it
    /// is, until `POST /api/executions/{id}/start` or a claim by an agent of
    /// its `agent_type` starts it.
    #[serde(default)]
    pub status: StartAs,
}

/// How a new execution begins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartAs {
    /// Queued: started later.
    Pending,
    /// Started now.
    #[default]
    Running,
}

/// Start an execution of a pending or in-progress task (a pending task
/// becomes in_progress, assigned to the caller unless assigned already), or
/// queue one (`"status": "pending"`: the task is left as it is, and the
/// execution holds no lease until it starts). A task has one open (pending
/// or running) execution at a time. A started execution counts as an
/// attempt and holds a lease like a claimed one; the concurrency limits
/// apply to claims only.
#[utoipa::path(
    post, path = "/api/tasks/{id}/executions", tag = "executions", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Task id"), IdempotencyKey),
    request_body = StartExecution,
    responses(
        (status = 201, description = "Started (running), or queued (pending)", body = Execution, headers(("Location" = String, description = "The new execution: /api/executions/{id}"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is finished or cancelled, or already has an open (pending or running) execution; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn start_execution(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Json(req): Json<StartExecution>,
) -> ApiResult<Created<Execution>> {
    let agent_config = Value::Object(req.agent_config);
    let mut v = Validator::new();
    v.check(is_agent_type(&req.agent_type), "agent_type", AGENT_TYPE_RULE);
    v.json_object("agent_config", &agent_config, JSON_MAX);
    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    // Locked: starts on one task are decided one at a time.
    let task = visible_task(&tx, &principal, id, true).await?.ok_or(ApiError::NotFound("task"))?;
    match task.status {
        TaskStatus::Pending | TaskStatus::InProgress => {
            if let Some(open) = q::open_execution(&tx, id).await? {
                return Err(ApiError::Conflict {
                    detail: format!(
                        "the task already has an open execution ({open}); start, complete, fail or cancel it first"
                    ),
                    field: None,
                });
            }
        }
        other => {
            return Err(ApiError::Conflict {
                detail: format!(
                    "the task is {}, which is final; executions start only on pending or in_progress tasks",
                    other.as_str()
                ),
                field: None,
            });
        }
    }
    let lease = lease_of(&tx, &task).await?;
    let execution = if req.status == StartAs::Pending {
        q::queue_execution(&tx, id, &req.agent_type, &agent_config, task.attempt + 1, lease).await?
    } else {
        let attempt = tq::begin_attempt(&tx, id, principal.user_id)
            .await?
            .ok_or_else(|| ApiError::internal("a locked open task changed status"))?;
        let actor = principal.actor();
        q::start_execution(&tx, id, &req.agent_type, &agent_config, attempt, lease, &actor).await?
    };
    tx.commit().await?;
    Ok(Created::at(format!("/api/executions/{}", execution.id), execution))
}

/// The lease of the task's executions: its own, or the `agents.lease_seconds` setting.
async fn lease_of(db: &impl Queryable, task: &Task) -> Result<i32, DbError> {
    Ok(match task.lease_seconds {
        Some(lease) => lease,
        None => AgentSettings::load(db).await?.lease_seconds,
    })
}

/// Start a queued (pending) execution: it runs from now as the next attempt
/// of its task, holding a lease as a claimed one does, and the task becomes
/// in_progress (assigned to the caller unless assigned already). As for an
/// execution started by hand, the concurrency limits apply to claims only.
#[utoipa::path(
    post, path = "/api/executions/{id}/start", tag = "executions", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Execution id"), IdempotencyKey),
    responses(
        (status = 200, description = "Started (running)", body = Execution),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending (the detail names its status and the allowed next ones); or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn start_queued(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Execution>> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let x = visible_execution(&tx, &principal, id).await?.ok_or(ApiError::NotFound("execution"))?;
    // Lock order everywhere: the task, then its executions.
    let task = visible_task(&tx, &principal, x.task_id, true).await?.ok_or(ApiError::NotFound("execution"))?;
    let x = visible_execution(&tx, &principal, id).await?.ok_or(ApiError::NotFound("execution"))?;
    if x.status != ExecutionStatus::Pending {
        return Err(ApiError::Conflict { detail: not_running(&x, ExecutionStatus::Running), field: None });
    }
    let lease = lease_of(&tx, &task).await?;
    // A queued execution's task is open: cancelling the task cancels it.
    let attempt = tq::begin_attempt(&tx, task.id, principal.user_id)
        .await?
        .ok_or_else(|| ApiError::internal("the task of a pending execution is not open"))?;
    let started = q::run_queued(&tx, q::Queued::Execution(id), attempt, lease, &principal.actor())
        .await?
        .ok_or_else(|| ApiError::internal("a pending execution changed status under its task's lock"))?;
    tx.commit().await?;
    Ok(Json(started))
}

/// Per agent type over the caller's executions (all for an admin, from the
/// `task_execution_summary` view): runs, success rate, mean and p95 duration.
#[utoipa::path(
    get, path = "/api/executions/summary", tag = "executions", security(("bearer" = ["read"])),
    responses(
        (status = 200, body = Items<ExecutionSummary>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn execution_summary(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Items<ExecutionSummary>>> {
    let owner = principal.visibility().owner();
    let items = crate::db_read!(state.db, |c| q::summary(c, owner))?;
    Ok(Json(Items { items }))
}

/// One execution.
#[utoipa::path(
    get, path = "/api/executions/{id}", tag = "executions", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Execution id")),
    responses(
        (status = 200, body = Execution),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_execution(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Execution>> {
    let (principal, x) = crate::db_read_as!(state, bearer, |c| q::get_execution(c, id))?;
    principal.visibility().filter(x).map(Json).ok_or(ApiError::NotFound("execution"))
}

/// Ends a visible running execution as `to`; the 404 and 409 answers.
async fn end(
    db: &impl Queryable,
    principal: &Principal,
    id: Uuid,
    to: ExecutionStatus,
    error_details: Option<&Value>,
) -> ApiResult<Execution> {
    let x = visible_execution(db, principal, id).await?.ok_or(ApiError::NotFound("execution"))?;
    // Lock order everywhere: the task, then its executions (cancel and start
    // do the same), so ending an execution cannot deadlock with a cancel.
    tq::get_task(db, x.task_id, true).await?;
    match q::finish_execution(db, id, to, error_details).await? {
        Some(x) => Ok(x),
        None => {
            let now = visible_execution(db, principal, id).await?.ok_or(ApiError::NotFound("execution"))?;
            Err(ApiError::Conflict { detail: not_running(&now, to), field: None })
        }
    }
}

/// Why an execution that is not running cannot become `to`: its lease was
/// lost (the reaper ended it and handed its task on), or its status.
fn not_running(x: &Execution, to: ExecutionStatus) -> String {
    let reason = x.error_details.as_ref().and_then(|d| d.get("reason")).and_then(Value::as_str);
    match (x.status, reason) {
        (ExecutionStatus::Failed, Some("lost")) => format!(
            "the execution's lease was lost: no heartbeat came before it expired, so devx failed it as lost and \
             handed its task on (another attempt or a final failure); this execution cannot become {}",
            to.as_str()
        ),
        (ExecutionStatus::Failed, Some("timed_out")) => format!(
            "the execution ran longer than agents.execution_timeout_seconds, so devx failed it as timed out and \
             handed its task on; this execution cannot become {}",
            to.as_str()
        ),
        (status, _) => status.refusal(to),
    }
}

/// Renew a running execution's lease.
///
/// An agent calls this well within `lease_seconds` (say every third of
/// it); appending log lines renews the lease too. One update: the answer is
/// the new expiry. When the task was cancelled meanwhile the answer says so
/// (`cancelled: true`, no lease): the agent should stop. A lost lease (the
/// reaper failed the execution and handed its task on) is a 409: the work
/// belongs to someone else now.
#[utoipa::path(
    post, path = "/api/executions/{id}/heartbeat", tag = "executions", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The lease renewed, or the execution cancelled", body = Heartbeat),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not running: the lease was lost, or the execution ended (the detail says which)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn heartbeat(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Heartbeat>> {
    let client = state.db.client().await?;
    if let Some(until) = q::heartbeat(&client, id, principal.visibility().owner()).await? {
        return Ok(Json(Heartbeat {
            execution_id: id,
            status: ExecutionStatus::Running,
            lease_expires_at: Some(until),
            cancelled: false,
        }));
    }
    let x = visible_execution(&client, &principal, id).await?.ok_or(ApiError::NotFound("execution"))?;
    match x.status {
        ExecutionStatus::Cancelled => {
            Ok(Json(Heartbeat { execution_id: id, status: x.status, lease_expires_at: None, cancelled: true }))
        }
        _ => Err(ApiError::Conflict { detail: not_running(&x, ExecutionStatus::Running), field: None }),
    }
}

/// Moves the execution's task from in_progress to `to`; a task that is no
/// longer in progress is left as it is.
async fn finish_task(
    db: &impl Queryable,
    principal: &Principal,
    task_id: Uuid,
    to: TaskStatus,
) -> ApiResult<super::model::Task> {
    match tq::finish_task(db, task_id, TaskStatus::InProgress, to).await? {
        Some(task) => Ok(task),
        None => visible_task(db, principal, task_id, false).await?.ok_or(ApiError::NotFound("task")),
    }
}

/// Complete a running execution; its task becomes completed.
#[utoipa::path(
    post, path = "/api/executions/{id}/complete", tag = "executions", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Execution id")),
    responses(
        (status = 200, body = ExecutionOutcome),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not running (the detail names its status and the allowed next ones)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn complete_execution(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ExecutionOutcome>> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let execution = end(&tx, &principal, id, ExecutionStatus::Completed, None).await?;
    let task = finish_task(&tx, &principal, execution.task_id, TaskStatus::Completed).await?;
    tx.commit().await?;
    Ok(Json(ExecutionOutcome { execution, task, error: None }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailExecution {
    /// What went wrong, stored on the execution and as the error log's
    /// context; at most 256 KiB of JSON.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub error_details: Map<String, Value>,
    /// The error log's type; default `system`.
    #[serde(default)]
    pub error_type: ErrorType,
    /// The error log's message, 1 to 10,000 characters; default
    /// `error_details.message`, else "execution failed".
    #[schema(
        min_length = 1,
        max_length = 10_000,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub message: Option<String>,
    #[schema(max_length = 200_000)]
    pub stack: Option<String>,
    /// Whether the task may run again: by default (true) a failed attempt
    /// puts the task back to pending, unassigned, to be claimed again after
    /// a backoff while it has attempts left, and fails it when they are used
    /// up; false fails it now, whatever is left.
    #[serde(default = "yes")]
    pub retry: bool,
}

fn yes() -> bool {
    true
}

impl Default for FailExecution {
    fn default() -> Self {
        FailExecution {
            error_details: Map::new(),
            error_type: ErrorType::default(),
            message: None,
            stack: None,
            retry: true,
        }
    }
}

/// Fail a running execution: records an error log and a failed attempt in
/// the task's `errors`; the task goes back to pending (claimable after a
/// backoff) while it has attempts left and `retry` is not false, else it
/// fails (a dead letter once every attempt is used; `POST
/// /api/tasks/{id}/retry` revives it). The body is optional.
#[utoipa::path(
    post, path = "/api/executions/{id}/fail", tag = "executions", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Execution id")),
    request_body(content = Option<FailExecution>),
    responses(
        (status = 200, description = "Failed; the error log written and the task's new state", body = ExecutionOutcome),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not running (the detail names its status and the allowed next ones)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn fail_execution(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    body: Option<Json<Option<FailExecution>>>,
) -> ApiResult<Json<ExecutionOutcome>> {
    // No body, an empty one, or `null`: every default.
    let req = body.and_then(|Json(b)| b).unwrap_or_default();
    let details = Value::Object(req.error_details);
    let mut v = Validator::new();
    v.json_object("error_details", &details, JSON_MAX);
    v.opt_text("message", req.message.as_deref(), 1, 10_000);
    v.opt_text("stack", req.stack.as_deref(), 0, 200_000);
    v.finish()?;
    let message = req
        .message
        .as_deref()
        .or_else(|| details.get("message").and_then(Value::as_str).filter(|m| !m.trim().is_empty()))
        .map_or_else(|| "execution failed".to_string(), |m| m.chars().take(10_000).collect::<String>());

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let execution = end(&tx, &principal, id, ExecutionStatus::Failed, Some(&details)).await?;
    let error = eq::insert_error(
        &tx,
        &NewError {
            task_id: Some(execution.task_id),
            execution_id: Some(execution.id),
            error_type: req.error_type,
            message: &message,
            stack: req.stack.as_deref(),
            context: &details,
            created_by: Some(principal.user_id),
        },
    )
    .await?;
    let settings = AgentSettings::load(&tx).await?;
    let entry = attempt_error(&execution, "failed", &message, error.id);
    let task = match fail_attempt(&tx, &settings, &execution, &entry, req.retry).await? {
        Some(task) => task,
        None => visible_task(&tx, &principal, execution.task_id, false).await?.ok_or(ApiError::NotFound("task"))?,
    };
    tx.commit().await?;
    Ok(Json(ExecutionOutcome { execution, task, error: Some(error) }))
}

/// One entry of a task's `errors`: which execution and attempt failed, why
/// (`failed`, `lost`, `timed_out`), the message (at most 1,000 characters)
/// and the error log written. The time is added when it is stored.
pub(super) fn attempt_error(x: &Execution, reason: &str, message: &str, error_log: Uuid) -> Value {
    serde_json::json!({
        "execution_id": x.id,
        "attempt": x.attempt,
        "reason": reason,
        "message": message.chars().take(1000).collect::<String>(),
        "error_log_id": error_log,
    })
}

/// Records a failed attempt on the execution's in-progress task: pending
/// again after the backoff of that attempt (with jitter) if `retry` and
/// attempts are left, else failed. `None` if the task was not in progress.
pub(super) async fn fail_attempt(
    db: &impl Queryable,
    settings: &AgentSettings,
    x: &Execution,
    entry: &Value,
    retry: bool,
) -> Result<Option<Task>, DbError> {
    let backoff = settings.backoff(x.attempt, rand::random::<f64>());
    tq::fail_attempt(db, x.task_id, entry, retry, backoff.as_secs_f64()).await
}
