//! Execution logs over HTTP: append a batch of lines, tail them in order.
//!
//! An append costs the same whatever the log's length (see
//! `queries::logs`): one update reserves the seqs, one insert writes the
//! batch. Batches of one execution commit in seq order, so a reader that has
//! seen seq n has seen every line before it: `after=n` never skips a line
//! that commits later.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::executions::visible_execution;
use super::model::{AppendedLogs, LogLevel, LogLine};
use super::queries::logs::{self as q, NewLines};
use crate::accounts::Principal;
use crate::db::DbError;
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::pagination::{self, Page};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, Json, Path, Query};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(tail_logs, append_logs))
}

/// Lines per append.
pub const MAX_BATCH: usize = 1000;
/// Characters per line.
pub const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLogLine {
    /// Default `info`.
    #[serde(default)]
    pub level: LogLevel,
    /// At most 65,536 characters.
    #[schema(max_length = 65_536)]
    pub message: String,
    /// When it was logged; default: when it is stored.
    pub time: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendLogs {
    /// 1 to 1000 lines, stored in this order.
    #[schema(min_items = 1, max_items = 1000)]
    pub lines: Vec<NewLogLine>,
}

/// Append a batch of log lines to an execution (any status: an agent may
/// flush its last lines after it finished). The lines get the next seqs,
/// contiguous and in order.
#[utoipa::path(
    post, path = "/api/executions/{id}/logs", tag = "executions", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Execution id"), IdempotencyKey),
    request_body = AppendLogs,
    responses(
        (status = 201, description = "Appended", body = AppendedLogs, headers(("Location" = String, description = "The appended lines: /api/executions/{id}/logs?after={first_seq - 1}"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No lines, too many, or invalid ones; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn append_logs(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Json(req): Json<AppendLogs>,
) -> ApiResult<Created<AppendedLogs>> {
    let mut v = Validator::new();
    v.check(
        (1..=MAX_BATCH).contains(&req.lines.len()),
        "lines",
        format!("send 1 to {MAX_BATCH} lines per request (got {})", req.lines.len()),
    );
    for (i, line) in req.lines.iter().enumerate() {
        v.text(&format!("lines[{i}].message"), &line.message, 0, MAX_MESSAGE);
    }
    v.finish()?;

    let count = req.lines.len() as i64;
    let levels: Vec<&str> = req.lines.iter().map(|l| l.level.as_str()).collect();
    let messages: Vec<&str> = req.lines.iter().map(|l| l.message.as_str()).collect();
    let times: Vec<Option<DateTime<Utc>>> = req.lines.iter().map(|l| l.time).collect();

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let last_seq = q::reserve_seqs(&tx, id, principal.visibility().owner(), count)
        .await?
        .ok_or(ApiError::NotFound("execution"))?;
    let first_seq = last_seq - count + 1;
    let seqs: Vec<i64> = (first_seq..=last_seq).collect();
    q::insert_lines(&tx, id, &NewLines { seqs: &seqs, levels: &levels, messages: &messages, times: &times }).await?;
    tx.commit().await?;
    // The tail from just before the batch starts with its first line.
    let location = format!("/api/executions/{id}/logs?after={}", first_seq - 1);
    Ok(Created::at(location, AppendedLogs { first_seq, last_seq, count }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TailParams {
    /// Lines with a seq greater than this (default 0: from the start); not
    /// with `cursor`.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// The same as `after`: the `next_cursor` of the previous page; not
    /// with `after`.
    pub cursor: Option<String>,
    /// Lines per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
}

/// An execution's log lines in seq order, from after `after`.
///
/// `next_cursor` is the seq of the last line returned when more lines exist
/// now; on the last page it is null, and a tailing client passes the seq of
/// the last line it has as `after` to poll for new ones.
#[utoipa::path(
    get, path = "/api/executions/{id}/logs", tag = "executions", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Execution id"), TailParams),
    responses(
        (status = 200, body = Page<LogLine>),
        (status = 400, description = "The id is not a UUID, bad after, cursor or limit", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn tail_logs(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Query(p): Query<TailParams>,
) -> ApiResult<Json<Page<LogLine>>> {
    let limit = pagination::limit(p.limit)?;
    let from_cursor = match p.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::BadRequest("cursor is not one from this list: pass `next_cursor` unchanged".into())
        })?),
    };
    let after = match (p.after, from_cursor) {
        (Some(_), Some(_)) => return Err(ApiError::BadRequest("give `after` or `cursor`, not both".into())),
        (Some(n), None) if n < 0 => return Err(ApiError::BadRequest(format!("after={n}: seqs start at 1"))),
        (a, c) => a.or(c).unwrap_or(0),
    };
    let mut lines = crate::db_read!(state.db, |c| async {
        match visible_execution(c, &principal, id).await? {
            Some(_) => q::tail(c, id, after, limit + 1).await.map(Some),
            None => Ok::<_, DbError>(None),
        }
    })?
    .ok_or(ApiError::NotFound("execution"))?;
    let more = lines.len() as i64 > limit;
    lines.truncate(limit as usize);
    let next_cursor = if more { lines.last().map(|l| l.seq.to_string()) } else { None };
    Ok(Json(Page { items: lines, next_cursor }))
}
