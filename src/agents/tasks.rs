//! Tasks over HTTP: list, create, read (with subtasks and the latest
//! execution), change, cancel (with their pending subtasks), the claim of the
//! next task by an agent (a POST: it changes state), and counts.
//!
//! Status changes are conditional updates on the status the change starts
//! from, so of two concurrent changes one wins and the other gets a 409
//! naming the status it found and the ones allowed from there.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{CancelledTask, ClaimedTask, PriorityCount, Task, TaskDetail, TaskStats, TaskStatus};
use super::queries::executions as xq;
use super::queries::tasks::{self as q, NewTask, TaskChange, TaskFilter, TaskKey};
use super::{AGENT_TYPE_PATTERN, AGENT_TYPE_RULE, JSON_MAX, is_agent_type};
use crate::accounts::{PersonRef, Principal, resolve_person};
use crate::db::{DbError, Queryable};
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, IfMatch, Json, Path, Query, Tagged, Versioned};
use crate::projects::access;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(claim_task))
        .routes(routes!(task_stats))
        .routes(routes!(get_task, update_task))
        .routes(routes!(cancel_task))
}

/// Subtasks shown with a task.
const SUBTASKS_SHOWN: i64 = 200;

/// The task if it exists and the caller may see it (with `lock`, row-locked).
pub(super) async fn visible_task(
    db: &impl Queryable,
    principal: &Principal,
    id: Uuid,
    lock: bool,
) -> Result<Option<Task>, DbError> {
    Ok(principal.visibility().filter(q::get_task(db, id, lock).await?))
}

fn priority_ok(p: i32) -> bool {
    (0..=10).contains(&p)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskListParams {
    pub project_id: Option<Uuid>,
    pub status: Option<TaskStatus>,
    /// Lowest priority to include (0..10).
    #[param(minimum = 0, maximum = 10)]
    pub priority_min: Option<i32>,
    /// Highest priority to include (0..10).
    #[param(minimum = 0, maximum = 10)]
    pub priority_max: Option<i32>,
    /// A user id, or the email of an account.
    #[param(value_type = Option<PersonRef>)]
    pub assigned_to: Option<String>,
    /// Only the direct subtasks of this task.
    pub parent_task_id: Option<Uuid>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The caller's tasks (all tasks for an admin), highest priority first, then oldest.
#[utoipa::path(
    get, path = "/api/tasks", tag = "tasks", security(("bearer" = ["read"])),
    params(TaskListParams),
    responses(
        (status = 200, body = Page<Task>),
        (status = 400, description = "Bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`assigned_to` is an email no account has", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Priority bounds out of 0..10, or `assigned_to` neither a user id nor an email", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_tasks(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<TaskListParams>,
) -> ApiResult<Json<Page<Task>>> {
    let PageRequest { limit, after } = PageRequest::<TaskKey>::new(p.limit, p.cursor.as_deref())?;
    let mut v = Validator::new();
    v.check(p.priority_min.is_none_or(priority_ok), "priority_min", "must be 0 to 10");
    v.check(p.priority_max.is_none_or(priority_ok), "priority_max", "must be 0 to 10");
    v.finish()?;
    let assigned_to = match &p.assigned_to {
        Some(named) => Some(resolve_person(&state.db.client().await?, "assigned_to", named).await?),
        None => None,
    };
    let filter = TaskFilter {
        owner: principal.visibility().owner(),
        project_id: p.project_id,
        status: p.status,
        priority_min: p.priority_min,
        priority_max: p.priority_max,
        assigned_to,
        parent_task_id: p.parent_task_id,
        after,
        limit,
    };
    let rows = crate::db_read!(state.db, |c| q::list_tasks(c, &filter))?;
    Ok(Json(Page::from_rows(rows, limit, |t| (t.priority, t.created_at, t.id))))
}

/// A task's requirements: any object of at most [`JSON_MAX`] bytes of JSON,
/// whose `agent_type`, when there, is an agent type or a non-empty list of
/// them (what [`check_requirements`] checks).
fn requirements_schema(nullable: bool, description: &str) -> Schema {
    let agent_type = || ObjectBuilder::new().schema_type(Type::String).pattern(Some(AGENT_TYPE_PATTERN));
    let types = if nullable { SchemaType::from_iter([Type::Object, Type::Null]) } else { Type::Object.into() };
    ObjectBuilder::new()
        .schema_type(types)
        .property(
            "agent_type",
            OneOfBuilder::new()
                .item(agent_type())
                .item(ArrayBuilder::new().items(agent_type()).min_items(Some(1)))
                .description(Some("Only agents of this type (or of one of these types) may claim the task.")),
        )
        .description(Some(format!(
            "{description}, at most 256 KiB of JSON; `agent_type` (a name or a list of names) restricts which \
             agents may claim the task."
        )))
        .into()
}

fn create_requirements_schema() -> Schema {
    requirements_schema(false, "Free-form")
}

fn update_requirements_schema() -> Schema {
    requirements_schema(true, "Replaces the requirements: free-form")
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// A project of yours (404 naming the field if there is none).
    pub project_id: Uuid,
    /// Trimmed; 1 to 500 characters.
    #[schema(
        example = "Add sign-in with GitHub",
        min_length = 1,
        max_length = 500,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub title: String,
    #[schema(max_length = 100_000)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(schema_with = create_requirements_schema)]
    pub requirements: Map<String, Value>,
    /// 0 (lowest) to 10 (highest); default 0.
    #[serde(default, deserialize_with = "crate::http::extract::whole")]
    #[schema(minimum = 0, maximum = 10)]
    pub priority: i32,
    /// A pending or in-progress task of the same project (404 naming the
    /// field if there is none, 409 if it is finished).
    pub parent_task_id: Option<Uuid>,
    /// Who does it: a user id or an email; yourself (an admin may name any
    /// user). Another user is a 404 naming the field, as for one that does
    /// not exist.
    #[schema(value_type = Option<PersonRef>)]
    pub assigned_to: Option<String>,
}

fn check_requirements(v: &mut Validator, requirements: &Value) {
    v.json_object("requirements", requirements, JSON_MAX);
    if let Some(agent_type) = requirements.get("agent_type") {
        let ok = match agent_type {
            Value::String(s) => is_agent_type(s),
            Value::Array(items) => !items.is_empty() && items.iter().all(|i| i.as_str().is_some_and(is_agent_type)),
            _ => false,
        };
        v.check(
            ok,
            "requirements.agent_type",
            format!("must be an agent type or a list of them: each {AGENT_TYPE_RULE}"),
        );
    }
}

/// Create a task (pending) in one of the caller's projects.
#[utoipa::path(
    post, path = "/api/tasks", tag = "tasks", security(("bearer" = ["write"])),
    params(IdempotencyKey),
    request_body = CreateTask,
    responses(
        (status = 201, body = Task, headers(("Location" = String, description = "The new task: /api/tasks/{id}"), ("ETag" = String, description = "The new task's version, for If-Match"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, parent task or assignee (`assigned_to`) of yours; the field is named", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The parent task is finished or cancelled; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; no such project or parent task of yours; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_task(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CreateTask>,
) -> ApiResult<Created<Task>> {
    let requirements = Value::Object(req.requirements);
    let mut v = Validator::new();
    v.text("title", &req.title, 1, 500);
    v.opt_text("description", req.description.as_deref(), 0, 100_000);
    check_requirements(&mut v, &requirements);
    v.check(priority_ok(req.priority), "priority", "must be 0 (lowest) to 10 (highest)");
    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let assigned_to = match &req.assigned_to {
        Some(named) => Some(assignee(&tx, &principal, named).await?),
        None => None,
    };
    // A body that names a project the caller cannot see is a 404 naming the field.
    access::project_for(&tx, &principal, req.project_id, false).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::no_such("project_id", "no such project of yours"),
        other => other,
    })?;
    if let Some(parent) = req.parent_task_id {
        match q::lock_parent_status(&tx, parent, req.project_id).await? {
            None => return Err(ApiError::no_such("parent_task_id", "the parent task must exist in the same project")),
            Some(status) if !status.is_open() => {
                return Err(ApiError::Conflict {
                    detail: format!(
                        "the parent task is {}; subtasks can be added only to pending or in_progress tasks",
                        status.as_str()
                    ),
                    field: Some("parent_task_id".into()),
                });
            }
            Some(_) => {}
        }
    }
    let task = q::insert_task(
        &tx,
        &NewTask {
            project_id: req.project_id,
            parent_task_id: req.parent_task_id,
            title: req.title.trim(),
            description: req.description.as_deref(),
            requirements: &requirements,
            priority: req.priority,
            created_by: principal.user_id,
            assigned_to,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/tasks/{}", task.id), task))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimTask {
    /// The claiming agent's type, e.g. `claude-code`.
    #[schema(example = "claude-code", pattern = "^[a-z][a-z0-9_-]{0,49}$")]
    pub agent_type: String,
}

/// Claim the next task for an agent.
///
/// Atomically takes the highest-priority (then oldest) pending task among
/// the caller's projects (all projects for an admin) whose
/// `requirements.agent_type` is absent or names this agent type, marks it
/// `in_progress`, assigns it to the caller, and starts a running execution
/// for it. Many agents polling at once never get the same task: rows being
/// claimed are skipped (`FOR UPDATE SKIP LOCKED`), not waited for.
/// When there is nothing to claim the answer is **204 No Content**. A claim
/// changes state, so it is a POST that needs the `write` scope: a client or
/// proxy that retries a read can never claim twice.
#[utoipa::path(
    post, path = "/api/tasks/claim", tag = "tasks", security(("bearer" = ["write"])),
    params(IdempotencyKey),
    request_body = ClaimTask,
    responses(
        (status = 200, description = "The claimed task and its new execution", body = ClaimedTask),
        (status = 204, description = "No pending task to claim"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "agent_type missing or invalid; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn claim_task(
    State(state): State<AppState>,
    principal: Principal,
    Json(p): Json<ClaimTask>,
) -> ApiResult<Response> {
    let mut v = Validator::new();
    v.check(is_agent_type(&p.agent_type), "agent_type", AGENT_TYPE_RULE);
    v.finish()?;
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let Some(task) = q::claim_next(&tx, principal.visibility().owner(), &p.agent_type, principal.user_id).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let execution = xq::start_execution(&tx, task.id, &p.agent_type, &Value::Object(Map::new())).await?;
    tx.commit().await?;
    Ok(Json(ClaimedTask { task, execution }).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskStatsParams {
    /// Only this project's tasks.
    pub project_id: Option<Uuid>,
}

/// Counts over the caller's tasks (all for an admin): by status and
/// priority, the success rate, and the mean duration of completed executions.
#[utoipa::path(
    get, path = "/api/tasks/stats", tag = "tasks", security(("bearer" = ["read"])),
    params(TaskStatsParams),
    responses(
        (status = 200, body = TaskStats),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn task_stats(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<TaskStatsParams>,
) -> ApiResult<Json<TaskStats>> {
    let owner = principal.visibility().owner();
    let (counts, avg) = crate::db_read!(state.db, |c| async {
        let counts = q::task_counts(c, owner, p.project_id).await?;
        let avg = q::avg_completion_seconds(c, owner, p.project_id).await?;
        Ok::<_, DbError>((counts, avg))
    })?;
    let mut by_status: std::collections::BTreeMap<String, i64> =
        TaskStatus::ALL.iter().map(|s| (s.as_str().to_string(), 0)).collect();
    let mut by_priority: std::collections::BTreeMap<i32, i64> = Default::default();
    for c in &counts {
        *by_status.entry(c.status.clone()).or_default() += c.count;
        *by_priority.entry(c.priority).or_default() += c.count;
    }
    let completed = by_status["completed"];
    let finished = completed + by_status["failed"];
    let success_rate = (finished > 0).then(|| (10_000.0 * completed as f64 / finished as f64).round() / 100.0);
    Ok(Json(TaskStats {
        total: counts.iter().map(|c| c.count).sum(),
        by_status,
        by_priority: by_priority.into_iter().rev().map(|(priority, count)| PriorityCount { priority, count }).collect(),
        success_rate,
        avg_completion_seconds: avg,
    }))
}

/// A task with its direct subtasks and its latest execution.
#[utoipa::path(
    get, path = "/api/tasks/{id}", tag = "tasks", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, body = TaskDetail, headers(("ETag" = String, description = "The task's version, for If-Match"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_task(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<TaskDetail>> {
    let detail = crate::db_read!(state.db, |c| async {
        let Some(task) = visible_task(c, &principal, id, false).await? else { return Ok(None) };
        let (subtasks, subtask_count) = q::subtasks(c, id, SUBTASKS_SHOWN).await?;
        let latest_execution = xq::latest_execution(c, id).await?;
        Ok::<_, DbError>(Some(TaskDetail { task, subtasks, subtask_count, latest_execution }))
    })?;
    detail.map(Tagged).ok_or(ApiError::NotFound("task"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    /// Trimmed; 1 to 500 characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub title: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 100_000)]
    pub description: Option<Option<String>>,
    /// Replaces the requirements.
    #[schema(schema_with = update_requirements_schema)]
    pub requirements: Option<Map<String, Value>>,
    /// 0 (lowest) to 10 (highest).
    #[serde(default, deserialize_with = "crate::http::extract::opt_whole")]
    #[schema(minimum = 0, maximum = 10)]
    pub priority: Option<i32>,
    /// A transition: pending -> in_progress | cancelled; in_progress ->
    /// completed | failed | pending | cancelled. Cancelling cancels the
    /// pending subtasks too; leaving in_progress cancels the task's running
    /// execution. The same status is no change.
    pub status: Option<TaskStatus>,
    /// Yourself, by user id or email, or `null` (an admin may name any
    /// user); another user is a 404 naming the field, as for a user that
    /// does not exist.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<PersonRef>, nullable)]
    pub assigned_to: Option<Option<String>>,
}

/// The user a task is assigned to, named by id or email
/// (`accounts::resolve_person`). Another user is one the caller cannot see:
/// answered as a user that does not exist (which, for an admin, the foreign
/// key answers).
async fn assignee(db: &impl crate::db::Queryable, principal: &Principal, named: &str) -> ApiResult<Uuid> {
    let user = resolve_person(db, "assigned_to", named).await?;
    if !principal.can_see(user) {
        return Err(ApiError::no_such(
            "assigned_to",
            "no such user: you can assign a task only to yourself (or clear it with null)",
        ));
    }
    Ok(user)
}

/// Change a task's fields or status.
#[utoipa::path(
    patch, path = "/api/tasks/{id}", tag = "tasks", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Task id"), IfMatch),
    request_body = UpdateTask,
    responses(
        (status = 200, body = Task, headers(("ETag" = String, description = "The task's version after the change"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Illegal status transition (the detail names the status and the allowed next ones)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the task no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_task(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(req): Json<UpdateTask>,
) -> ApiResult<Tagged<Task>> {
    let requirements = req.requirements.map(Value::Object);
    let mut v = Validator::new();
    v.opt_text("title", req.title.as_deref(), 1, 500);
    if let Some(Some(description)) = &req.description {
        v.text("description", description, 0, 100_000);
    }
    if let Some(r) = &requirements {
        check_requirements(&mut v, r);
    }
    v.check(req.priority.is_none_or(priority_ok), "priority", "must be 0 (lowest) to 10 (highest)");
    v.finish()?;
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let assigned_to = match &req.assigned_to {
        Some(Some(named)) => Some(Some(assignee(&tx, &principal, named).await?)),
        Some(None) => Some(None),
        None => None,
    };
    let current = visible_task(&tx, &principal, id, true).await?.ok_or(ApiError::NotFound("task"))?;
    if_match.check("task", &current.etag())?;
    let mut task = current.clone();
    if let Some(to) = req.status.filter(|to| *to != current.status) {
        if !current.status.next().contains(&to) {
            return Err(ApiError::Conflict { detail: current.status.refusal(to), field: Some("status".into()) });
        }
        task = if to == TaskStatus::Cancelled {
            cancel(&tx, id).await?.map(|c| c.task)
        } else {
            let moved = q::transition_task(&tx, id, to, Some(principal.user_id)).await?;
            if current.status == TaskStatus::InProgress {
                xq::cancel_open_executions(&tx, &[id]).await?;
            }
            moved
        }
        .ok_or_else(|| ApiError::internal("a locked task changed status"))?;
    }
    let change = TaskChange {
        title: req.title.as_deref().map(str::trim),
        description: req.description.as_ref().map(|d| d.as_deref()),
        requirements: requirements.as_ref(),
        priority: req.priority,
        assigned_to,
    };
    if !change.is_empty() {
        task = q::update_task(&tx, id, &change).await?.ok_or(ApiError::NotFound("task"))?;
    }
    tx.commit().await?;
    Ok(Tagged(task))
}

/// Cancels an open task, its pending subtasks at any depth, and the open
/// executions of all of them. `None` if the task was not open.
async fn cancel(db: &impl Queryable, id: Uuid) -> Result<Option<CancelledTask>, DbError> {
    let Some(task) = q::transition_task(db, id, TaskStatus::Cancelled, None).await? else { return Ok(None) };
    let cancelled_subtasks = q::cancel_pending_descendants(db, id).await?;
    let mut ids = cancelled_subtasks.clone();
    ids.push(id);
    let cancelled_executions = xq::cancel_open_executions(db, &ids).await?;
    Ok(Some(CancelledTask { task, cancelled_subtasks, cancelled_executions }))
}

/// Cancel a pending or in-progress task, with its pending subtasks (at any
/// depth) and the running executions of these tasks.
#[utoipa::path(
    post, path = "/api/tasks/{id}/cancel", tag = "tasks", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, body = CancelledTask),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already completed, failed or cancelled", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_task(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<CancelledTask>> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    visible_task(&tx, &principal, id, false).await?.ok_or(ApiError::NotFound("task"))?;
    match cancel(&tx, id).await? {
        Some(cancelled) => {
            tx.commit().await?;
            Ok(Json(cancelled))
        }
        None => {
            // Not open (now): say what it is.
            let now = visible_task(&tx, &principal, id, false).await?.ok_or(ApiError::NotFound("task"))?;
            Err(ApiError::Conflict { detail: now.status.refusal(TaskStatus::Cancelled), field: None })
        }
    }
}
