//! Tasks: create, read with their owner, list, change, transition, cancel
//! their pending subtasks, claim the next one, count.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::agents::model::{TASK_COLUMNS, Task, TaskStatus};
use crate::db::row::{self, WithOwner};
use crate::db::{DbError, FromRow, Queryable, Statement};

pub struct NewTask<'a> {
    pub project_id: Uuid,
    pub parent_task_id: Option<Uuid>,
    pub title: &'a str,
    pub description: Option<&'a str>,
    pub requirements: &'a Value,
    pub priority: i32,
    pub created_by: Uuid,
    pub assigned_to: Option<Uuid>,
    pub max_attempts: i32,
    pub lease_seconds: Option<i32>,
    pub unique_key: Option<&'a str>,
}

/// Inserts a task; `None` when its `unique_key` is taken by an open task of
/// the project (see [`open_task_with_key`]). A concurrent insert of the same
/// key waits for the other to end, then is the one that finds it taken.
pub async fn insert_task(db: &impl Queryable, t: &NewTask<'_>) -> Result<Option<Task>, DbError> {
    let sql = format!(
        "INSERT INTO devx.tasks AS t (project_id, parent_task_id, title, description, requirements, priority,
                                     created_by, assigned_to, max_attempts, lease_seconds, unique_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (project_id, unique_key)
            WHERE unique_key IS NOT NULL AND status IN ('pending', 'in_progress') DO NOTHING
         RETURNING {TASK_COLUMNS}"
    );
    db.query_opt_as(
        &sql,
        &[
            &t.project_id,
            &t.parent_task_id,
            &t.title,
            &t.description,
            &t.requirements,
            &t.priority,
            &t.created_by,
            &t.assigned_to,
            &t.max_attempts,
            &t.lease_seconds,
            &t.unique_key,
        ],
    )
    .await
}

/// The open (pending or in-progress) task of the project with this unique key.
pub async fn open_task_with_key(db: &impl Queryable, project_id: Uuid, key: &str) -> Result<Option<Uuid>, DbError> {
    db.query_scalar_opt(
        "SELECT id FROM devx.tasks
          WHERE project_id = $1 AND unique_key = $2 AND status IN ('pending', 'in_progress')",
        &[&project_id, &key],
    )
    .await
}

/// The status of a would-be parent in `project_id`, share-locked so that a
/// concurrent cancel of the parent either sees the new subtask or is seen by
/// its creation.
pub async fn lock_parent_status(
    db: &impl Queryable,
    parent_id: Uuid,
    project_id: Uuid,
) -> Result<Option<TaskStatus>, DbError> {
    db.query_scalar_opt(
        "SELECT status FROM devx.tasks WHERE id = $1 AND project_id = $2 FOR SHARE",
        &[&parent_id, &project_id],
    )
    .await
}

/// A task (of a live project) and its project's owner. With `lock`, the task
/// row is locked for the rest of the transaction.
pub async fn get_task(db: &impl Queryable, id: Uuid, lock: bool) -> Result<Option<(Task, Uuid)>, DbError> {
    let sql = format!(
        "SELECT {TASK_COLUMNS}, p.owner_id
           FROM devx.tasks t JOIN devx.projects p ON p.id = t.project_id
          WHERE t.id = $1 AND p.status <> 'deleted'{}",
        if lock { " FOR UPDATE OF t" } else { "" }
    );
    Ok(db.query_opt_as::<WithOwner<Task>>(&sql, &[&id]).await?.map(|r| (r.row, r.owner_id)))
}

/// Keyset of the task list: (priority, created_at, id) of the last row seen.
pub type TaskKey = (i32, DateTime<Utc>, Uuid);

#[derive(Debug, Default)]
pub struct TaskFilter {
    /// `None`: every owner (an admin).
    pub owner: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub status: Option<TaskStatus>,
    pub priority_min: Option<i32>,
    pub priority_max: Option<i32>,
    pub assigned_to: Option<Uuid>,
    pub parent_task_id: Option<Uuid>,
    /// `Some(true)`: only dead letters (failed with every attempt used);
    /// `Some(false)`: everything else.
    pub dead: Option<bool>,
    /// `Some(true)`: the open tasks, read from the `devx.active_tasks` view;
    /// `Some(false)`: the finished and cancelled ones.
    pub active: Option<bool>,
    pub after: Option<TaskKey>,
    pub limit: i64,
}

/// A dead letter: failed with every attempt used ([`Task::is_dead`]).
const DEAD: &str = "(t.status = 'failed' AND t.attempt >= t.max_attempts)";

/// Highest priority first, then oldest; fetches `limit + 1` rows.
pub async fn list_tasks(db: &impl Queryable, f: &TaskFilter) -> Result<Vec<Task>, DbError> {
    let mut s = Statement::default();
    visible_tasks(&mut s, f.owner, f.project_id);
    s.and_some(f.status.map(TaskStatus::as_str), |status| format!("t.status = {status}"));
    s.and_some(f.priority_min, |min| format!("t.priority >= {min}"));
    s.and_some(f.priority_max, |max| format!("t.priority <= {max}"));
    s.and_some(f.assigned_to, |assignee| format!("t.assigned_to = {assignee}"));
    s.and_some(f.parent_task_id, |parent| format!("t.parent_task_id = {parent}"));
    match f.dead {
        Some(true) => s.and(DEAD),
        Some(false) => s.and(format!("NOT {DEAD}")),
        None => {}
    }
    if f.active == Some(false) {
        s.and("t.status NOT IN ('pending', 'in_progress')");
    }
    if let Some((priority, at, id)) = f.after {
        let (priority, at, id) = (s.bind(priority), s.bind(at), s.bind(id));
        s.and(format!(
            "(t.priority < {priority} OR (t.priority = {priority} AND (t.created_at, t.id) > ({at}, {id})))"
        ));
    }
    let limit = s.bind(f.limit + 1);
    // The open tasks are the view's rows (it leaves out deleted projects
    // as `visible_tasks` does).
    let from = if f.active == Some(true) { "devx.active_tasks" } else { "devx.tasks" };
    s.sql = format!(
        "SELECT {TASK_COLUMNS}
           FROM {from} t JOIN devx.projects p ON p.id = t.project_id
          {}
          ORDER BY t.priority DESC, t.created_at, t.id
          LIMIT {limit}",
        s.where_clause()
    );
    s.query_as(db).await
}

/// The conditions of the tasks a caller sees (`owner` `None`: an admin,
/// every live project's), optionally of one project.
fn visible_tasks(s: &mut Statement<'_>, owner: Option<Uuid>, project_id: Option<Uuid>) {
    s.and("p.status <> 'deleted'");
    s.and_some(owner, |owner| format!("p.owner_id = {owner}"));
    s.and_some(project_id, |project| format!("t.project_id = {project}"));
}

/// Up to `limit` direct subtasks, highest priority then oldest, and how many there are.
pub async fn subtasks(db: &impl Queryable, id: Uuid, limit: i64) -> Result<(Vec<Task>, i64), DbError> {
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM devx.tasks t WHERE t.parent_task_id = $1
          ORDER BY t.priority DESC, t.created_at, t.id LIMIT $2"
    );
    let tasks = db.query_as(&sql, &[&id, &limit]).await?;
    let count = db.query_scalar("SELECT count(*) FROM devx.tasks WHERE parent_task_id = $1", &[&id]).await?;
    Ok((tasks, count))
}

/// Field changes: `None` leaves a field; `Some(None)` clears a nullable one.
#[derive(Debug, Default)]
pub struct TaskChange<'a> {
    pub title: Option<&'a str>,
    pub description: Option<Option<&'a str>>,
    pub requirements: Option<&'a Value>,
    pub priority: Option<i32>,
    pub assigned_to: Option<Option<Uuid>>,
    pub max_attempts: Option<i32>,
    pub lease_seconds: Option<Option<i32>>,
}

impl TaskChange<'_> {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.requirements.is_none()
            && self.priority.is_none()
            && self.assigned_to.is_none()
            && self.max_attempts.is_none()
            && self.lease_seconds.is_none()
    }
}

pub async fn update_task(db: &impl Queryable, id: Uuid, c: &TaskChange<'_>) -> Result<Option<Task>, DbError> {
    let sql = format!(
        "UPDATE devx.tasks t
            SET title = coalesce($2, t.title),
                description = CASE WHEN $3 THEN $4 ELSE t.description END,
                requirements = coalesce($5, t.requirements),
                priority = coalesce($6, t.priority),
                assigned_to = CASE WHEN $7 THEN $8 ELSE t.assigned_to END,
                max_attempts = coalesce($9, t.max_attempts),
                lease_seconds = CASE WHEN $10 THEN $11 ELSE t.lease_seconds END
          WHERE t.id = $1
         RETURNING {TASK_COLUMNS}"
    );
    let row: Option<Task> = db
        .query_opt_as(
            &sql,
            &[
                &id,
                &c.title,
                &c.description.is_some(),
                &c.description.flatten(),
                &c.requirements,
                &c.priority,
                &c.assigned_to.is_some(),
                &c.assigned_to.flatten(),
                &c.max_attempts,
                &c.lease_seconds.is_some(),
                &c.lease_seconds.flatten(),
            ],
        )
        .await?;
    Ok(row)
}

/// Moves the task to `to` if it is in one of the statuses `to` may be
/// reached from, deciding races between concurrent transitions: of two, one
/// finds the status it expected. Entering `in_progress` assigns it to
/// `assignee` unless it is assigned already; going back to `pending`
/// unassigns it. `None` if the task was not in such a status.
pub async fn transition_task(
    db: &impl Queryable,
    id: Uuid,
    to: TaskStatus,
    assignee: Option<Uuid>,
) -> Result<Option<Task>, DbError> {
    let sources: Vec<&str> = to.sources().into_iter().map(TaskStatus::as_str).collect();
    let sql = format!(
        "UPDATE devx.tasks t
            SET status = $2,
                assigned_to = CASE $2 WHEN 'in_progress' THEN coalesce(t.assigned_to, $4)
                                      WHEN 'pending' THEN NULL
                                      ELSE t.assigned_to END
          WHERE t.id = $1 AND t.status = ANY($3)
         RETURNING {TASK_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id, &to.as_str(), &sources, &assignee]).await
}

/// Cancels the pending tasks below `id`, at any depth; returns their ids.
pub async fn cancel_pending_descendants(db: &impl Queryable, id: Uuid) -> Result<Vec<Uuid>, DbError> {
    let rows = db
        .query(
            "WITH RECURSIVE below AS (
                 SELECT id FROM devx.tasks WHERE parent_task_id = $1
                 UNION
                 SELECT t.id FROM devx.tasks t JOIN below b ON t.parent_task_id = b.id
             )
             UPDATE devx.tasks t SET status = 'cancelled'
               FROM below
              WHERE t.id = below.id AND t.status = 'pending'
             RETURNING t.id",
            &[&id],
        )
        .await?;
    rows.iter().map(row::single).collect()
}

/// Claims the next pending task for an agent of `agent_type` (see
/// [`claim_statement`]); the task becomes `in_progress`, assigned to
/// `assignee`, and its attempt count goes up by one.
pub async fn claim_next(
    db: &impl Queryable,
    owner: Option<Uuid>,
    agent_type: &str,
    assignee: Uuid,
    per_project_limit: Option<i64>,
) -> Result<Option<Task>, DbError> {
    claim_statement(owner, agent_type, assignee, per_project_limit).query_opt_as(db).await
}

/// The claim: the highest priority, then the oldest, among the pending tasks
/// of `owner`'s live projects (every project when `owner` is `None`) whose
/// `run_after` has passed, whose `requirements.agent_type` is absent, this
/// type, or a list holding it, that have no queued execution of another
/// agent type, and (with `per_project_limit`) whose project
/// runs fewer executions than that. Rows other claimers hold are skipped, so
/// concurrent claimers never get the same task and never wait for each
/// other. Public so that a test can read its plan: the order is the one of
/// `tasks_status_priority_created_at_idx`, so the claim walks that index and
/// stops at the first row it can take.
pub fn claim_statement<'a>(
    owner: Option<Uuid>,
    agent_type: &'a str,
    assignee: Uuid,
    per_project_limit: Option<i64>,
) -> Statement<'a> {
    // The owner filter only when there is an owner (see `db::Statement`):
    // written `($n IS NULL OR p.owner_id = $n)`, a generic plan hid the owner
    // from the planner and every claim walked all pending tasks (1.3 s on
    // the benchmark data).
    let mut s = Statement::default();
    s.and("t.status = 'pending' AND t.run_after <= now()");
    visible_tasks(&mut s, owner, None);
    let agent_type = s.bind(agent_type);
    s.and(format!(
        "(NOT t.requirements ? 'agent_type' OR t.requirements -> 'agent_type' @> to_jsonb({agent_type}::text))"
    ));
    // A task with a queued execution runs that one: only an agent of its type takes it.
    s.and(format!(
        "NOT EXISTS (SELECT 1 FROM devx.task_executions q
                      WHERE q.task_id = t.id AND q.status = 'pending' AND q.agent_type <> {agent_type}::text)"
    ));
    // Projects at their limit, counted once (claims are serialized by the
    // caller, so the count cannot change before the claim commits).
    s.and_some(per_project_limit, |limit| {
        format!(
            "t.project_id NOT IN (SELECT r.project_id FROM devx.task_executions rx
                                    JOIN devx.tasks r ON r.id = rx.task_id
                                   WHERE rx.status = 'running'
                                   GROUP BY r.project_id HAVING count(*) >= {limit})"
        )
    });
    let assignee = s.bind(assignee);
    s.sql = format!(
        "WITH next AS (
             SELECT t.id
               FROM devx.tasks t JOIN devx.projects p ON p.id = t.project_id
              {}
              ORDER BY t.priority DESC, t.created_at, t.id
              LIMIT 1
              FOR UPDATE OF t SKIP LOCKED
         )
         UPDATE devx.tasks t
            SET status = 'in_progress', assigned_to = {assignee}, attempt = t.attempt + 1
           FROM next
          WHERE t.id = next.id
         RETURNING {TASK_COLUMNS}",
        s.where_clause()
    );
    s
}

/// Starts one more attempt of an open task (an execution started by hand):
/// it becomes (or stays) `in_progress`, assigned to `assignee` unless it is
/// assigned already. Returns the attempt's number, `None` if the task was
/// not open.
pub async fn begin_attempt(db: &impl Queryable, id: Uuid, assignee: Uuid) -> Result<Option<i32>, DbError> {
    db.query_scalar_opt(
        "UPDATE devx.tasks t
            SET status = 'in_progress', assigned_to = coalesce(t.assigned_to, $2), attempt = t.attempt + 1
          WHERE t.id = $1 AND t.status IN ('pending', 'in_progress')
         RETURNING t.attempt",
        &[&id, &assignee],
    )
    .await
}

/// Ends a failed attempt of an in-progress task: the error joins the task's
/// history (`entry`, stamped with `at`; the last 100 are kept), and the task
/// goes back to pending (unassigned) to run again after `backoff_seconds`
/// when `retry` is asked and attempts are left, else it fails. `None` if
/// the task was not in progress.
pub async fn fail_attempt(
    db: &impl Queryable,
    id: Uuid,
    entry: &Value,
    retry: bool,
    backoff_seconds: f64,
) -> Result<Option<Task>, DbError> {
    // Another attempt: asked for, and attempts left (the values before the update).
    const AGAIN: &str = "($3 AND t.attempt < t.max_attempts)";
    let sql = format!(
        "UPDATE devx.tasks t
            SET status = CASE WHEN {AGAIN} THEN 'pending' ELSE 'failed' END,
                assigned_to = CASE WHEN {AGAIN} THEN NULL ELSE t.assigned_to END,
                run_after = CASE WHEN {AGAIN} THEN now() + make_interval(secs => $4) ELSE t.run_after END,
                errors = jsonb_path_query_array(t.errors || jsonb_build_array(jsonb_build_object('at', now()) || $2),
                                                '$[last - 99 to last]')
          WHERE t.id = $1 AND t.status = 'in_progress'
         RETURNING {TASK_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id, &entry, &retry, &backoff_seconds]).await
}

/// Gives a failed task a fresh set of attempts: pending now, unassigned,
/// attempt 0 (its error history stays). `None` if it was not failed.
pub async fn retry_task(db: &impl Queryable, id: Uuid) -> Result<Option<Task>, DbError> {
    let sql = format!(
        "UPDATE devx.tasks t SET status = 'pending', attempt = 0, run_after = now(), assigned_to = NULL
          WHERE t.id = $1 AND t.status = 'failed'
         RETURNING {TASK_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id]).await
}

/// Locks a task whatever its project (the reaper's view); `None` if it is gone.
pub async fn lock_task(db: &impl Queryable, id: Uuid) -> Result<Option<Task>, DbError> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM devx.tasks t WHERE t.id = $1 FOR UPDATE");
    db.query_opt_as(&sql, &[&id]).await
}

/// Moves a task from `from` to `to` at the end of an execution (unassigning
/// it when it goes back to `pending`). `None` if it was not in `from`.
pub async fn finish_task(
    db: &impl Queryable,
    id: Uuid,
    from: TaskStatus,
    to: TaskStatus,
) -> Result<Option<Task>, DbError> {
    let sql = format!(
        "UPDATE devx.tasks t
            SET status = $3, assigned_to = CASE WHEN $3 = 'pending' THEN NULL ELSE t.assigned_to END
          WHERE t.id = $1 AND t.status = $2
         RETURNING {TASK_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id, &from.as_str(), &to.as_str()]).await
}

/// How many visible tasks have one status and priority.
#[derive(Debug, FromRow)]
pub struct TaskCount {
    pub status: String,
    pub priority: i32,
    pub count: i64,
}

/// Counts by status and priority over the visible tasks, optionally of one project.
pub async fn task_counts(
    db: &impl Queryable,
    owner: Option<Uuid>,
    project_id: Option<Uuid>,
) -> Result<Vec<TaskCount>, DbError> {
    let mut s = Statement::default();
    visible_tasks(&mut s, owner, project_id);
    s.sql = format!(
        "SELECT t.status, t.priority, count(*) AS count
           FROM devx.tasks t JOIN devx.projects p ON p.id = t.project_id
          {}
          GROUP BY t.status, t.priority",
        s.where_clause()
    );
    s.query_as(db).await
}

/// Mean seconds from start to end of the completed executions of the visible tasks.
pub async fn avg_completion_seconds(
    db: &impl Queryable,
    owner: Option<Uuid>,
    project_id: Option<Uuid>,
) -> Result<Option<f64>, DbError> {
    let mut s = Statement::default();
    s.and("x.status = 'completed' AND x.started_at IS NOT NULL");
    visible_tasks(&mut s, owner, project_id);
    s.sql = format!(
        "SELECT avg(extract(epoch FROM x.completed_at - x.started_at))::float8
           FROM devx.task_executions x
           JOIN devx.tasks t ON t.id = x.task_id
           JOIN devx.projects p ON p.id = t.project_id
          {}",
        s.where_clause()
    );
    s.query_scalar(db).await
}
