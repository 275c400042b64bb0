//! Previews over HTTP: a service's previews listed, and one closed by hand.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{Preview, PreviewStatus};
use super::queries;
use crate::accounts::Principal;
use crate::http::error::Problem;
use crate::http::pagination::{Page, PageRequest};
use crate::http::{ApiError, ApiResult, AppState, Json, Path, Query};
use crate::runtime::TimeKey;
use crate::runtime::deployments::queries::lock_build_slots;
use crate::runtime::services::queries::get_service;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_previews)).routes(routes!(close_preview))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PreviewListParams {
    pub status: Option<PreviewStatus>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A service's pull-request previews, newest first (live, expired and
/// closed; `status` filters).
#[utoipa::path(
    get, path = "/api/services/{id}/previews", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Service id"), PreviewListParams),
    responses(
        (status = 200, body = Page<Preview>),
        (status = 400, description = "Bad filter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_previews(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Query(p): Query<PreviewListParams>,
) -> ApiResult<Json<Page<Preview>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let status = p.status.map(PreviewStatus::as_str);
    let visibility = principal.visibility();
    let rows = crate::db_read!(state.db, |c| async {
        if visibility.filter(get_service(c, id, false).await?).is_none() {
            return Ok(None);
        }
        queries::list(c, id, status, after, limit).await.map(Some)
    })?
    .ok_or(ApiError::NotFound("service"))?;
    Ok(Json(Page::from_rows(rows, limit, |v| (v.created_at, v.id))))
}

/// Close a pull request's live preview: it becomes `closed` and its
/// deployment is cancelled (queued, building or deploying) or stopped
/// (running). 404 when the pull request has no live preview.
#[utoipa::path(
    delete, path = "/api/services/{id}/previews/{number}", tag = "runtime", security(("bearer" = ["write"])),
    params(
        ("id" = Uuid, Path, description = "Service id"),
        ("number" = i32, Path, minimum = 1, description = "Pull request number (a 32-bit integer; otherwise 400)"),
    ),
    responses(
        (status = 204, description = "Closed"),
        (status = 400, description = "The number is not a 32-bit integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service of yours, or the pull request has no live preview", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn close_preview(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, number)): Path<(Uuid, i32)>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    lock_build_slots(&tx).await?;
    principal.visibility().filter(get_service(&tx, id, false).await?).ok_or(ApiError::NotFound("service"))?;
    super::close(&tx, id, number).await?.ok_or(ApiError::NotFound("preview"))?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
