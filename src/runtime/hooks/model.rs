//! Deploy tokens and webhook deliveries as the API shows them, and what a
//! delivery's payload says (`Push`, `PullRequest`), read from GitHub's and
//! GitLab's JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

crate::text_enum! {
    /// Who sent a delivery.
    pub enum Provider {
        Github,
        Gitlab,
    }
}

crate::text_enum! {
    /// What a delivery did.
    pub enum DeliveryStatus {
        /// A push: one deployment queued.
        DeploymentQueued,
        /// A pull request opened, reopened or pushed to: a preview deployment
        /// queued and the preview recorded.
        PreviewDeployed,
        /// A pull request closed or merged: its preview closed.
        PreviewClosed,
        /// Any other event (`ping`, a tag push, a branch deleted...): nothing.
        Ignored,
    }
}

/// A service's deploy token, without the token.
#[derive(Debug, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct DeployToken {
    /// The token's record (it keeps its id when the token is regenerated).
    pub id: Uuid,
    pub service_id: Uuid,
    /// The audit actor that created (or last regenerated) it.
    #[schema(example = "user:6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b")]
    pub created_by: String,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When a delivery last passed its check.
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A new deploy token: the only answer that shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewDeployToken {
    /// Shown once: configure it as the webhook's secret (GitHub) or secret
    /// token (GitLab). devx keeps its hash and a sealed copy, never shows it
    /// again, and a new one replaces it.
    #[schema(example = "dxh_3q2-7wEJzv0bB5d1n9yQ4l8m6KfA0cR5tU7xZ2pLs1E")]
    pub deploy_token: String,
    /// Where deliveries go.
    #[schema(example = "/api/hooks/deploy/6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b")]
    pub webhook_path: String,
    #[serde(flatten)]
    pub info: DeployToken,
}

/// What a delivery did; a replay of its delivery id gets the same answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryAnswer {
    pub delivery_id: String,
    pub provider: Provider,
    /// The event as the provider named it (`push`, `pull_request`,
    /// `Push Hook`...).
    pub event: String,
    pub status: DeliveryStatus,
    /// What happened, in words (for an ignored event: why).
    pub detail: String,
    /// The deployment queued, if any.
    pub deployment_id: Option<Uuid>,
    /// The pull request, for pull-request events.
    pub pr_number: Option<i32>,
}

/// A push to a branch.
#[derive(Debug, PartialEq, Eq)]
pub struct Push {
    pub branch: String,
    pub sha: String,
    pub message: Option<String>,
}

/// What a pull request event asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum PrAction {
    /// Opened, reopened or pushed to: deploy its head.
    Deploy,
    /// Closed or merged.
    Close,
}

#[derive(Debug, PartialEq, Eq)]
pub struct PullRequest {
    pub action: PrAction,
    pub number: i32,
    pub url: Option<String>,
    pub branch: String,
    pub sha: String,
}

/// What a delivery's event and payload ask for.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Push(Push),
    PullRequest(PullRequest),
    /// Nothing to do, and why.
    Ignored(String),
}

/// A payload field devx needs is missing or not what it must be: the path
/// and what it must be.
#[derive(Debug, PartialEq, Eq)]
pub struct PayloadError {
    pub field: &'static str,
    pub message: String,
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

fn need<'a>(v: &'a Value, pointer: &'static str, what: &str) -> Result<&'a str, PayloadError> {
    text(v, pointer).ok_or_else(|| PayloadError { field: pointer, message: format!("must be {what}") })
}

fn sha(v: &Value, pointer: &'static str) -> Result<String, PayloadError> {
    let s = need(v, pointer, "a commit id (7 to 64 hexadecimal digits)")?;
    if (7..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(s.to_string())
    } else {
        Err(PayloadError { field: pointer, message: "must be a commit id (7 to 64 hexadecimal digits)".into() })
    }
}

fn branch(v: &Value, pointer: &'static str) -> Result<String, PayloadError> {
    let b = need(v, pointer, "a branch name")?.trim();
    if b.chars().count() > 255 {
        return Err(PayloadError { field: pointer, message: "must be a branch name of at most 255 characters".into() });
    }
    Ok(b.to_string())
}

/// A commit message as stored: at most 10000 characters.
fn message(s: Option<&str>) -> Option<String> {
    s.map(|m| m.chars().take(10_000).collect())
}

/// An http(s) URL of at most 2048 characters, or nothing.
fn url(s: Option<&str>) -> Option<String> {
    s.filter(|u| (u.starts_with("https://") || u.starts_with("http://")) && u.chars().count() <= 2048)
        .map(str::to_string)
}

fn pr_number(v: &Value, pointer: &'static str) -> Result<i32, PayloadError> {
    v.pointer(pointer)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or(PayloadError { field: pointer, message: "must be a positive pull request number".into() })
}

/// `refs/heads/<branch>` to the branch; other refs (tags) are not deployed.
fn branch_of_ref(r: &str) -> Option<&str> {
    r.strip_prefix("refs/heads/").filter(|b| !b.is_empty())
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// What a GitHub delivery asks for.
pub fn github_event(event: &str, payload: &Value) -> Result<Event, PayloadError> {
    match event {
        "push" => {
            let r = need(payload, "/ref", "the pushed ref, e.g. refs/heads/main")?;
            let Some(b) = branch_of_ref(r) else {
                return Ok(Event::Ignored(format!("a push to {r}, not to a branch: nothing deployed")));
            };
            if payload.get("deleted").and_then(Value::as_bool) == Some(true)
                || text(payload, "/after") == Some(ZERO_SHA)
            {
                return Ok(Event::Ignored(format!("branch {b} was deleted: nothing deployed")));
            }
            if b.chars().count() > 255 {
                return Err(PayloadError {
                    field: "/ref",
                    message: "must name a branch of at most 255 characters".into(),
                });
            }
            Ok(Event::Push(Push {
                branch: b.to_string(),
                sha: sha(payload, "/after")?,
                message: message(text(payload, "/head_commit/message")),
            }))
        }
        "pull_request" => {
            let action = need(payload, "/action", "the pull request's action")?;
            let action = match action {
                "opened" | "reopened" | "synchronize" => PrAction::Deploy,
                "closed" => PrAction::Close,
                other => return Ok(Event::Ignored(format!("pull request action {other:?}: nothing to do"))),
            };
            Ok(Event::PullRequest(PullRequest {
                action,
                number: pr_number(payload, "/number")?,
                url: url(text(payload, "/pull_request/html_url")),
                branch: branch(payload, "/pull_request/head/ref")?,
                sha: sha(payload, "/pull_request/head/sha")?,
            }))
        }
        other => Ok(Event::Ignored(format!("event {other:?} is not a push or a pull request: nothing to do"))),
    }
}

/// What a GitLab delivery asks for (`X-Gitlab-Event`: `Push Hook`, `Merge
/// Request Hook`).
pub fn gitlab_event(event: &str, payload: &Value) -> Result<Event, PayloadError> {
    match event {
        "Push Hook" => {
            let r = need(payload, "/ref", "the pushed ref, e.g. refs/heads/main")?;
            let Some(b) = branch_of_ref(r) else {
                return Ok(Event::Ignored(format!("a push to {r}, not to a branch: nothing deployed")));
            };
            let head = text(payload, "/checkout_sha").or_else(|| text(payload, "/after"));
            if head.is_none_or(|h| h == ZERO_SHA) {
                return Ok(Event::Ignored(format!("branch {b} was deleted: nothing deployed")));
            }
            if b.chars().count() > 255 {
                return Err(PayloadError {
                    field: "/ref",
                    message: "must name a branch of at most 255 characters".into(),
                });
            }
            let sha = if text(payload, "/checkout_sha").is_some() {
                sha(payload, "/checkout_sha")?
            } else {
                sha(payload, "/after")?
            };
            let commit_message = payload
                .get("commits")
                .and_then(Value::as_array)
                .and_then(|commits| commits.iter().find(|c| c.get("id").and_then(Value::as_str) == Some(sha.as_str())))
                .and_then(|c| text(c, "/message"));
            Ok(Event::Push(Push { branch: b.to_string(), message: message(commit_message), sha }))
        }
        "Merge Request Hook" => {
            let action = text(payload, "/object_attributes/action").unwrap_or("open");
            let action = match action {
                "open" | "reopen" | "update" => PrAction::Deploy,
                "close" | "merge" => PrAction::Close,
                other => return Ok(Event::Ignored(format!("merge request action {other:?}: nothing to do"))),
            };
            Ok(Event::PullRequest(PullRequest {
                action,
                number: pr_number(payload, "/object_attributes/iid")?,
                url: url(text(payload, "/object_attributes/url")),
                branch: branch(payload, "/object_attributes/source_branch")?,
                sha: sha(payload, "/object_attributes/last_commit/id")?,
            }))
        }
        other => Ok(Event::Ignored(format!("event {other:?} is not a push or a merge request: nothing to do"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";

    #[test]
    fn github_pushes_and_pull_requests_are_read() {
        let push = json!({"ref": "refs/heads/main", "after": SHA, "head_commit": {"message": "Fix it"}});
        assert_eq!(
            github_event("push", &push),
            Ok(Event::Push(Push { branch: "main".into(), sha: SHA.into(), message: Some("Fix it".into()) }))
        );
        assert!(matches!(github_event("push", &json!({"ref": "refs/tags/v1", "after": SHA})), Ok(Event::Ignored(_))));
        assert!(matches!(github_event("ping", &json!({"zen": "hi"})), Ok(Event::Ignored(_))));
        let bad = github_event("push", &json!({"ref": "refs/heads/main", "after": "nope"})).unwrap_err();
        assert_eq!(bad.field, "/after");
        let pr = json!({"action": "closed", "number": 7,
            "pull_request": {"html_url": "https://github.com/o/r/pull/7", "head": {"ref": "feat", "sha": SHA}}});
        let Ok(Event::PullRequest(pr)) = github_event("pull_request", &pr) else { panic!() };
        assert_eq!((pr.action, pr.number, pr.branch.as_str()), (PrAction::Close, 7, "feat"));
    }

    #[test]
    fn gitlab_pushes_and_merge_requests_are_read() {
        let push = json!({"object_kind": "push", "ref": "refs/heads/dev", "checkout_sha": SHA,
            "commits": [{"id": SHA, "message": "Add it"}]});
        assert_eq!(
            gitlab_event("Push Hook", &push),
            Ok(Event::Push(Push { branch: "dev".into(), sha: SHA.into(), message: Some("Add it".into()) }))
        );
        let mr = json!({"object_attributes": {"iid": 3, "action": "merge", "source_branch": "f",
            "last_commit": {"id": SHA}}});
        let Ok(Event::PullRequest(mr)) = gitlab_event("Merge Request Hook", &mr) else { panic!() };
        assert_eq!((mr.action, mr.number), (PrAction::Close, 3));
    }
}
