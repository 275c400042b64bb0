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
use super::queries::{self, FileFilter, NewFile};
use crate::accounts::{Bearer, Principal};
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, Json, Path, Query};
use crate::projects::access::{find_project, project_for};
use crate::projects::path::{self, FilePath};
use crate::runtime::containers::queries::belongs_to_project;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_files, record_file)).routes(routes!(get_file, delete_file))
}

/// A file's name: 1 to 255 characters once trimmed, no `/` or `\\`.
fn check_file_name(v: &mut Validator, name: &str) {
    v.text("file_name", name, 1, 255);
    v.check(!name.contains('/') && !name.contains('\\'), "file_name", "must not contain / or \\");
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
    #[param(max_length = 1024, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub path_prefix: Option<String>,
    #[param(max_length = 255, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
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
    /// Where the file is in the project, e.g. `src/main.rs`.
    #[schema(value_type = FilePath)]
    pub file_path: String,
    /// 1 to 255 characters without `/` or `\`; default: the path's last
    /// segment.
    #[schema(
        max_length = 255,
        pattern = r"^[^/\\]*[^/\\\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^/\\]*$"
    )]
    pub file_name: Option<String>,
    /// Bytes.
    #[serde(default, deserialize_with = "crate::http::extract::opt_whole")]
    #[schema(minimum = 0)]
    pub file_size: Option<i64>,
    /// `type/subtype`, printable ASCII, at most 255 characters.
    #[schema(example = "text/x-rust", max_length = 255, pattern = r"^[\x20-\x2e\x30-\x7e]+/[\x20-\x7e]+$")]
    pub mime_type: Option<String>,
    /// A container of this project that produced it (another is a 404).
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
        check_file_name(&mut v, name);
    }
    if let Some(size) = req.file_size {
        v.check(size >= 0, "file_size", "must be 0 or more bytes");
    }
    if let Some(mime) = &req.mime_type {
        v.check(mime_ok(mime), "mime_type", "must be a media type such as text/plain, at most 255 characters");
    }
    v.finish()?;
    // A path's segments are at most as long as a file name may be.
    let file_name = match &req.file_name {
        Some(name) => name.trim(),
        None => path::file_name(&req.file_path),
    };

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let project = project_for(&tx, &principal, id, false).await?;
    if let Some(container_id) = req.container_id
        && !belongs_to_project(&tx, container_id, project.project_id).await?
    {
        return Err(ApiError::no_such("container_id", "no such container in this project"));
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
async fn get_file(State(state): State<AppState>, bearer: Bearer, Path(id): Path<Uuid>) -> ApiResult<Json<FileRecord>> {
    let (principal, found) = crate::db_read_as!(state, bearer, |c| queries::get_file(c, id, false))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::json_schema::testing::{assert_agree, pattern_of, strings};

    #[test]
    fn the_file_name_pattern_is_the_rule() {
        let pattern = pattern_of::<RecordFile>("/properties/file_name/pattern");
        let accepted = |name: &str| {
            let mut v = Validator::new();
            check_file_name(&mut v, name);
            v.finish().is_ok()
        };
        let random = strings("a/\\ .\u{85}\u{feff}", 5000, 8);
        let samples = ["main.rs", " main.rs ", "", " ", "a/b", "a\\b", "\u{85}"].into_iter();
        assert_agree(&pattern, accepted, samples.chain(random.iter().map(String::as_str)));
    }

    #[test]
    fn the_mime_type_pattern_is_the_rule() {
        let pattern = pattern_of::<RecordFile>("/properties/mime_type/pattern");
        let random = strings("t/x+ -é\u{7f}", 5000, 8);
        let samples = ["text/plain", "text/", "/plain", "text", "a/b/c", "a b/c d", "té/x"].into_iter();
        assert_agree(&pattern, mime_ok, samples.chain(random.iter().map(String::as_str)));
    }
}
