//! PR validations over HTTP: record one (optionally for a task or an
//! execution, optionally naming the checks to expect), list, read, record
//! one check's result, and the summary by repository.
//!
//! A validation's status follows its checks, recomputed in the same update
//! that records a check: any failed -> failed; every one passed (or skipped)
//! -> passed; otherwise running. A cancelled validation takes no more
//! results (409). The CI system may also set the status itself, with the
//! overall summary it reports (`PUT .../status`: pending -> running ->
//! passed | failed, or cancelled from pending or running), and a pending or
//! running validation can be cancelled (`POST .../cancel`); a finished one
//! is a 409 saying so.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::executions::visible_execution;
use super::model::{CheckStatus, PrValidation, PrValidationSummary, ValidationStatus};
use super::queries::pr_validations::{self as q, NewValidation, ValidationFilter};
use super::tasks::visible_task;
use super::{Items, JSON_MAX, TimeKey};
use crate::accounts::{Bearer, Principal};
use crate::db::{DbError, Queryable};
use crate::http::Versioned;
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, ETag, IfMatch, Json, Path, Query, Tagged};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_validations, create_validation))
        .routes(routes!(validation_summary))
        .routes(routes!(get_validation))
        .routes(routes!(record_check))
        .routes(routes!(cancel_validation))
        .routes(routes!(set_validation_status))
}

/// Checks a validation may have.
const MAX_CHECKS: usize = 100;

fn repository_ok(s: &str) -> bool {
    s.len() <= 255
        && s.split_once('/').is_some_and(|(owner, name)| {
            let part =
                |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            part(owner) && part(name)
        })
}

/// A check name: 1 to 100 characters, no control characters.
fn check_name_ok(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= 100 && !s.chars().any(char::is_control)
}

const CHECK_NAME_RULE: &str = "must be 1 to 100 characters without control characters (e.g. tests, lint, ci / build)";

/// [`check_name_ok`] as the OpenAPI document states it: no control
/// character (`Cc`: U+0000-U+001F, U+007F-U+009F), and one that is not
/// whitespace either (what `str::trim` trims, once the controls are out:
/// space, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F,
/// U+3000). The path parameter `name` repeats it.
const CHECK_NAME_PATTERN: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$";

fn check_name_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(100))
        .pattern(Some(CHECK_NAME_PATTERN))
}

/// `checks`: at most [`MAX_CHECKS`] names.
fn checks_schema() -> Schema {
    ArrayBuilder::new()
        .items(check_name_schema())
        .max_items(Some(MAX_CHECKS))
        .description(Some(
            "Names of the checks to expect (at most 100, each 1 to 100 characters without control characters); \
             each starts `pending`, so the validation passes only once all of them have passed.",
        ))
        .into()
}

/// The validation if it exists and the caller may see it.
async fn visible(db: &impl Queryable, principal: &Principal, id: Uuid) -> Result<Option<PrValidation>, DbError> {
    Ok(principal.visibility().filter(q::get_validation(db, id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ValidationListParams {
    /// `owner/name`.
    pub repository: Option<String>,
    pub status: Option<ValidationStatus>,
    pub branch_name: Option<String>,
    pub pr_number: Option<i32>,
    pub task_id: Option<Uuid>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The PR validations the caller may see, newest first.
#[utoipa::path(
    get, path = "/api/pr-validations", tag = "pr-validations", security(("bearer" = ["read"])),
    params(ValidationListParams),
    responses(
        (status = 200, body = Page<PrValidation>),
        (status = 400, description = "Bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_validations(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<ValidationListParams>,
) -> ApiResult<Json<Page<PrValidation>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let filter = ValidationFilter {
        owner: principal.visibility().owner(),
        repository: p.repository,
        status: p.status,
        branch_name: p.branch_name,
        pr_number: p.pr_number,
        task_id: p.task_id,
        after,
        limit,
    };
    let rows = crate::db_read!(state.db, |c| q::list_validations(c, &filter))?;
    Ok(Json(Page::from_rows(rows, limit, |v| (v.created_at, v.id))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateValidation {
    /// `owner/name`: letters, digits, `-`, `_` and `.`, at most 255
    /// characters.
    #[schema(example = "acme/shop", max_length = 255, pattern = "^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$")]
    pub repository: String,
    #[serde(deserialize_with = "crate::http::extract::whole")]
    #[schema(example = 42, minimum = 1)]
    pub pr_number: i32,
    /// Trimmed; 1 to 255 characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub branch_name: Option<String>,
    /// A task of yours; implied by `execution_id` when omitted.
    pub task_id: Option<Uuid>,
    /// An execution of yours (of `task_id`, when both are given; 404 naming
    /// the field otherwise).
    pub execution_id: Option<Uuid>,
    /// The webhook's payload, as received; at most 256 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    pub webhook_payload: Option<Map<String, Value>>,
    #[serde(default)]
    #[schema(schema_with = checks_schema)]
    pub checks: Vec<String>,
}

/// Record a PR validation (pending). Without a task it belongs to the caller.
#[utoipa::path(
    post, path = "/api/pr-validations", tag = "pr-validations", security(("bearer" = ["write"])),
    params(IdempotencyKey),
    request_body = CreateValidation,
    responses(
        (status = 201, body = PrValidation, headers(("Location" = String, description = "The new PR validation: /api/pr-validations/{id}"), ("ETag" = String, description = "The new PR validation's version, for If-Match"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; no such task or execution of yours; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_validation(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CreateValidation>,
) -> ApiResult<Created<PrValidation>> {
    let payload = req.webhook_payload.map(Value::Object);
    let mut v = Validator::new();
    v.check(repository_ok(req.repository.trim()), "repository", "must be owner/name (letters, digits, `-`, `_`, `.`)");
    v.check(req.pr_number > 0, "pr_number", "must be a positive number");
    v.opt_text("branch_name", req.branch_name.as_deref(), 1, 255);
    if let Some(p) = &payload {
        v.json_object("webhook_payload", p, JSON_MAX);
    }
    v.check(req.checks.len() <= MAX_CHECKS, "checks", format!("at most {MAX_CHECKS} checks"));
    if let Some(bad) = req.checks.iter().find(|c| !check_name_ok(c)) {
        v.error("checks", format!("{bad:?} {CHECK_NAME_RULE}"));
    }
    v.finish()?;
    let results: Map<String, Value> =
        req.checks.iter().map(|name| (name.clone(), json!({"status": CheckStatus::Pending.as_str()}))).collect();
    let results = Value::Object(results);

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
    let validation = q::insert_validation(
        &tx,
        &NewValidation {
            task_id,
            execution_id: req.execution_id,
            pr_number: req.pr_number,
            repository: req.repository.trim(),
            branch_name: req.branch_name.as_deref(),
            validation_results: &results,
            webhook_payload: payload.as_ref(),
            created_by: principal.user_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/pr-validations/{}", validation.id), validation))
}

/// Per repository over the validations the caller may see (all for an
/// admin, from the `pr_validation_summary` view): counts by status and the
/// pass rate.
#[utoipa::path(
    get, path = "/api/pr-validations/summary", tag = "pr-validations", security(("bearer" = ["read"])),
    responses(
        (status = 200, body = Items<PrValidationSummary>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn validation_summary(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Items<PrValidationSummary>>> {
    let owner = principal.visibility().owner();
    let items = crate::db_read!(state.db, |c| q::summary(c, owner))?;
    Ok(Json(Items { items }))
}

/// One PR validation with its check results.
#[utoipa::path(
    get, path = "/api/pr-validations/{id}", tag = "pr-validations", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Validation id")),
    responses(
        (status = 200, body = PrValidation, headers(("ETag" = String, description = "The PR validation's version, for If-Match"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such validation of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_validation(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<PrValidation>> {
    let (principal, v) = crate::db_read_as!(state, bearer, |c| q::get_validation(c, id))?;
    principal.visibility().filter(v).map(Tagged).ok_or(ApiError::NotFound("PR validation"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    pub status: CheckStatus,
    /// One line for people, at most 2000 characters.
    #[schema(max_length = 2000)]
    pub summary: Option<String>,
    /// Anything the check reports (counts, failures, links); at most 256
    /// KiB of JSON.
    #[schema(value_type = Option<Object>)]
    pub details: Option<Map<String, Value>>,
}

/// Record the result of one check (created if new, replaced if known). The
/// validation's status follows at once.
#[utoipa::path(
    patch, path = "/api/pr-validations/{id}/checks/{name}", tag = "pr-validations", security(("bearer" = ["write"])),
    params(
        ("id" = Uuid, Path, description = "Validation id"),
        ("name" = String, Path, description = "Check name, e.g. `tests` (percent-encode `/` and spaces): 1 to 100 characters without control characters", min_length = 1, max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"),
        IfMatch,
    ),
    request_body = CheckResult,
    responses(
        (status = 200, body = PrValidation, headers(("ETag" = String, description = "The PR validation's version after the change"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such validation of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The validation is cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the PR validation no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or check name, or too many checks", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn record_check(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, name)): Path<(Uuid, String)>,
    if_match: IfMatch,
    Json(req): Json<CheckResult>,
) -> ApiResult<Tagged<PrValidation>> {
    let details = req.details.map(Value::Object);
    let mut v = Validator::new();
    v.check(check_name_ok(&name), "name", CHECK_NAME_RULE);
    v.opt_text("summary", req.summary.as_deref(), 0, 2000);
    if let Some(d) = &details {
        v.json_object("details", d, JSON_MAX);
    }
    v.finish()?;
    let result = json!({
        "status": req.status.as_str(),
        "summary": req.summary,
        "details": details,
        "updated_at": chrono::Utc::now(),
    });

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let current = visible(&tx, &principal, id).await?.ok_or(ApiError::NotFound("PR validation"))?;
    if if_match.is_conditional() {
        let version = q::lock_validation(&tx, id).await?.ok_or(ApiError::NotFound("PR validation"))?;
        if_match.check("PR validation", &ETag::from_timestamp(version))?;
    }
    let known = current.validation_results.get(&name).is_some();
    let count = current.validation_results.as_object().map_or(0, Map::len);
    if !known && count >= MAX_CHECKS {
        return Err(ApiError::conflict(
            "name",
            format!("the validation has {count} checks, the most it may have; record results of those instead"),
        ));
    }
    let updated = q::record_check(&tx, id, &name, &result).await?.ok_or_else(|| ApiError::Conflict {
        detail: "the validation is cancelled, which is final; it takes no more check results".into(),
        field: None,
    })?;
    tx.commit().await?;
    Ok(Tagged(updated))
}

/// Locks the validation's row, then reads it if the caller may see it: the
/// status read is the one a conditional update on it will find.
async fn locked(db: &impl Queryable, principal: &Principal, id: Uuid) -> ApiResult<PrValidation> {
    q::lock_validation(db, id).await?;
    visible(db, principal, id).await?.ok_or(ApiError::NotFound("PR validation"))
}

/// Moves a locked, visible validation from `current`'s status to `to`
/// (recording `summary` when given); the 409 when the move is not allowed.
/// The same status is no change (the summary is still recorded).
async fn move_to(
    db: &impl Queryable,
    current: &PrValidation,
    to: ValidationStatus,
    summary: Option<&Value>,
) -> ApiResult<PrValidation> {
    if to != current.status && !current.status.next().contains(&to) {
        return Err(ApiError::Conflict { detail: current.status.refusal(to), field: Some("status".into()) });
    }
    if to == current.status && summary.is_none() {
        return Ok(current.clone());
    }
    q::set_status(db, current.id, current.status, to, summary)
        .await?
        .ok_or_else(|| ApiError::internal("a locked PR validation changed status"))
}

/// Cancel a pending or running PR validation. A finished one (passed,
/// failed or cancelled) is a 409 saying so.
#[utoipa::path(
    post, path = "/api/pr-validations/{id}/cancel", tag = "pr-validations", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Validation id")),
    responses(
        (status = 200, description = "Cancelled", body = PrValidation, headers(("ETag" = String, description = "The PR validation's version after the change"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such validation of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The validation is finished (passed, failed or cancelled already)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_validation(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<PrValidation>> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let current = locked(&tx, &principal, id).await?;
    if !current.status.next().contains(&ValidationStatus::Cancelled) {
        return Err(ApiError::Conflict {
            detail: format!(
                "the PR validation is {}, which is final: only a pending or running validation can be cancelled",
                current.status.as_str()
            ),
            field: None,
        });
    }
    let updated = move_to(&tx, &current, ValidationStatus::Cancelled, None).await?;
    tx.commit().await?;
    Ok(Tagged(updated))
}

/// A status the CI system may set.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportedStatus {
    Running,
    Passed,
    Failed,
    Cancelled,
}

impl From<ReportedStatus> for ValidationStatus {
    fn from(s: ReportedStatus) -> ValidationStatus {
        match s {
            ReportedStatus::Running => ValidationStatus::Running,
            ReportedStatus::Passed => ValidationStatus::Passed,
            ReportedStatus::Failed => ValidationStatus::Failed,
            ReportedStatus::Cancelled => ValidationStatus::Cancelled,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetValidationStatus {
    /// pending -> running | passed | failed | cancelled; running -> passed
    /// | failed | cancelled. Another move is a 409 naming the allowed ones;
    /// the same status is no change (a `summary` given is still recorded).
    pub status: ReportedStatus,
    /// The overall result, e.g. `{"overall_score": 95, "checks_passed": 5,
    /// "checks_failed": 0}`: replaces the one recorded; at most 256 KiB of
    /// JSON. Left out, the recorded one stays.
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Map<String, Value>>,
}

/// Set a PR validation's status as the CI system decides it, with the
/// overall summary it reports. Per-check results are recorded with `PATCH
/// /api/pr-validations/{id}/checks/{name}`.
#[utoipa::path(
    put, path = "/api/pr-validations/{id}/status", tag = "pr-validations", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Validation id"), IfMatch),
    request_body = SetValidationStatus,
    responses(
        (status = 200, body = PrValidation, headers(("ETag" = String, description = "The PR validation's version after the change"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such validation of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a move the validation's status allows (the detail names the status and the allowed next ones)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the PR validation no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn set_validation_status(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(req): Json<SetValidationStatus>,
) -> ApiResult<Tagged<PrValidation>> {
    let summary = req.summary.map(Value::Object);
    let mut v = Validator::new();
    if let Some(s) = &summary {
        v.json_object("summary", s, JSON_MAX);
    }
    v.finish()?;
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let current = locked(&tx, &principal, id).await?;
    if_match.check("PR validation", &current.etag())?;
    let updated = move_to(&tx, &current, req.status.into(), summary.as_ref()).await?;
    tx.commit().await?;
    Ok(Tagged(updated))
}
