//! Tasks over HTTP: list (dead letters too), create (idempotent with a
//! `unique_key`), read (with subtasks and the latest execution), change,
//! cancel (with their pending subtasks), retry a failed one, the claim of
//! the next task by an agent (a POST: it changes state; within the
//! concurrency limits), and counts.
//!
//! Status changes are conditional updates on the status the change starts
//! from, so of two concurrent changes one wins and the other gets a 409
//! naming the status it found and the ones allowed from there.

use std::time::Duration;

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
use super::settings::{ATTEMPTS_MAX, ATTEMPTS_MIN, AgentSettings, LEASE_MAX, LEASE_MIN};
use super::{AGENT_TYPE_PATTERN, AGENT_TYPE_RULE, JSON_MAX, is_agent_type};
use crate::accounts::{Bearer, PersonRef, Principal, resolve_person};
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
        .routes(routes!(retry_task))
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
    /// `true`: only dead letters, the tasks that failed with every attempt
    /// used (revive one with `POST /api/tasks/{id}/retry`); `false`: every
    /// other task.
    pub dead: Option<bool>,
    /// `true`: only open tasks (pending, in_progress), as the
    /// `devx.active_tasks` view has them; `false`: only finished and
    /// cancelled ones.
    pub active: Option<bool>,
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
        dead: p.dead,
        active: p.active,
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
    /// user). Another user is a 404 naming the field, as for an id that
    /// does not exist; an email no account has is a 422 naming it.
    #[schema(value_type = Option<PersonRef>)]
    pub assigned_to: Option<String>,
    /// Attempts before a failure is final, 1 to 100; default: the
    /// `agents.max_attempts` setting (3).
    #[serde(default, deserialize_with = "crate::http::extract::opt_whole")]
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<i32>,
    /// The lease of its executions in seconds, 1 to 3600: an agent that
    /// neither heartbeats nor logs for this long is presumed lost; default:
    /// the `agents.lease_seconds` setting (60).
    #[serde(default, deserialize_with = "crate::http::extract::opt_whole")]
    #[schema(minimum = 1, maximum = 3600)]
    pub lease_seconds: Option<i32>,
    /// 1 to 200 characters, unique among the project's open (pending,
    /// in_progress) tasks: creating a second open task with the same key is
    /// a 409 naming the existing task, so a webhook delivered twice creates
    /// one task.
    #[schema(min_length = 1, max_length = 200)]
    pub unique_key: Option<String>,
}

fn check_attempts(v: &mut Validator, max_attempts: Option<i32>) {
    v.check(
        max_attempts.is_none_or(|n| (ATTEMPTS_MIN..=ATTEMPTS_MAX).contains(&n)),
        "max_attempts",
        format!("must be {ATTEMPTS_MIN} to {ATTEMPTS_MAX}"),
    );
}

fn check_lease(v: &mut Validator, lease_seconds: Option<i32>) {
    v.check(
        lease_seconds.is_none_or(|n| (LEASE_MIN..=LEASE_MAX).contains(&n)),
        "lease_seconds",
        format!("must be {LEASE_MIN} to {LEASE_MAX} seconds"),
    );
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
        (status = 409, description = "An open task of the project has this unique_key (the detail names it); the parent task is finished or cancelled; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
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
    check_attempts(&mut v, req.max_attempts);
    check_lease(&mut v, req.lease_seconds);
    if let Some(key) = &req.unique_key {
        v.check((1..=200).contains(&key.chars().count()), "unique_key", "must be 1 to 200 characters (or left out)");
    }
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
    let max_attempts = match req.max_attempts {
        Some(n) => n,
        None => AgentSettings::load(&tx).await?.max_attempts,
    };
    let inserted = q::insert_task(
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
            max_attempts,
            lease_seconds: req.lease_seconds,
            unique_key: req.unique_key.as_deref(),
        },
    )
    .await?;
    let Some(task) = inserted else {
        let key = req.unique_key.as_deref().unwrap_or_default();
        let existing = q::open_task_with_key(&tx, req.project_id, key).await?;
        let named = existing.map_or_else(String::new, |id| format!(" (/api/tasks/{id})"));
        return Err(ApiError::conflict(
            "unique_key",
            format!("an open task of this project already has this unique_key{named}"),
        ));
    };
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/tasks/{}", task.id), task))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimTask {
    /// The claiming agent's type, e.g. `claude-code`. An agent's API key
    /// claims for its own type and may leave this out (another type is a
    /// 422), the one request the server takes beyond this schema.
    #[schema(value_type = String, required = true, example = "claude-code", pattern = "^[a-z][a-z0-9_-]{0,49}$")]
    pub agent_type: Option<String>,
    /// Seconds to wait, 0 to 25 (default 0: answer at once): with nothing
    /// to claim, the request is held and answers as soon as a task can be
    /// claimed, or 204 at the deadline.
    #[serde(default, deserialize_with = "crate::http::extract::whole")]
    #[schema(minimum = 0, maximum = 25)]
    pub wait: u64,
}

/// The longest `wait` of a claim (below the default request timeout, 30 s).
pub const MAX_WAIT: u64 = 25;
/// The channel new and retried tasks (and ended executions) notify.
pub const TASKS_CHANNEL: &str = "devx_tasks";
/// How often a waiting claim looks again without a notification: a missed
/// one costs at most this.
const LISTEN_POLL: Duration = Duration::from_secs(5);
/// The same without notifications (`DB_STATEMENT_MODE=unnamed`).
const FALLBACK_POLL: Duration = Duration::from_millis(500);

/// Claim the next task for an agent.
///
/// Atomically takes the highest-priority (then oldest) pending task among
/// the caller's projects (all projects for an admin) whose `run_after` has
/// passed and whose `requirements.agent_type` is absent or names this agent
/// type, marks it `in_progress` (one more attempt), assigns it to the
/// caller, and starts a running execution for it with a lease of the task's
/// `lease_seconds` (default the `agents.lease_seconds` setting): the task's
/// queued (`pending`) execution when it has one (a task whose queued
/// execution is of another agent type is left to that type), else a new
/// one. Renew the lease
/// with `POST /api/executions/{id}/heartbeat` or by appending logs, or the
/// reaper fails the execution as lost and hands the task on. Many agents
/// polling at once never get the same task: rows being claimed are skipped
/// (`FOR UPDATE SKIP LOCKED`), not waited for.
///
/// With `wait`, a claim that finds nothing holds the request: new and
/// retried tasks (and executions that end, freeing a slot under a limit)
/// notify the waiting claims of every devx process (LISTEN/NOTIFY on one
/// connection per process), which look again at once; they also look every
/// few seconds, so a missed notification costs at most that.
///
/// When there is nothing to claim, or a claim would exceed a limit
/// (`agents.max_concurrent_executions` running executions in all, and the
/// optional `agents.max_concurrent_executions_per_project` and
/// `agents.max_concurrent_executions_per_agent_type`), the answer is **204
/// No Content**. Claims are serialized while they count and start
/// executions, so concurrent claimers cannot overshoot a limit. A claim
/// changes state, so it is a POST that needs the `write` scope: a client or
/// proxy that retries a read can never claim twice.
#[utoipa::path(
    post, path = "/api/tasks/claim", tag = "tasks", security(("bearer" = ["write"])),
    params(IdempotencyKey),
    request_body = ClaimTask,
    responses(
        (status = 200, description = "The claimed task and its execution (its queued one, or a new one), running", body = ClaimedTask),
        (status = 204, description = "No pending task to claim, or a concurrency limit is reached (at the end of the wait, with `wait`)"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "agent_type missing or invalid, wait out of range; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn claim_task(
    State(state): State<AppState>,
    principal: Principal,
    Json(p): Json<ClaimTask>,
) -> ApiResult<Response> {
    let mut v = Validator::new();
    let agent_type = match (p.agent_type.as_deref(), principal.agent_type()) {
        (Some(asked), Some(own)) if asked != own => {
            v.error("agent_type", format!("this agent's key claims for {own}: leave agent_type out, or send {own}"));
            asked
        }
        (Some(asked), _) => {
            v.check(is_agent_type(asked), "agent_type", AGENT_TYPE_RULE);
            asked
        }
        (None, Some(own)) => own,
        (None, None) => {
            v.error("agent_type", format!("is required (or claim with an agent's API key): {AGENT_TYPE_RULE}"));
            ""
        }
    }
    .to_string();
    v.check(p.wait <= MAX_WAIT, "wait", format!("must be 0 to {MAX_WAIT} seconds"));
    v.finish()?;
    if p.wait == 0 {
        return Ok(answer(try_claim(&state, &principal, &agent_type).await?));
    }
    // Deadline first, then subscribe, then look: a task that appears after
    // the look is announced to the subscription.
    let wait =
        Duration::from_secs(p.wait).min(state.config.http.request_timeout.saturating_sub(Duration::from_secs(1)));
    let deadline = tokio::time::Instant::now() + wait;
    let mut wakeups = state.db.subscribe(TASKS_CHANNEL).await;
    if wakeups.is_none() {
        POLLING.call_once(|| {
            tracing::info!(
                "claims that wait poll every {} ms: notifications need a direct connection to the server, \
                 not PgBouncer in transaction mode (DB_STATEMENT_MODE=unnamed)",
                FALLBACK_POLL.as_millis()
            );
        });
    }
    let poll = if wakeups.is_some() { LISTEN_POLL } else { FALLBACK_POLL };
    loop {
        if let Some(claimed) = try_claim(&state, &principal, &agent_type).await? {
            return Ok(answer(Some(claimed)));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline || state.is_draining() {
            return Ok(answer(None));
        }
        let nap = tokio::time::sleep_until(deadline.min(now + poll));
        match wakeups.as_mut() {
            Some(rx) => {
                tokio::select! {
                    () = crate::db::wakeup(rx, |_| true) => {}
                    () = nap => {}
                }
            }
            None => nap.await,
        }
    }
}

static POLLING: std::sync::Once = std::sync::Once::new();

fn answer(claimed: Option<ClaimedTask>) -> Response {
    match claimed {
        Some(claimed) => Json(claimed).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// One claim: the next task and its execution, or `None` when there is
/// nothing to claim or a limit is reached.
async fn try_claim(state: &AppState, principal: &Principal, agent_type: &str) -> ApiResult<Option<ClaimedTask>> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let settings = AgentSettings::load(&tx).await?;
    // From here to the commit, claims run one at a time: the counts below
    // stay true until this claim's execution is visible to the next one.
    xq::lock_claims(&tx).await?;
    let (running, of_type) = xq::running_counts(&tx, agent_type).await?;
    if running >= settings.max_concurrent || settings.agent_type_limit(agent_type).is_some_and(|limit| of_type >= limit)
    {
        return Ok(None);
    }
    let owner = principal.visibility().owner();
    let claimed = q::claim_next(&tx, owner, agent_type, principal.user_id, settings.max_per_project).await?;
    let Some(task) = claimed else {
        return Ok(None);
    };
    let lease = task.lease_seconds.unwrap_or(settings.lease_seconds);
    let actor = principal.actor();
    // The task's queued execution (of this agent type: the claim took no
    // other) runs; else a new one starts.
    let queued = xq::run_queued(&tx, xq::Queued::OfTask(task.id), task.attempt, lease, &actor).await?;
    let execution = match queued {
        Some(execution) => execution,
        None => {
            let config = Value::Object(Map::new());
            xq::start_execution(&tx, task.id, agent_type, &config, task.attempt, lease, &actor).await?
        }
    };
    tx.commit().await?;
    Ok(Some(ClaimedTask { task, execution }))
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
    bearer: Bearer,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<TaskDetail>> {
    // The credential, the task, its first subtasks and its latest execution
    // go out together: one round trip; another user's task is read and dropped.
    let (principal, (task, (subtasks, subtask_count), latest_execution)) =
        crate::db_read_as!(state, bearer, |c| async {
            tokio::try_join!(q::get_task(c, id, false), q::subtasks(c, id, SUBTASKS_SHOWN), xq::latest_execution(c, id))
        })?;
    let task = principal.visibility().filter(task).ok_or(ApiError::NotFound("task"))?;
    Ok(Tagged(TaskDetail { task, subtasks, subtask_count, latest_execution }))
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
    /// user); an email no account has is a 422 naming the field; another
    /// user is a 404 naming the field, as for a user that
    /// does not exist.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<PersonRef>, nullable)]
    pub assigned_to: Option<Option<String>>,
    /// Attempts before a failure is final, 1 to 100.
    #[serde(default, deserialize_with = "crate::http::extract::opt_whole")]
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<i32>,
    /// The lease of its next executions in seconds, 1 to 3600; `null`: the
    /// `agents.lease_seconds` setting.
    #[serde(default, deserialize_with = "crate::http::extract::nullable_whole")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 3600)]
    pub lease_seconds: Option<Option<i32>>,
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
    check_attempts(&mut v, req.max_attempts);
    check_lease(&mut v, req.lease_seconds.flatten());
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
        max_attempts: req.max_attempts,
        lease_seconds: req.lease_seconds,
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

/// Give a failed task a fresh set of attempts.
///
/// The task goes back to pending, unassigned, claimable at once, with its
/// attempt count at 0 and its error history kept. This is how a dead letter
/// (`GET /api/tasks?status=failed&dead=true`) is revived, after its cause
/// is fixed.
#[utoipa::path(
    post, path = "/api/tasks/{id}/retry", tag = "tasks", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "Pending again", body = Task),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not failed; or an open task of the project has its unique_key", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn retry_task(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Task>> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let current = visible_task(&tx, &principal, id, true).await?.ok_or(ApiError::NotFound("task"))?;
    let Some(task) = q::retry_task(&tx, id).await? else {
        return Err(ApiError::Conflict {
            detail: format!("the task is {}; only a failed task can be retried", current.status.as_str()),
            field: None,
        });
    };
    tx.commit().await?;
    Ok(Json(task))
}
