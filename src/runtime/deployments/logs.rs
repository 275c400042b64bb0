//! Deploy logs over HTTP: append a batch of lines, tail them in order, or
//! follow them live as Server-Sent Events, with the machinery execution
//! logs use (`http::logs`). Before a line is stored, every value of the
//! deployment's sealed environment variables, its database password and the
//! secret environment variables of its service and project (`runtime::env`),
//! of 4 characters or more, is replaced by `****`, so a secret never
//! reaches the table, a response or a stream.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{AppendedDeployLogs, DeployLogLine, LogStream, mask_secrets, normalize_secrets, secret_values};
use super::queries::{self, logs as q};
use super::routes::{CONNECTION_INFO, ENVIRONMENT_VARS, open};
use crate::accounts::Principal;
use crate::db::{DbError, Queryable};
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::logs::{self, LogFeed, Progress, StreamParams, TailParams};
use crate::http::pagination::Page;
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, Json, Path, Query};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(tail_deploy_logs, append_deploy_logs)).routes(routes!(stream_deploy_logs))
}

/// The channel an append or a deployment's status change notifies, with
/// its id.
pub const DEPLOY_LOGS_CHANNEL: &str = "devx_deploy_logs";
/// Lines per append.
pub const MAX_BATCH: usize = 1000;
/// Characters per line.
pub const MAX_TEXT: usize = 64 * 1024;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeployLogLine {
    /// Default `stdout`.
    #[serde(default)]
    pub stream: LogStream,
    /// At most 65,536 characters.
    #[schema(max_length = 65_536)]
    pub text: String,
    /// When it was logged; default: when it is stored.
    pub time: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendDeployLogs {
    /// 1 to 1000 lines, stored in this order.
    #[schema(min_items = 1, max_items = 1000)]
    pub lines: Vec<NewDeployLogLine>,
}

/// The deployment if the caller may see it (another user's is missing).
async fn visible_deployment(db: &impl Queryable, principal: &Principal, id: Uuid) -> Result<bool, DbError> {
    Ok(queries::get_deployment(db, id, false, false).await?.is_some_and(|r| principal.can_see(r.deployment.owner_id)))
}

/// Append a batch of lines to a deployment's log (any status: a builder may
/// flush its last lines after the deployment finished). The lines get the
/// next seqs, contiguous and in order. Every value of the deployment's
/// environment variables, its database password and the secret environment
/// variables of its service and project, of 4 characters or more, is
/// replaced by `****` before the line is stored (so the text stored may
/// differ from the text sent; the cap counts the stored text). A
/// deployment's log may hold `deploy.max_log_bytes` (16 MiB) of text: a
/// batch that would pass it is refused with a 413 and nothing is stored.
#[utoipa::path(
    post, path = "/api/deployments/{id}/logs", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Deployment id"), IdempotencyKey),
    request_body = AppendDeployLogs,
    responses(
        (status = 201, description = "Appended", body = AppendedDeployLogs, headers(("Location" = String, description = "The appended lines: /api/deployments/{id}/logs?after={first_seq - 1}"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such deployment of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large; or the deployment's log would pass deploy.max_log_bytes (the detail names the cap)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No lines, too many, or invalid ones; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "It has secrets and DEVX_SECRET_KEY is not set (or cannot open them): lines are not stored unmasked", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn append_deploy_logs(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Json(req): Json<AppendDeployLogs>,
) -> ApiResult<Created<AppendedDeployLogs>> {
    let mut v = Validator::new();
    v.check(
        (1..=MAX_BATCH).contains(&req.lines.len()),
        "lines",
        format!("send 1 to {MAX_BATCH} lines per request (got {})", req.lines.len()),
    );
    for (i, line) in req.lines.iter().enumerate() {
        v.text(&format!("lines[{i}].text"), &line.text, 0, MAX_TEXT);
    }
    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let row = queries::get_deployment(&tx, id, true, false)
        .await?
        .filter(|r| principal.can_see(r.deployment.owner_id))
        .ok_or(ApiError::NotFound("deployment"))?;
    let keys = state.config.secret_keys.as_ref();
    let env = open(keys, id, ENVIRONMENT_VARS, row.sealed_environment_vars.as_ref())?;
    let conn = open(keys, id, CONNECTION_INFO, row.sealed_connection_info.as_ref())?;
    let mut secrets = secret_values(env.as_ref(), conn.as_ref());
    let scoped =
        crate::runtime::env::secret_values(&tx, keys, row.deployment.project_id, row.deployment.service_id).await?;
    secrets = normalize_secrets(secrets.into_iter().chain(scoped).collect());
    let texts: Vec<String> = req.lines.iter().map(|l| mask_secrets(&l.text, &secrets)).collect();

    let count = req.lines.len() as i64;
    let bytes: i64 = texts.iter().map(|t| t.len() as i64).sum();
    let cap = q::max_log_bytes(&tx).await?;
    q::lock_log(&tx, id).await?;
    let (last_seq, bytes_before) = q::log_end(&tx, id).await?;
    if bytes_before + bytes > cap {
        return Err(ApiError::OverCap(format!(
            "the deployment's log holds {bytes_before} bytes and its cap is {cap} (deploy.max_log_bytes): \
             {bytes} more bytes are refused"
        )));
    }
    let first_seq = last_seq + 1;
    let streams: Vec<&str> = req.lines.iter().map(|l| l.stream.as_str()).collect();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let times: Vec<Option<DateTime<Utc>>> = req.lines.iter().map(|l| l.time).collect();
    let lines = q::NewDeployLines { streams: &streams, texts: &text_refs, times: &times };
    q::insert_lines(&tx, id, first_seq, bytes_before, &lines).await?;
    tx.commit().await?;
    let location = format!("/api/deployments/{id}/logs?after={last_seq}");
    Ok(Created::at(location, AppendedDeployLogs { first_seq, last_seq: last_seq + count, count }))
}

/// A deployment's log lines in seq order, from after `after`.
///
/// `next_cursor` is the seq of the last line returned when more lines exist
/// now; on the last page it is null, and a tailing client passes the seq of
/// the last line it has as `after` to poll for new ones.
#[utoipa::path(
    get, path = "/api/deployments/{id}/logs", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Deployment id"), TailParams),
    responses(
        (status = 200, body = Page<DeployLogLine>),
        (status = 400, description = "The id is not a UUID, bad after, cursor or limit", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such deployment of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn tail_deploy_logs(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Query(p): Query<TailParams>,
) -> ApiResult<Json<Page<DeployLogLine>>> {
    let (limit, after) = logs::tail_after(&p)?;
    let lines = crate::db_read!(state.db, |c| async {
        if visible_deployment(c, &principal, id).await? {
            q::tail(c, id, after, limit + 1).await.map(Some)
        } else {
            Ok::<_, DbError>(None)
        }
    })?
    .ok_or(ApiError::NotFound("deployment"))?;
    Ok(Json(logs::tail_page(lines, limit)))
}

/// Follow a deployment's log live, as Server-Sent Events.
///
/// One event per line, `id:` its seq and `data:` the line as JSON
/// (`{seq, stream, time, text}`), in seq order from after `after` (or the
/// `Last-Event-ID` a reconnecting client sends, so a reconnect neither
/// skips nor repeats a line); a comment every 15 s keeps idle connections
/// open; when the deployment is stopped, failed or cancelled and every line
/// so far has been sent, a last `event: end` whose data is its status, and
/// the stream ends.
#[utoipa::path(
    get, path = "/api/deployments/{id}/logs/stream", tag = "runtime", security(("bearer" = ["read"])),
    params(
        ("id" = Uuid, Path, description = "Deployment id"),
        StreamParams,
        ("Last-Event-ID" = Option<i64>, Header, description = "The seq of the last line received, to resume after it"),
    ),
    responses(
        (status = 200, description = "The event stream: each event's data is a JSON line object (`id:` its seq), the last `event: end`", content_type = "text/event-stream", body = crate::http::json_schema::AnyJson),
        (status = 400, description = "The id is not a UUID, or after / Last-Event-ID is not a seq", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such deployment of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn stream_deploy_logs(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    query: Result<Query<StreamParams>, ApiError>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Subscribe first, then read: a line that commits after the read is
    // announced. Someone else's deployment is a 404 whatever the query says.
    let wakeups = state.db.subscribe(DEPLOY_LOGS_CHANNEL).await;
    if !crate::db_read!(state.db, |c| visible_deployment(c, &principal, id))? {
        return Err(ApiError::NotFound("deployment"));
    }
    let Query(p) = query?;
    let after = logs::stream_after(&p, &headers)?;
    Ok(logs::stream(state, DeploymentFeed(id), id.to_string(), after, wakeups))
}

/// A deployment's log, for a stream.
struct DeploymentFeed(Uuid);

impl LogFeed for DeploymentFeed {
    type Line = DeployLogLine;

    async fn read(&self, state: &AppState, after: i64, limit: i64) -> Result<Option<Progress<DeployLogLine>>, DbError> {
        let client = state.db.client().await?;
        let Some((status, last_seq)) = q::progress(&client, self.0).await? else { return Ok(None) };
        let lines = q::tail(&client, self.0, after, limit).await?;
        let finished = status.is_final().then(|| status.as_str().to_string());
        Ok(Some(Progress { lines, finished, last_seq }))
    }
}
