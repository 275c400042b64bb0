//! Tasks, executions, log lines, PR validations and error logs as the API
//! shows them, their row mapping, and the pure rules: the status machines of
//! tasks and executions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// Lists the allowed next statuses of `from` for a 409 detail.
fn refusal(what: &str, from: &str, next: &[&str], to: &str) -> String {
    if next.is_empty() {
        format!("the {what} is {from}, which is final; it cannot become {to}")
    } else {
        format!("the {what} is {from}; it can become {} from here, not {to}", next.join(" or "))
    }
}

crate::text_enum! {
    /// pending -> in_progress -> completed | failed; in_progress -> pending (released
    /// or retried); any open status -> cancelled.
    pub enum TaskStatus {
        Pending,
        InProgress,
        Completed,
        Failed,
        Cancelled,
    }
}

impl TaskStatus {
    /// The statuses a task in this status may move to.
    pub fn next(self) -> &'static [TaskStatus] {
        use TaskStatus::*;
        match self {
            Pending => &[InProgress, Cancelled],
            InProgress => &[Completed, Failed, Pending, Cancelled],
            Completed | Failed | Cancelled => &[],
        }
    }

    /// The statuses from which `self` can be reached.
    pub fn sources(self) -> Vec<TaskStatus> {
        TaskStatus::ALL.iter().copied().filter(|s| s.next().contains(&self)).collect()
    }

    pub fn is_open(self) -> bool {
        matches!(self, TaskStatus::Pending | TaskStatus::InProgress)
    }

    /// Why a task in this status cannot move to `to`, for a 409.
    pub fn refusal(self, to: TaskStatus) -> String {
        let next: Vec<&str> = self.next().iter().map(|s| s.as_str()).collect();
        refusal("task", self.as_str(), &next, to.as_str())
    }
}

crate::text_enum! {
    /// pending -> running -> completed | failed; pending | running -> cancelled.
    pub enum ExecutionStatus {
        Pending,
        Running,
        Completed,
        Failed,
        Cancelled,
    }
}

impl ExecutionStatus {
    pub fn next(self) -> &'static [ExecutionStatus] {
        use ExecutionStatus::*;
        match self {
            Pending => &[Running, Cancelled],
            Running => &[Completed, Failed, Cancelled],
            Completed | Failed | Cancelled => &[],
        }
    }

    pub fn refusal(self, to: ExecutionStatus) -> String {
        let next: Vec<&str> = self.next().iter().map(|s| s.as_str()).collect();
        refusal("execution", self.as_str(), &next, to.as_str())
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct Task {
    pub id: Uuid,
    pub project_id: Uuid,
    pub parent_task_id: Option<Uuid>,
    pub title: String,
    pub description: Option<String>,
    /// What the task needs; `agent_type` here restricts which agents may claim it.
    #[schema(value_type = Object)]
    pub requirements: Value,
    pub status: TaskStatus,
    /// 0 (lowest) to 10 (highest).
    pub priority: i32,
    pub created_by: Option<Uuid>,
    /// Who does it: the user's id (a request may name them by id or email).
    pub assigned_to: Option<Uuid>,
    /// The email of the account `assigned_to` names; null when unassigned.
    #[schema(example = "developer@example.com")]
    pub assigned_to_email: Option<String>,
    /// Executions started since the task was created or last retried.
    pub attempt: i32,
    /// Attempts before a failure is final (1 to 100): a failed attempt with
    /// attempts left puts the task back to pending after a backoff.
    pub max_attempts: i32,
    /// One entry per failed attempt, oldest first (the last 100):
    /// `{at, execution_id, attempt, reason, message}`; `reason` is `failed`,
    /// `lost` (its lease expired) or `timed_out`.
    #[schema(value_type = Vec<Object>)]
    pub errors: Value,
    /// A claim takes the task only from then on (the backoff after a failed attempt).
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub run_after: DateTime<Utc>,
    /// The lease of its executions in seconds; null: the `agents.lease_seconds` setting.
    pub lease_seconds: Option<i32>,
    /// Unique among the project's open (pending, in_progress) tasks.
    pub unique_key: Option<String>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl Task {
    /// Failed with every attempt used: a dead letter, until retried.
    pub fn is_dead(&self) -> bool {
        self.status == TaskStatus::Failed && self.attempt >= self.max_attempts
    }
}

impl crate::http::Versioned for Task {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

/// The columns a [`Task`] is read from (the table, or the `devx.active_tasks`
/// view, is aliased `t`); the assignee's email is looked up by id.
pub const TASK_COLUMNS: &str = "t.id, t.project_id, t.parent_task_id, t.title, t.description, t.requirements, \
     t.status, t.priority, t.created_by, t.assigned_to, \
     (SELECT u.email FROM devx.users u WHERE u.id = t.assigned_to) AS assigned_to_email, t.attempt, t.max_attempts, t.errors, t.run_after, \
     t.lease_seconds, t.unique_key, t.created_at, t.updated_at";

/// One task with its direct subtasks and its latest execution.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: Task,
    /// Direct subtasks, highest priority then oldest first (at most 200).
    pub subtasks: Vec<Task>,
    /// How many direct subtasks there are in all.
    pub subtask_count: i64,
    pub latest_execution: Option<Execution>,
}

/// The task's own version: subtasks and executions have their own.
impl crate::http::Versioned for TaskDetail {
    fn etag(&self) -> crate::http::ETag {
        self.task.etag()
    }
}

/// What a cancel changed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CancelledTask {
    pub task: Task,
    /// Pending subtasks (at any depth) cancelled with it.
    pub cancelled_subtasks: Vec<Uuid>,
    /// Pending or running executions of these tasks, now cancelled.
    pub cancelled_executions: Vec<Uuid>,
}

/// A task handed to an agent by `POST /api/tasks/claim`, with the execution
/// started for it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClaimedTask {
    pub task: Task,
    pub execution: Execution,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PriorityCount {
    pub priority: i32,
    pub count: i64,
}

/// Counts over the caller's tasks (all tasks for an admin).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskStats {
    pub total: i64,
    /// Every status, zero included.
    pub by_status: BTreeMap<String, i64>,
    /// Priorities that have tasks, highest first.
    pub by_priority: Vec<PriorityCount>,
    /// Percent of finished tasks (completed or failed) that completed; null when none finished.
    pub success_rate: Option<f64>,
    /// Mean seconds from start to end of the completed executions of these tasks.
    pub avg_completion_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct Execution {
    pub id: Uuid,
    pub task_id: Uuid,
    #[schema(example = "claude-code")]
    pub agent_type: String,
    #[schema(value_type = Object)]
    pub agent_config: Value,
    pub status: ExecutionStatus,
    #[schema(value_type = Option<Object>)]
    pub error_details: Option<Value>,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Lines logged so far; also the `seq` of the last one.
    #[from_row(rename = "last_log_seq")]
    pub log_lines: i64,
    /// Which attempt of its task this is (1 for the first).
    pub attempt: i32,
    /// How long each renewal of the lease lasts.
    pub lease_seconds: i32,
    /// While running: the agent must heartbeat (or append logs) before
    /// then, or the reaper fails the execution as `lost` and hands the task on.
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Bytes of log messages appended so far (the cap is `agents.max_log_bytes`).
    pub log_bytes: i64,
    /// An append went past `agents.max_log_bytes`: it was refused, and the
    /// last line of the log says so.
    pub log_truncated: bool,
    /// Who claimed or started it, as the audit trail names actors:
    /// `user:<id>`, `user:<id> apikey:<id>`, or for an agent's key
    /// `agent:<type> user:<id> apikey:<id>`.
    pub started_by: Option<String>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

/// The columns an [`Execution`] is read from (the table is aliased `x`).
pub const EXECUTION_COLUMNS: &str = "x.id, x.task_id, x.agent_type, x.agent_config, x.status, x.error_details, \
     x.started_at, x.completed_at, x.last_log_seq, x.attempt, x.lease_seconds, x.lease_expires_at, x.log_bytes, \
     x.log_truncated, x.started_by, x.created_at, x.updated_at";

/// What a heartbeat found: the renewed lease, or that the agent should stop.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Heartbeat {
    pub execution_id: Uuid,
    pub status: ExecutionStatus,
    /// The new end of the lease; null when the execution is no longer running.
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The task (and so this execution) was cancelled meanwhile: stop working on it.
    pub cancelled: bool,
}

/// The end of an execution and what it did to its task.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExecutionOutcome {
    pub execution: Execution,
    pub task: Task,
    /// The error log a failure wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorLog>,
}

/// Per agent type, over the caller's executions (all for an admin).
#[derive(Debug, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct ExecutionSummary {
    pub agent_type: String,
    pub runs: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Pending or running.
    pub in_flight: i64,
    /// Percent of finished runs (completed or failed) that completed.
    pub success_rate: Option<f64>,
    pub avg_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<f64>,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub last_run_at: Option<DateTime<Utc>>,
}

crate::text_enum! {
    #[derive(Default)]
    pub enum LogLevel {
        Trace,
        Debug,
        #[default]
        Info,
        Warn,
        Error,
    }
}

/// One line of an execution's log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct LogLine {
    /// 1, 2, 3... in append order, without gaps.
    pub seq: i64,
    #[schema(value_type = String, example = "info")]
    pub level: String,
    pub message: String,
    #[from_row(rename = "logged_at")]
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub time: DateTime<Utc>,
}

impl crate::http::logs::Seq for LogLine {
    fn seq(&self) -> i64 {
        self.seq
    }
}

/// Where an appended batch landed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppendedLogs {
    pub first_seq: i64,
    pub last_seq: i64,
    pub count: i64,
}

crate::text_enum! {
    /// pending -> running | passed | failed | cancelled; running -> passed |
    /// failed | cancelled, as the CI system sets it (`PUT
    /// /api/pr-validations/{id}/status`) or as recording a check recomputes
    /// it; passed, failed and cancelled are final for a status set by hand.
    pub enum ValidationStatus {
        Pending,
        Running,
        Passed,
        Failed,
        Cancelled,
    }
}

impl ValidationStatus {
    /// The statuses a validation in this status may be set to.
    pub fn next(self) -> &'static [ValidationStatus] {
        use ValidationStatus::*;
        match self {
            Pending => &[Running, Passed, Failed, Cancelled],
            Running => &[Passed, Failed, Cancelled],
            Passed | Failed | Cancelled => &[],
        }
    }

    /// Why a validation in this status cannot be set to `to`, for a 409.
    pub fn refusal(self, to: ValidationStatus) -> String {
        let next: Vec<&str> = self.next().iter().map(|s| s.as_str()).collect();
        refusal("PR validation", self.as_str(), &next, to.as_str())
    }
}

crate::text_enum! {
    /// The result of one check of a PR validation.
    pub enum CheckStatus {
        Pending,
        Running,
        Passed,
        Failed,
        /// Counts as passing: it does not hold the validation back.
        Skipped,
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct PrValidation {
    pub id: Uuid,
    pub task_id: Option<Uuid>,
    pub execution_id: Option<Uuid>,
    pub pr_number: i32,
    #[schema(example = "acme/shop")]
    pub repository: String,
    pub branch_name: Option<String>,
    pub status: ValidationStatus,
    /// Check name -> `{status, summary, details, updated_at}`.
    #[schema(value_type = Object)]
    pub validation_results: Value,
    /// The overall result the CI system reported with the status (`PUT
    /// /api/pr-validations/{id}/status`), e.g. `{overall_score,
    /// checks_passed, checks_failed}`; null until one is reported.
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub webhook_payload: Option<Value>,
    pub created_by: Option<Uuid>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl crate::http::Versioned for PrValidation {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

/// The columns a [`PrValidation`] is read from (the table is aliased `v`).
pub const PR_VALIDATION_COLUMNS: &str = "v.id, v.task_id, v.execution_id, v.pr_number, v.repository, v.branch_name, \
     v.status, v.validation_results, v.summary, v.webhook_payload, v.created_by, v.created_at, v.updated_at";

/// Per repository, over the validations the caller may see.
#[derive(Debug, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct PrValidationSummary {
    pub repository: String,
    pub validations: i64,
    pub pending: i64,
    pub running: i64,
    pub passed: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Percent of decided validations (passed or failed) that passed.
    pub pass_rate: Option<f64>,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub last_validation_at: Option<DateTime<Utc>>,
}

crate::text_enum! {
    #[derive(Default)]
    pub enum ErrorType {
        Database,
        Api,
        Validation,
        Network,
        Timeout,
        Authentication,
        Authorization,
        #[default]
        System,
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct ErrorLog {
    pub id: Uuid,
    pub task_id: Option<Uuid>,
    pub execution_id: Option<Uuid>,
    #[schema(value_type = String, example = "network")]
    pub error_type: String,
    pub message: String,
    pub stack: Option<String>,
    #[schema(value_type = Object)]
    pub context: Value,
    pub recovery_attempts: i32,
    /// One entry per recovery attempt: `{attempt, outcome, details, at}`.
    #[schema(value_type = Vec<Object>)]
    pub recovery_log: Value,
    pub resolved: bool,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_by: Option<Uuid>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// The columns an [`ErrorLog`] is read from (the table is aliased `l`).
pub const ERROR_LOG_COLUMNS: &str = "l.id, l.task_id, l.execution_id, l.error_type, l.message, l.stack, l.context, \
     l.recovery_attempts, l.recovery_log, l.resolved, l.resolved_at, l.created_by, l.created_at";

/// Per error type, over the error logs the caller may see.
#[derive(Debug, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct ErrorSummary {
    pub error_type: String,
    pub error_count: i64,
    pub unresolved: i64,
    pub resolved: i64,
    pub avg_recovery_attempts: Option<f64>,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub last_seen: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_transitions() {
        use TaskStatus::*;
        assert_eq!(InProgress.sources(), vec![Pending]);
        assert_eq!(Cancelled.sources(), vec![Pending, InProgress]);
        assert_eq!(Pending.sources(), vec![InProgress]);
        assert!(Completed.next().is_empty());
        assert!(Completed.refusal(Cancelled).contains("final"));
        let detail = Pending.refusal(Completed);
        assert!(detail.contains("pending") && detail.contains("in_progress or cancelled"), "{detail}");
    }

    /// Every value's stored string, checked against its JSON (serde) string.
    fn strings<T: Copy + Serialize>(all: &[T], as_str: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter()
            .map(|&v| {
                assert_eq!(serde_json::to_value(v).unwrap(), as_str(v));
                as_str(v)
            })
            .collect()
    }

    #[test]
    fn stored_strings_are_the_check_constraints_and_the_api_strings() {
        // tasks_status_check
        let task = strings(TaskStatus::ALL, TaskStatus::as_str);
        assert_eq!(task, ["pending", "in_progress", "completed", "failed", "cancelled"]);
        // task_executions_status_check
        let execution = strings(ExecutionStatus::ALL, ExecutionStatus::as_str);
        assert_eq!(execution, ["pending", "running", "completed", "failed", "cancelled"]);
        // execution_logs_level_check
        assert_eq!(strings(LogLevel::ALL, LogLevel::as_str), ["trace", "debug", "info", "warn", "error"]);
        // pr_validations_status_check
        let validation = strings(ValidationStatus::ALL, ValidationStatus::as_str);
        assert_eq!(validation, ["pending", "running", "passed", "failed", "cancelled"]);
        // The checks in pr_validations.validation_results (jsonb, no constraint).
        let check = strings(CheckStatus::ALL, CheckStatus::as_str);
        assert_eq!(check, ["pending", "running", "passed", "failed", "skipped"]);
        // error_logs_error_type_check
        let error = strings(ErrorType::ALL, ErrorType::as_str);
        assert_eq!(
            error,
            ["database", "api", "validation", "network", "timeout", "authentication", "authorization", "system"]
        );
        assert_eq!(ExecutionStatus::parse("running"), Some(ExecutionStatus::Running));
        assert_eq!(ValidationStatus::parse("Passed"), None);
        assert_eq!(ErrorType::parse("other"), None);
    }
}
