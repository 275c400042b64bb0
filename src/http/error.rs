//! The one error type of the HTTP API. Every failure a handler can meet ends
//! here and leaves as `application/problem+json` (RFC 9457): `type`, `title`,
//! `status`, `detail`, and for invalid input the list of field `errors`.
//! Database errors are translated here and nowhere else; their SQL and
//! internals never reach a client, and every 5xx is logged with the request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::DbError;

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, as named in the request (`email`, `settings.theme`, `limit`).
    pub field: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// The problem document every error response carries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A relative URI naming the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request: bad JSON, a non-UUID id, an unknown query parameter.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but invalid: the fields and why.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// No credential, or not one of the Bearer scheme.
    #[error("{0}")]
    Unauthorized(String),
    /// A bearer token was sent but is not (or no longer) valid.
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    Forbidden(String),
    /// Missing, or belonging to someone else (the two are indistinguishable).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The body refers to something that does not exist or that the caller
    /// may not see (a `project_id`, a template): 404 naming the field, as
    /// for a missing resource in the path.
    #[error("{detail}")]
    NoSuch { field: String, detail: String },
    /// No route matches the path.
    #[error("{0}")]
    NoRoute(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{detail}")]
    Conflict { detail: String, field: Option<String> },
    /// A request with the same `Idempotency-Key` is still running: 409 with
    /// `Retry-After`, and the retry gets its answer once it is done.
    #[error("{0}")]
    InProgress(String),
    /// An `Idempotency-Key` sent again with a different request: 422.
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// `If-Match` named a version the resource no longer has.
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A write that would take a resource past a size cap (413, the detail
    /// names the cap), e.g. an execution's log past `agents.max_log_bytes`.
    #[error("{0}")]
    OverCap(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after_secs: u64 },
    /// The database cannot be reached (or the circuit breaker is open).
    /// `retry_safe`: the failure is known to have changed nothing (no
    /// connection, a broken one before the commit, a serialization
    /// conflict), so the request may run again at once.
    #[error("{detail}")]
    Unavailable { detail: String, retry_after_secs: u64, retry_safe: bool },
    /// The server is at capacity for this kind of work (e.g. every
    /// password-hashing thread busy and the queue full): 503, retry soon.
    #[error("{0}")]
    Overloaded(String),
    /// A feature the request needs is not configured on this server (e.g.
    /// `DEVX_SECRET_KEY` for secrets at rest): 503, and the detail says what to set.
    #[error("{0}")]
    NotConfigured(String),
    #[error("the request took longer than {0} seconds")]
    Timeout(u64),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError::new(field, message)])
    }

    pub fn no_such(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::NoSuch { field: field.into(), detail: detail.into() }
    }

    pub fn conflict(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::Conflict { detail: detail.into(), field: Some(field.into()) }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) | ApiError::IdempotencyKeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) | ApiError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::NoSuch { .. } | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::InProgress(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge { .. } | ApiError::OverCap(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } | ApiError::Overloaded(_) | ApiError::NotConfigured(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Invalid(_) => "validation",
            ApiError::Unauthorized(_) | ApiError::InvalidToken(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) | ApiError::NoSuch { .. } => "not-found",
            ApiError::NoRoute(_) => "no-route",
            ApiError::MethodNotAllowed(_) => "method-not-allowed",
            ApiError::Conflict { .. } => "conflict",
            ApiError::InProgress(_) => "request-in-progress",
            ApiError::IdempotencyKeyReused(_) => "idempotency-key-reused",
            ApiError::PreconditionFailed(_) => "precondition-failed",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::OverCap(_) => "over-cap",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::TooManyRequests { .. } => "rate-limited",
            ApiError::Unavailable { .. } => "database-unavailable",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::NotConfigured(_) => "not-configured",
            ApiError::Timeout(_) => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The problem document for this error (internal details withheld).
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            ApiError::Invalid(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                format!("invalid value for {}", fields.join(", "))
            }
            ApiError::Internal(_) => "an internal error occurred; it has been logged with the request id".to_string(),
            other => other.to_string(),
        };
        let errors = match self {
            ApiError::Invalid(errors) => errors.clone(),
            ApiError::Conflict { field: Some(field), detail } | ApiError::NoSuch { field, detail } => {
                vec![FieldError::new(field.clone(), detail.clone())]
            }
            ApiError::IdempotencyKeyReused(detail) => vec![FieldError::new("Idempotency-Key", detail.clone())],
            _ => Vec::new(),
        };
        Problem {
            kind: format!("/problems/{}", self.kind()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        if problem.status >= 500 {
            // The request id and route are on the enclosing span.
            tracing::error!(status = problem.status, error = %self, "request failed");
        }
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after_secs, .. } | ApiError::Unavailable { retry_after_secs, .. } => {
                Some(*retry_after_secs)
            }
            ApiError::Overloaded(_) | ApiError::InProgress(_) => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        // RFC 6750: a 401 names the scheme, and says when the token itself was the problem.
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::InvalidToken(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            }
            _ => {}
        }
        if let ApiError::Unavailable { retry_safe: true, .. } = &self {
            response.extensions_mut().insert(RetrySafe);
        }
        response
    }
}

/// What a constraint protects, in the words of the API: the field it concerns
/// and the message a client sees. Constraint names are fixed by the
/// migrations (`<table>_<column>_key|check|fkey`).
pub fn constraint_field(constraint: &str) -> (String, String) {
    if let Some(known) = KNOWN_CONSTRAINTS.iter().find(|(name, _, _)| *name == constraint) {
        return (known.1.to_string(), known.2.to_string());
    }
    // Fall back to the naming convention: `<table>_<field>_<suffix>`.
    let trimmed =
        ["_key", "_check", "_fkey", "_idx"].iter().find_map(|s| constraint.strip_suffix(s)).unwrap_or(constraint);
    let field = TABLES
        .iter()
        .filter_map(|t| trimmed.strip_prefix(t).and_then(|rest| rest.strip_prefix('_')))
        .min_by_key(|rest| rest.len())
        .unwrap_or(trimmed);
    (field.to_string(), String::new())
}

/// Table names, longest first so that `project_contexts_x` is not read as
/// `projects` + ...
const TABLES: &[&str] = &[
    "service_deploy_tokens",
    "deployment_log_lines",
    "preview_deployments",
    "generation_history",
    "webhook_deliveries",
    "idempotency_keys",
    "sign_in_throttle",
    "project_contexts",
    "read_positions",
    "task_executions",
    "pr_validations",
    "execution_logs",
    "activity_logs",
    "chat_messages",
    "modifications",
    "periodic_jobs",
    "system_config",
    "file_storage",
    "technologies",
    "deployments",
    "categories",
    "containers",
    "audit_logs",
    "error_logs",
    "templates",
    "api_keys",
    "env_vars",
    "projects",
    "services",
    "sessions",
    "users",
    "tasks",
];

/// Constraints whose field or message the convention cannot give.
const KNOWN_CONSTRAINTS: &[(&str, &str, &str)] = &[
    ("users_email_lower_key", "email", "an account with this email already exists"),
    ("services_slug_key", "slug", "a service with this slug already exists"),
    ("containers_running_port_key", "assigned_port", "another running container already uses this port"),
    ("containers_container_id_key", "container_id", "a container with this runtime id already exists"),
    ("file_storage_live_path_key", "file_path", "a live file already exists at this path"),
    ("templates_slug_key", "slug", "a template with this slug already exists"),
    ("categories_slug_key", "slug", "a category with this slug already exists"),
    ("technologies_slug_key", "slug", "a technology with this slug already exists"),
    ("tasks_parent_task_id_project_id_fkey", "parent_task_id", "the parent task must exist in the same project"),
    ("tasks_id_project_key", "id", "a task with this id already exists"),
    ("tasks_unique_key_key", "unique_key", "an open task of this project already has this unique_key"),
    ("env_vars_project_id_key_key", "key", "the project already has this variable"),
    ("env_vars_service_id_key_key", "key", "the service already has this variable"),
    ("env_vars_owner_check", "project_id", "a variable belongs to exactly one project or service"),
    ("preview_deployments_live_pr_number_key", "pr_number", "this pull request already has a live preview"),
];

/// The constraint names mapped by hand, so a test can check that each still
/// exists in the schema.
pub fn named_constraints() -> impl Iterator<Item = &'static str> {
    KNOWN_CONSTRAINTS.iter().map(|(name, _, _)| *name)
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
                ApiError::Unavailable {
                    detail: "the database is unavailable; retry shortly".into(),
                    retry_after_secs: 2,
                    retry_safe: true,
                }
            }
            DbError::UniqueViolation { constraint } => {
                let (field, message) = constraint_field(&constraint);
                let detail = if message.is_empty() { format!("{field} is already taken") } else { message };
                ApiError::Conflict { detail, field: Some(field) }
            }
            DbError::ForeignKeyViolation { constraint } => {
                let (field, message) = constraint_field(&constraint);
                let message =
                    if message.is_empty() { "refers to something that does not exist".into() } else { message };
                ApiError::NoSuch { field, detail: message }
            }
            DbError::CheckViolation { constraint } => {
                let (field, message) = constraint_field(&constraint);
                let message =
                    if message.is_empty() { "value is out of the allowed range or format".into() } else { message };
                ApiError::Invalid(vec![FieldError::new(field, message)])
            }
            DbError::NotNullViolation { column } => ApiError::invalid(column, "is required"),
            DbError::InvalidValue(reason) => {
                tracing::info!(%reason, "database refused a value");
                ApiError::BadRequest("a value in the request is not acceptable".into())
            }
            DbError::Timeout => ApiError::Unavailable {
                detail: "the database took too long to answer; retry shortly".into(),
                retry_after_secs: 1,
                retry_safe: false,
            },
            DbError::Conflict => ApiError::Unavailable {
                detail: "the change conflicted with a concurrent one; retry".into(),
                retry_after_secs: 1,
                retry_safe: true,
            },
            DbError::InDoubt(reason) => {
                tracing::warn!(%reason, "the connection broke during a commit");
                ApiError::Unavailable {
                    detail: "the database connection broke while the change was being committed, so it may or may \
                             not have been made: read the resource before trying again"
                        .into(),
                    retry_after_secs: 1,
                    retry_safe: false,
                }
            }
            DbError::NoRow | DbError::Decode(_) | DbError::Other(_) => ApiError::Internal(e.to_string()),
        }
    }
}

/// Marks an answer whose request failed without changing anything and may
/// run again at once (a response extension, set from
/// `ApiError::Unavailable { retry_safe: true, .. }`): the idempotency layer
/// retries a keyed write once on it.
#[derive(Debug, Clone, Copy)]
pub struct RetrySafe;

/// Handlers return this.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_names_map_to_fields() {
        assert_eq!(constraint_field("users_email_lower_key").0, "email");
        assert_eq!(constraint_field("projects_owner_id_fkey").0, "owner_id");
        assert_eq!(constraint_field("project_contexts_security_score_check").0, "security_score");
        assert_eq!(constraint_field("tasks_priority_check").0, "priority");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let problem = ApiError::Internal("relation devx.secret does not exist".into()).problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("devx.secret"));
    }

    #[test]
    fn database_unavailable_is_503() {
        let e = ApiError::from(DbError::Unavailable("connection refused".into()));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.problem().detail.contains("refused"));
    }
}
