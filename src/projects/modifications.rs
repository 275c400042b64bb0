//! Modifications (change requests to a project) over HTTP, and their state
//! machine: pending -> approved | rejected; approved -> applied | failed.
//! A transition is one conditional `UPDATE ... WHERE status = <expected>`,
//! so of two concurrent transitions exactly one wins; the loser gets a 409
//! naming the status it found and the ones allowed from there.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::access;
use super::model::{Modification, ModificationStatus};
use super::path::{self, FilePath};
use super::queries::{self, NewModification, TransitionData};
use super::routes::TimeKey;
use crate::accounts::Principal;
use crate::db::Queryable;
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::json_schema::AnyJson;
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, Json, Path, Query};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_modifications, create_modification))
        .routes(routes!(get_modification))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(apply))
        .routes(routes!(fail))
}

const RESULT_MAX: usize = 1024 * 1024;
const MAX_FILES: usize = 1000;

fn file_list(v: &mut Validator, field: &str, files: &[String]) {
    v.check(files.len() <= MAX_FILES, field, format!("at most {MAX_FILES} files"));
    if let Some((bad, problem)) = files.iter().find_map(|f| path::problem(f).map(|p| (f, p))) {
        v.error(field, format!("{bad:?} {problem}"));
    }
}

crate::json_schema! {
    /// What an applied modification changed: path -> new content.
    ModifiedFiles = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("Path -> new content (any JSON) of each file changed, at most 1000 files."))
        .property_names(Some(path::file_path()))
        .additional_properties(Some(AnyJson::schema()))
        .max_properties(Some(MAX_FILES));
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ModificationListParams {
    pub status: Option<ModificationStatus>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A project's modifications, newest first.
#[utoipa::path(
    get, path = "/api/projects/{id}/modifications", tag = "modifications", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Project id"), ModificationListParams),
    responses(
        (status = 200, body = Page<Modification>),
        (status = 400, description = "The id is not a UUID, bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_modifications(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Query(p): Query<ModificationListParams>,
) -> ApiResult<Json<Page<Modification>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let rows = crate::db_read!(state.db, |c| async {
        match access::find_project(c, &principal, id, false).await? {
            Some(_) => queries::list_modifications(c, id, p.status, after, limit).await.map(Some),
            None => Ok(None),
        }
    })?
    .ok_or(ApiError::NotFound("project"))?;
    Ok(Json(Page::from_rows(rows, limit, |m| (m.created_at, m.id))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateModification {
    /// What should change, in words: 1 to 20,000 characters.
    #[schema(
        example = "Add authentication",
        min_length = 1,
        max_length = 20_000,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub request: String,
    /// At most 1 MiB serialized.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub impact_analysis: Map<String, Value>,
    /// Paths the change is expected to touch, at most 1000.
    #[serde(default)]
    #[schema(value_type = Vec<FilePath>, max_items = 1000)]
    pub affected_files: Vec<String>,
}

/// Request a modification of a project (it starts `pending`).
#[utoipa::path(
    post, path = "/api/projects/{id}/modifications", tag = "modifications", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Project id"), IdempotencyKey),
    request_body = CreateModification,
    responses(
        (status = 201, body = Modification, headers(("Location" = String, description = "The new modification: /api/modifications/{id}"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_modification(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateModification>,
) -> ApiResult<Created<Modification>> {
    let impact = Value::Object(req.impact_analysis);
    let mut v = Validator::new();
    v.text("request", &req.request, 1, 20_000);
    v.json_object("impact_analysis", &impact, RESULT_MAX);
    file_list(&mut v, "affected_files", &req.affected_files);
    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    access::project_for(&tx, &principal, id, false).await?;
    let m = queries::insert_modification(
        &tx,
        &NewModification {
            project_id: id,
            request: req.request.trim(),
            requested_by: principal.user_id,
            impact_analysis: &impact,
            affected_files: &req.affected_files,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Created::at(format!("/api/modifications/{}", m.id), m))
}

/// The modification if it belongs to a project the caller may see.
async fn visible(
    db: &impl Queryable,
    principal: &Principal,
    id: Uuid,
) -> Result<Option<Modification>, crate::db::DbError> {
    let Some(m) = queries::get_modification(db, id).await? else { return Ok(None) };
    Ok(access::find_project(db, principal, m.project_id, false).await?.map(|_| m))
}

/// One modification.
#[utoipa::path(
    get, path = "/api/modifications/{id}", tag = "modifications", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Modification id")),
    responses(
        (status = 200, body = Modification),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such modification in a project of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_modification(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Modification>> {
    let m = crate::db_read!(state.db, |c| visible(c, &principal, id))?;
    m.map(Json).ok_or(ApiError::NotFound("modification"))
}

/// Runs one transition of the state machine as the caller.
async fn transition(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    to: ModificationStatus,
    data: TransitionData,
) -> ApiResult<Json<Modification>> {
    let from = to.from().ok_or_else(|| ApiError::internal("no transition leads to pending"))?;
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let current = visible(&tx, principal, id).await?.ok_or(ApiError::NotFound("modification"))?;
    if current.status != from {
        return Err(ApiError::Conflict { detail: current.status.refusal(to), field: None });
    }
    match queries::transition_modification(&tx, id, from, to, &data).await? {
        Some(m) => {
            tx.commit().await?;
            Ok(Json(m))
        }
        None => {
            // Someone else moved it first (or deleted it): say which.
            let now = queries::get_modification(&tx, id).await?.ok_or(ApiError::NotFound("modification"))?;
            Err(ApiError::Conflict { detail: now.status.refusal(to), field: None })
        }
    }
}

/// Approve a pending modification.
#[utoipa::path(
    post, path = "/api/modifications/{id}/approve", tag = "modifications", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Modification id")),
    responses(
        (status = 200, body = Modification),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such modification in a project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending (the detail names its status and the allowed next ones)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Modification>> {
    transition(&state, &principal, id, ModificationStatus::Approved, TransitionData::default()).await
}

/// Reject a pending modification.
#[utoipa::path(
    post, path = "/api/modifications/{id}/reject", tag = "modifications", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Modification id")),
    responses(
        (status = 200, body = Modification),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such modification in a project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending (the detail names its status and the allowed next ones)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn reject(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Modification>> {
    transition(&state, &principal, id, ModificationStatus::Rejected, TransitionData::default()).await
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyModification {
    /// Path -> new content of each file changed, at most 1 MiB serialized.
    #[serde(default)]
    #[schema(value_type = ModifiedFiles)]
    pub modified_files: Map<String, Value>,
    /// At most 1 MiB serialized.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub test_results: Map<String, Value>,
}

/// Record that an approved modification was applied (sets `applied_at`).
#[utoipa::path(
    post, path = "/api/modifications/{id}/apply", tag = "modifications", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Modification id")),
    request_body = ApplyModification,
    responses(
        (status = 200, body = Modification),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such modification in a project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not approved (the detail names its status and the allowed next ones)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn apply(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Json(req): Json<ApplyModification>,
) -> ApiResult<Json<Modification>> {
    let paths: Vec<String> = req.modified_files.keys().cloned().collect();
    let modified_files = Value::Object(req.modified_files);
    let test_results = Value::Object(req.test_results);
    let mut v = Validator::new();
    file_list(&mut v, "modified_files", &paths);
    v.json_object("modified_files", &modified_files, RESULT_MAX);
    v.json_object("test_results", &test_results, RESULT_MAX);
    v.finish()?;
    let data = TransitionData { modified_files: Some(modified_files), test_results: Some(test_results) };
    transition(&state, &principal, id, ModificationStatus::Applied, data).await
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailModification {
    /// At most 1 MiB serialized (with `error`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub test_results: Map<String, Value>,
    /// What went wrong, 1 to 20,000 characters; recorded as
    /// `test_results.error`.
    #[schema(
        min_length = 1,
        max_length = 20_000,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub error: Option<String>,
}

/// Record that applying an approved modification failed.
#[utoipa::path(
    post, path = "/api/modifications/{id}/fail", tag = "modifications", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Modification id")),
    request_body = FailModification,
    responses(
        (status = 200, body = Modification),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such modification in a project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not approved (the detail names its status and the allowed next ones)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn fail(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Json(req): Json<FailModification>,
) -> ApiResult<Json<Modification>> {
    let mut results = req.test_results;
    let mut v = Validator::new();
    v.opt_text("error", req.error.as_deref(), 1, 20_000);
    if let Some(error) = req.error {
        results.insert("error".into(), Value::String(error));
    }
    let test_results = Value::Object(results);
    v.json_object("test_results", &test_results, RESULT_MAX);
    v.finish()?;
    let data = TransitionData { modified_files: None, test_results: Some(test_results) };
    transition(&state, &principal, id, ModificationStatus::Failed, data).await
}
