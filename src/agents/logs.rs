//! Execution logs over HTTP: append a batch of lines, tail them in order,
//! or follow them live as Server-Sent Events.
//!
//! An append costs the same whatever the log's length (see
//! `queries::logs`): one update reserves the seqs, one insert writes the
//! batch. Batches of one execution commit in seq order, so a reader that has
//! seen seq n has seen every line before it: `after=n` never skips a line
//! that commits later.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::broadcast;
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
use crate::http::pagination::{self, Page};
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

/// The channel an append or the end of an execution notifies, with its id.
pub const LOGS_CHANNEL: &str = "devx_logs";
/// Lines read per query of a stream.
const STREAM_BATCH: i64 = 500;
/// How often a stream looks again without a notification (a missed one
/// costs at most this), and without notifications at all.
const STREAM_POLL: Duration = Duration::from_secs(5);
const STREAM_FALLBACK_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Start after this seq (default 0: from the first line); a
    /// `Last-Event-ID` header wins over it.
    #[param(minimum = 0)]
    pub after: Option<i64>,
}

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
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = String),
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
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(value) => {
            Some(value.to_str().ok().and_then(|v| v.trim().parse::<i64>().ok()).filter(|n| *n >= 0).ok_or_else(
                || ApiError::BadRequest("Last-Event-ID is not a seq: send the id of the last event received".into()),
            )?)
        }
    };
    if let Some(n) = p.after.filter(|n| *n < 0) {
        return Err(ApiError::BadRequest(format!("after={n}: seqs start at 1")));
    }
    let after = resume.or(p.after).unwrap_or(0);
    let follow = Follow {
        state,
        id,
        key: id.to_string(),
        last: after,
        pending: VecDeque::new(),
        wakeups,
        look_now: true,
        done: false,
    };
    let events = futures_util::stream::unfold(follow, next_event);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// A stream's place in the log.
struct Follow {
    state: AppState,
    id: Uuid,
    key: String,
    /// The seq of the last line sent.
    last: i64,
    pending: VecDeque<Out>,
    wakeups: Option<broadcast::Receiver<Arc<str>>>,
    /// Read before waiting (at the start, and after a full batch).
    look_now: bool,
    done: bool,
}

/// What a stream sends next.
enum Out {
    Line(LogLine),
    /// The execution finished (its status) and every line is sent.
    End(ExecutionStatus),
}

async fn next_event(mut f: Follow) -> Option<(Result<Event, Infallible>, Follow)> {
    loop {
        match f.pending.pop_front() {
            Some(Out::Line(line)) => {
                f.last = line.seq;
                let event = Event::default().id(line.seq.to_string()).json_data(&line).ok()?;
                return Some((Ok(event), f));
            }
            Some(Out::End(status)) => return Some((Ok(Event::default().event("end").data(status.as_str())), f)),
            None => {}
        }
        if f.done || f.state.is_draining() {
            return None;
        }
        if !f.look_now {
            let poll = if f.wakeups.is_some() { STREAM_POLL } else { STREAM_FALLBACK_POLL };
            wait_for(f.wakeups.as_mut(), &f.key, poll).await;
        }
        // The status and last seq first: once a finished execution's lines
        // up to that seq are sent, every line is (seqs commit in order).
        let (id, last) = (f.id, f.last);
        let read = async {
            let client = f.state.db.client().await?;
            let progress = q::progress(&client, id).await?;
            let lines = q::tail(&client, id, last, STREAM_BATCH).await?;
            Ok::<_, DbError>((progress, lines))
        };
        match read.await {
            Ok((None, _)) => return None,
            Ok((Some((status, last_seq)), lines)) => {
                f.look_now = lines.len() as i64 == STREAM_BATCH;
                let through = lines.last().map_or(f.last, |l| l.seq);
                f.pending.extend(lines.into_iter().map(Out::Line));
                let finished = !matches!(status, ExecutionStatus::Pending | ExecutionStatus::Running);
                if finished && through >= last_seq {
                    f.done = true;
                    f.pending.push_back(Out::End(status));
                }
            }
            Err(e) => {
                // The client reconnects with Last-Event-ID and loses nothing.
                tracing::warn!(error = %e, execution = %f.id, "a log stream could not read; ending it");
                return None;
            }
        }
    }
}

/// Waits for a notification about this execution, or `poll` at most.
async fn wait_for(wakeups: Option<&mut broadcast::Receiver<Arc<str>>>, key: &str, poll: Duration) {
    let nap = tokio::time::sleep(poll);
    tokio::pin!(nap);
    let Some(rx) = wakeups else { return nap.await };
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Ok(payload) if &*payload != key => {}
                // This execution, or notifications were lost (lagged): look.
                _ => return,
            },
            () = &mut nap => return,
        }
    }
}
