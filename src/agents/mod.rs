//! Agents and CI/CD: tasks (with subtasks, claimed by agents), their
//! executions and append-only logs, pull-request validations and error logs.
//!
//! `model` is what the API shows and the status machines, `queries` the SQL
//! (one file per resource; a PR validation's status is computed there, in
//! the update that records a check), `settings` the `agents.*` settings
//! (limits, leases, attempts, backoff), `reaper` the job that fails the
//! executions of lost agents and hands their tasks on, and the handlers are
//! split by resource: `tasks`, `executions`, `logs`, `pr_validations`,
//! `errors`.
//!
//! Who sees what: tasks belong to projects, so a user sees the tasks of
//! their own (not deleted) projects, and through them their executions, log
//! lines, PR validations and error logs; an admin sees all. A PR validation
//! or error log tied to no task belongs to the user who filed it. Anything
//! else is a 404, exactly like a missing id.

mod errors;
mod executions;
mod logs;
pub mod model;
mod pr_validations;
pub mod queries;
pub mod reaper;
pub mod settings;
mod tasks;

use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;

use crate::http::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(tasks::routes())
        .merge(executions::routes())
        .merge(logs::routes())
        .merge(pr_validations::routes())
        .merge(errors::routes())
}

/// A small, complete list (a summary): `{"items": [...]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// Keyset of lists ordered newest first.
use crate::http::pagination::TimeKey;

/// Largest JSON object accepted in a field (requirements, context, details...).
const JSON_MAX: usize = 256 * 1024;

/// An agent type as the database accepts it.
pub fn is_agent_type(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 50
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// [`is_agent_type`] as the OpenAPI document states it.
const AGENT_TYPE_PATTERN: &str = "^[a-z][a-z0-9_-]{0,49}$";

const AGENT_TYPE_RULE: &str =
    "must be 1-50 lowercase letters, digits, `_` or `-`, starting with a letter (e.g. claude-code)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_types() {
        assert!(is_agent_type("claude-code"));
        assert!(is_agent_type("validation_engine2"));
        assert!(!is_agent_type(""));
        assert!(!is_agent_type("Claude"));
        assert!(!is_agent_type("2fast"));
        assert!(!is_agent_type(&"a".repeat(51)));
    }
}
