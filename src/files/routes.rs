//! File records over HTTP: a project's live files, recording one (replacing
//! the record at the same path), reading and deleting one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::FileRecord;
use super::path;
use super::queries::{self, FileFilter, NewFile};
use crate::accounts::Principal;
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, Json, Path, Query};
use crate::projects::access::{find_project, project_for};
use crate::runtime::containers::queries::belongs_to_project;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_files, record_file)).routes(routes!(get_file, delete_file))
}

/// `type/subtype`, at most 255 characters, e.g. `text/markdown`.
fn mime_ok(m: &str) -> bool {
    m.len() <= 255
        && m.split_once('/').is_some_and(|(t, s)| !t.is_empty() && !s.is_empty())
        && m.chars().all(|c| c.is_ascii_graphic() || c == ' ')
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FileListParams {
    /// Only paths that start with this text, e.g. `src/`.
    pub path_prefix: Option<String>,
    pub mime_type: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A project's live file records, by path.
#[utoipa::path(
    get, path = "/api/projects/{id}/files", tag = "files", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Project id"), FileListParams),
    responses(
        (status = 200, body = Page<FileRecord>),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_files(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Query(p): Query<FileListParams>,
) -> ApiResult<Json<Page<FileRecord>>> {
    let PageRequest { limit, after } = PageRequest::<String>::new(p.limit, p.cursor.as_deref())?;
    let mut v = Validator::new();
    v.opt_text("path_prefix", p.path_prefix.as_deref(), 1, path::MAX_CHARS);
    v.opt_text("mime_type", p.mime_type.as_deref(), 1, 255);
    v.finish()?;
    let rows = crate::db_read!(state.db, |c| async {
        let Some(project) = find_project(c, &principal, id, false).await? else { return Ok(None) };
        let filter = FileFilter {
            project_id: project.project_id,
            path_prefix: p.path_prefix.as_deref(),
            mime_type: p.mime_type.as_deref(),
            after: after.as_deref(),
            limit,
        };
        queries::list_files(c, &filter).await.map(Some)
    })?
    .ok_or(ApiError::NotFound("project"))?;
    Ok(Json(Page::from_rows(rows, limit, |f| f.file_path.clone())))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordFile {
    /// Relative, `/`-separated, at most 1024 characters; no `..`, `.` or
    /// empty segment, no leading `/`, no backslash, no NUL.
    #[schema(example = "src/main.rs")]
    pub file_path: String,
    /// Default: the path's last segment.
    pub file_name: Option<String>,
    /// Bytes, 0 or more.
    pub file_size: Option<i64>,
    #[schema(example = "text/x-rust")]
    pub mime_type: Option<String>,
    /// A container of this project that produced it.
    pub container_id: Option<Uuid>,
}

/// Record a file. If the path already has a live record, it is replaced: the
/// old record is marked deleted and the new one answered with 200 (201 when
/// the path is new).
#[utoipa::path(
    post, path = "/api/projects/{id}/files", tag = "files", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Project id"), IdempotencyKey),
    request_body = RecordFile,
    responses(
        (status = 201, description = "Recorded at a new path", body = FileRecord, headers(("Location" = String, description = "The new file record: /api/files/{id}"))),
        (status = 200, description = "Replaced the record at this path", body = FileRecord),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid path or fields; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn record_file(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Json(req): Json<RecordFile>,
) -> ApiResult<Response> {
    let mut v = Validator::new();
    if let Some(problem) = path::problem(&req.file_path) {
        v.error("file_path", problem);
    }
    if let Some(name) = &req.file_name {
        v.text("file_name", name, 1, 255);
        v.check(!name.contains('/') && !name.contains('\\'), "file_name", "must not contain / or \\");
    }
    if let Some(size) = req.file_size {
        v.check(size >= 0, "file_size", "must be 0 or more bytes");
    }
    if let Some(mime) = &req.mime_type {
        v.check(mime_ok(mime), "mime_type", "must be a media type such as text/plain, at most 255 characters");
    }
    v.finish()?;
    let file_name = match &req.file_name {
        Some(name) => name.trim(),
        None => path::file_name(&req.file_path),
    };
    if file_name.chars().count() > 255 {
        return Err(ApiError::invalid("file_name", "the path's last segment is longer than 255 characters"));
    }

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let project = project_for(&tx, &principal, id, false).await?;
    if let Some(container_id) = req.container_id
        && !belongs_to_project(&tx, container_id, project.project_id).await?
    {
        return Err(ApiError::invalid("container_id", "no such container in this project"));
    }
    queries::lock_path(&tx, project.project_id, &req.file_path).await?;
    let replaced = queries::retire_path(&tx, project.project_id, &req.file_path).await?;
    let file = queries::insert_file(
        &tx,
        &NewFile {
            project_id: project.project_id,
            container_id: req.container_id,
            file_path: &req.file_path,
            file_name,
            file_size: req.file_size,
            mime_type: req.mime_type.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(if replaced.is_some() {
        Json(file).into_response()
    } else {
        Created::at(format!("/api/files/{}", file.id), file).into_response()
    })
}

/// One live file record.
#[utoipa::path(
    get, path = "/api/files/{id}", tag = "files", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "File record id")),
    responses(
        (status = 200, body = FileRecord),
        (status = 404, description = "No such live file of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_file(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<FileRecord>> {
    let found = crate::db_read!(state.db, |c| queries::get_file(c, id, false))?;
    principal.visibility().filter(found).map(Json).ok_or(ApiError::NotFound("file"))
}

/// Delete a file record (marks it deleted; retention removes it later).
#[utoipa::path(
    delete, path = "/api/files/{id}", tag = "files", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "File record id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such live file of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_file(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    principal.visibility().filter(queries::get_file(&tx, id, true).await?).ok_or(ApiError::NotFound("file"))?;
    queries::delete_file(&tx, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
