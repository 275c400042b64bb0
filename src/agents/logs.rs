//! Execution logs over HTTP: append a batch of lines, tail them in order,
//! or follow them live as Server-Sent Events.
//!
//! An append costs the same whatever the log's length (see
//! `queries::logs`): one update reserves the seqs, one insert writes the
//! batch. Batches of one execution commit in seq order, so a reader that has
//! seen seq n has seen every line before it: `after=n` never skips a line
//! that commits later.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::executions::visible_execution;
use super::model::{AppendedLogs, ExecutionStatus, LogLevel, LogLine};
use super::queries::logs::{self as q, NewLines};
use super::settings::AgentSettings;
use crate::accounts::Principal;
use crate::db::DbError;
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::logs::{self, LogFeed, Progress, StreamParams, TailParams};
use crate::http::pagination::Page;
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, Json, Path, Query};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(tail_logs, append_logs)).routes(routes!(stream_logs))
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
/// contiguous and in order. Appending renews a running execution's lease.
/// An execution's messages may take `agents.max_log_bytes` (16 MiB) in
/// all: a batch that would pass it is refused with a 413.
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
        (status = 413, description = "Body too large; or the execution's log would pass agents.max_log_bytes (the detail names the cap; the log is marked log_truncated and its last line says so)", body = Problem, content_type = "application/problem+json"),
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

    let bytes: i64 = messages.iter().map(|m| m.len() as i64).sum();

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let cap = AgentSettings::load(&tx).await?.max_log_bytes;
    let owner = principal.visibility().owner();
    let Some(last_seq) = q::reserve_seqs(&tx, id, owner, count, bytes, Some(cap)).await? else {
        // Missing, or past the cap: the first time, one line says so.
        visible_execution(&tx, &principal, id).await?.ok_or(ApiError::NotFound("execution"))?;
        if let Some(seq) = q::mark_truncated(&tx, id).await? {
            let message = format!(
                "log truncated: appending {count} more lines ({bytes} bytes) would pass agents.max_log_bytes \
                 ({cap} bytes); later lines are refused"
            );
            let line = NewLines { seqs: &[seq], levels: &["warn"], messages: &[message.as_str()], times: &[None] };
            q::insert_lines(&tx, id, &line).await?;
            tx.commit().await?;
        }
        return Err(ApiError::OverCap(format!(
            "the execution's log is at its cap of {cap} bytes (agents.max_log_bytes): {bytes} more bytes are \
             refused, and the log is marked log_truncated"
        )));
    };
    let first_seq = last_seq - count + 1;
    let seqs: Vec<i64> = (first_seq..=last_seq).collect();
    q::insert_lines(&tx, id, &NewLines { seqs: &seqs, levels: &levels, messages: &messages, times: &times }).await?;
    tx.commit().await?;
    // The tail from just before the batch starts with its first line.
    let location = format!("/api/executions/{id}/logs?after={}", first_seq - 1);
    Ok(Created::at(location, AppendedLogs { first_seq, last_seq, count }))
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
    let (limit, after) = logs::tail_after(&p)?;
    let lines = crate::db_read!(state.db, |c| async {
        match visible_execution(c, &principal, id).await? {
            Some(_) => q::tail(c, id, after, limit + 1).await.map(Some),
            None => Ok::<_, DbError>(None),
        }
    })?
    .ok_or(ApiError::NotFound("execution"))?;
    Ok(Json(logs::tail_page(lines, limit)))
}

/// The channel an append or the end of an execution notifies, with its id.
pub const LOGS_CHANNEL: &str = "devx_logs";
/// Follow an execution's log live, as Server-Sent Events.
///
/// One event per line, `id:` its seq and `data:` the line as JSON
/// (`{seq, level, message, time}`), in seq order from after `after` (or
/// the `Last-Event-ID` a reconnecting client sends, so a reconnect neither
/// skips nor repeats a line); a comment every 15 s keeps idle connections
/// open; when the execution has finished and every line so far has been
/// sent, a last `event: end` whose data is its status, and the stream ends.
/// The stream subscribes to the append notifications first, then reads the
/// table, then reads again on each notification (and every few seconds
/// anyway), so no line is missed.
#[utoipa::path(
    get, path = "/api/executions/{id}/logs/stream", tag = "executions", security(("bearer" = ["read"])),
    params(
        ("id" = Uuid, Path, description = "Execution id"),
        StreamParams,
        ("Last-Event-ID" = Option<i64>, Header, description = "The seq of the last line received, to resume after it"),
    ),
    responses(
        (status = 200, description = "The event stream: each event's data is a JSON line object (`id:` its seq), the last `event: end`", content_type = "text/event-stream", body = crate::http::json_schema::AnyJson),
        (status = 400, description = "The id is not a UUID, or after / Last-Event-ID is not a seq", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such execution of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn stream_logs(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    query: Result<Query<StreamParams>, ApiError>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Subscribe first, then read: a line that commits after the read is
    // announced. Someone else's execution is a 404 whatever the query says.
    let wakeups = state.db.subscribe(LOGS_CHANNEL).await;
    crate::db_read!(state.db, |c| visible_execution(c, &principal, id))?.ok_or(ApiError::NotFound("execution"))?;
    let Query(p) = query?;
    let after = logs::stream_after(&p, &headers)?;
    Ok(logs::stream(state, ExecutionFeed(id), id.to_string(), after, wakeups))
}

/// An execution's log, for a stream.
struct ExecutionFeed(Uuid);

impl LogFeed for ExecutionFeed {
    type Line = LogLine;

    async fn read(&self, state: &AppState, after: i64, limit: i64) -> Result<Option<Progress<LogLine>>, DbError> {
        let client = state.db.client().await?;
        let Some((status, last_seq)) = q::progress(&client, self.0).await? else { return Ok(None) };
        let lines = q::tail(&client, self.0, after, limit).await?;
        let finished = (!matches!(status, ExecutionStatus::Pending | ExecutionStatus::Running))
            .then(|| status.as_str().to_string());
        Ok(Some(Progress { lines, finished, last_seq }))
    }
}
