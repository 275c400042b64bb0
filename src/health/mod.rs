//! Liveness, readiness and status: `GET /health`, `/livez`, `/readyz`, the
//! admin's `GET /api/database/status` with pool numbers, migration state and
//! the instrumented layer's query statistics, the admin's
//! `GET /api/admin/insights` (`diagnostics::insights`), the admin's
//! `GET /api/admin/metrics/history` (this process's recent statistics, from
//! `metrics::history`), and `GET /metrics`
//! for Prometheus ([`scrape`]: behind `Authorization: Bearer
//! <DEVX_METRICS_TOKEN>` when that is set, compared in constant time; not in
//! the OpenAPI document, since it is for Prometheus, not API clients).
//!
//! Before the application is ready (`devx serve` waiting for its database,
//! or migrating) the server answers with [`starting`]: alive, not ready, and
//! why. The probes' responses are logged at debug ([`QuietLog`]): an
//! orchestrator polls them every few seconds.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::accounts::AdminPrincipal;
use crate::db::{PoolStatus, Queryable, StatsSnapshot};
use crate::diagnostics::insights;
use crate::diagnostics::introspect::{self, ServerInfo};
use crate::http::error::Problem;
use crate::http::middleware::QuietLog;
use crate::http::{ApiError, ApiResult, AppState, FieldError, Json, Query};
use crate::metrics;
use crate::migrate::{self, AppliedMigration};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(livez))
        .routes(routes!(readyz))
        .routes(routes!(database_status))
        .routes(routes!(database_migrations))
        .routes(routes!(insights))
        .routes(routes!(metrics_history))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DatabaseHealth {
    pub connected: bool,
    /// Round trip of `SELECT`, in milliseconds to the microsecond, when connected.
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `degraded` (database unreachable).
    pub status: &'static str,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub timestamp: DateTime<Utc>,
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub database: DatabaseHealth,
}

async fn probe(state: &AppState) -> Result<ServerInfo, String> {
    match state.probes.client().await {
        Ok(client) => introspect::server_info(&client).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Health with database connectivity: 200 when the database answers, 503 when not.
#[utoipa::path(
    get, path = "/health", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health, description = "Database unreachable"))
)]
async fn health(State(state): State<AppState>) -> (StatusCode, Extension<QuietLog>, Json<Health>) {
    let (code, status, database) = match probe(&state).await {
        Ok(info) => (
            StatusCode::OK,
            "ok",
            DatabaseHealth {
                connected: true,
                latency_ms: Some(whole_microseconds_in_ms(info.round_trip)),
                error: None,
            },
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "degraded",
            DatabaseHealth { connected: false, latency_ms: None, error: Some("database unreachable".into()) },
        ),
    };
    let body = Health {
        status,
        timestamp: Utc::now(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started_at.elapsed().as_secs(),
        database,
    };
    (code, Extension(QuietLog), Json(body))
}

/// Milliseconds to the microsecond: a clock reading finer than that is noise.
fn whole_microseconds_in_ms(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Probe {
    pub status: &'static str,
    /// Why not ready, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The process is up (no dependency checked).
#[utoipa::path(get, path = "/livez", tag = "health", responses((status = 200, body = Probe)))]
async fn livez() -> (Extension<QuietLog>, Json<Probe>) {
    (Extension(QuietLog), Json(Probe { status: "ok", reason: None }))
}

/// Ready for traffic: the database answers and no migration is pending.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses((status = 200, body = Probe), (status = 503, body = Probe, description = "Not ready, with the reason"))
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Extension<QuietLog>, Json<Probe>) {
    if state.is_draining() {
        return not_ready("shutting down: finishing in-flight requests".into());
    }
    if let Some(check) = state.metrics.last_health_check()
        && let Some(error) = check.error
    {
        let ago = check.at.elapsed().as_secs();
        return not_ready(format!("the periodic database health check failed {ago}s ago: {error}"));
    }
    let Ok(client) = state.probes.client().await else {
        return not_ready("database unreachable".into());
    };
    match migrate::pending_ids(&client).await {
        Ok(pending) if pending.is_empty() => {
            (StatusCode::OK, Extension(QuietLog), Json(Probe { status: "ok", reason: None }))
        }
        Ok(pending) => not_ready(format!("{} migration(s) pending: run `devx migrate up`", pending.len())),
        Err(_) => not_ready("could not read the migration ledger".into()),
    }
}

/// The periodic health check inside `serve` (`DB_HEALTH_CHECK_ENABLED`):
/// [`check_once`] every `interval`; a change between up and down is logged.
/// Per process by nature (it decides this process's `/readyz`), so every
/// `serve` process runs it, unlike the shared periodic jobs of `jobs`.
pub async fn periodic_check(state: AppState, interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_up = true;
    loop {
        tick.tick().await;
        let error = check_once(&state, interval).await;
        match (&error, was_up) {
            (Some(e), true) => tracing::warn!(error = %e, "the periodic database health check failed"),
            (None, false) => tracing::info!("the periodic database health check passes again"),
            _ => {}
        }
        was_up = error.is_none();
    }
}

/// One health check: a query through the probes' own connection, given at
/// most `limit`. The outcome feeds `/readyz` (503 while the last check
/// failed) and the `devx_database_health_check_*` metrics; returned too
/// (`None`: the database answered).
pub async fn check_once(state: &AppState, limit: std::time::Duration) -> Option<String> {
    let started = std::time::Instant::now();
    let check = async {
        let client = state.probes.client().await?;
        client.query_scalar::<i32>("SELECT 1", &[]).await
    };
    let error = match tokio::time::timeout(limit, check).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} ms", limit.as_millis())),
    };
    state.metrics.record_health_check(started.elapsed(), error.clone());
    error
}

fn not_ready(reason: String) -> (StatusCode, Extension<QuietLog>, Json<Probe>) {
    (StatusCode::SERVICE_UNAVAILABLE, Extension(QuietLog), Json(Probe { status: "not ready", reason: Some(reason) }))
}

/// What the server answers while it starts (before the database is there):
/// `/livez` 200; `/readyz` 503 with `reason()`; anything else a 503 problem
/// with the same reason and `Retry-After`.
pub fn starting(reason: impl Fn() -> String + Clone + Send + Sync + 'static) -> axum::Router {
    let ready_reason = reason.clone();
    axum::Router::new()
        .route("/livez", axum::routing::get(livez))
        .route("/readyz", axum::routing::get(move || async move { not_ready(format!("starting: {}", ready_reason())) }))
        .fallback(move || async move {
            let problem = Problem {
                kind: "/problems/starting".into(),
                title: "Service Unavailable".into(),
                status: 503,
                detail: format!("devx is not ready yet, retry shortly: {}", reason()),
                errors: Vec::new(),
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "application/problem+json"), (header::RETRY_AFTER, "1")],
                Json(problem),
            )
        })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MigrationCounts {
    pub applied: usize,
    pub pending: usize,
    /// Ids of pending migrations.
    pub pending_ids: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DatabaseStatus {
    pub server: ServerInfo,
    pub pool: PoolStatus,
    pub circuit_breaker_open: bool,
    pub migrations: MigrationCounts,
    /// From the instrumented query layer since this process started.
    pub queries: StatsSnapshot,
    /// Each read replica (`DATABASE_REPLICA_URLS`): whether it takes reads,
    /// its lag at the last probe, the reads it served. Empty without replicas.
    pub replicas: Vec<crate::db::replicas::ReplicaStatus>,
    /// Where this process's reads went since it started; null without replicas.
    pub reads: Option<crate::db::replicas::ReadCounts>,
}

/// Database details for operators (admin): server, pool, migrations, query
/// statistics, and each read replica with its lag and the reads it served.
#[utoipa::path(
    get, path = "/api/database/status", tag = "health", security(("bearer" = ["admin"])),
    responses(
        (status = 200, body = DatabaseStatus),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unreachable", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn database_status(State(state): State<AppState>, _admin: AdminPrincipal) -> ApiResult<Json<DatabaseStatus>> {
    let client = state.db.client().await?;
    let server = introspect::server_info(&client).await?;
    let (applied, pending) = migrate::ledger_counts(&client).await?;
    drop(client);
    Ok(Json(DatabaseStatus {
        server,
        pool: state.db.status(),
        circuit_breaker_open: state.db.breaker_open(),
        migrations: MigrationCounts { applied, pending: pending.len(), pending_ids: pending },
        queries: state.db.stats(),
        replicas: state.db.replicas().map(crate::db::replicas::ReplicaSet::status).unwrap_or_default(),
        reads: state.db.replicas().map(crate::db::replicas::ReplicaSet::counts),
    }))
}

/// One migration: of this binary, of the database, or both.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MigrationEntry {
    /// 14-digit timestamp id.
    pub id: String,
    pub name: String,
    pub state: migrate::EntryState,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub applied_at: Option<DateTime<Utc>>,
    /// The database role that applied it.
    pub applied_by: Option<String>,
    /// How long it ran; null when pending or stamped.
    pub execution_ms: Option<i64>,
    /// Recorded as applied without running (`devx migrate stamp`).
    pub stamped: bool,
    /// Runs outside a transaction (e.g. `CREATE INDEX CONCURRENTLY`).
    pub no_transaction: bool,
    /// What is wrong and what to do, for `modified` and `unknown`.
    pub problem: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MigrationsReport {
    pub applied: usize,
    pub pending: usize,
    /// Nothing pending and nothing wrong.
    pub up_to_date: bool,
    /// Every migration this devx has, in id order, then any applied one it
    /// does not have.
    pub migrations: Vec<MigrationEntry>,
}

/// Migration status and history (admin): each migration with its state and,
/// when applied, when, by whom and how long it took (`devx migrate status`).
#[utoipa::path(
    get, path = "/api/database/migrations", tag = "health", security(("bearer" = ["admin"])),
    responses(
        (status = 200, body = MigrationsReport),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unreachable", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn database_migrations(
    State(state): State<AppState>,
    _admin: AdminPrincipal,
) -> ApiResult<Json<MigrationsReport>> {
    let (set, status) = crate::db_read!(state.db, |c| migrate::embedded_status(c))?;
    Ok(Json(MigrationsReport::new(set, &status)))
}

impl MigrationsReport {
    /// `status` of `set`, as the API and `devx migrate status --json` give it.
    pub fn new(set: &migrate::MigrationSet, status: &migrate::Status) -> Self {
        let migrations = status
            .entries(set)
            .into_iter()
            .map(|e| MigrationEntry {
                id: e.id.to_string(),
                name: e.name.to_string(),
                state: e.state,
                applied_at: e.applied.map(|a| a.applied_at),
                applied_by: e.applied.map(|a| a.applied_by.clone()),
                execution_ms: e.applied.and_then(|a| a.execution_ms),
                stamped: e.applied.is_some_and(AppliedMigration::stamped),
                no_transaction: e.no_transaction,
                problem: e.problem.map(ToString::to_string),
            })
            .collect();
        MigrationsReport {
            applied: status.applied.len(),
            pending: status.pending.len(),
            up_to_date: status.is_clean(),
            migrations,
        }
    }
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InsightsParams {
    /// Report statements running (and transactions idle) longer than this
    /// many seconds, more than 0 and at most 86400; default
    /// `DB_LONG_QUERY_THRESHOLD`.
    #[param(exclusive_minimum = 0, maximum = 86400)]
    pub long_query_seconds: Option<f64>,
}

/// Database insights (admin): slow and frequent queries, unused and duplicate
/// indexes, sequential scans, estimated bloat, long-running and blocked
/// queries, connections, cache hit ratio, sequences near their limit; each
/// finding with what to do.
#[utoipa::path(
    get, path = "/api/admin/insights", tag = "health", security(("bearer" = ["admin"])),
    params(InsightsParams),
    responses(
        (status = 200, body = insights::Report),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unreachable", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn insights(
    State(state): State<AppState>,
    _admin: AdminPrincipal,
    Query(params): Query<InsightsParams>,
) -> ApiResult<Json<insights::Report>> {
    let long_query = match params.long_query_seconds {
        None => state.config.database.long_query_threshold,
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => std::time::Duration::from_secs_f64(s),
        Some(_) => return Err(ApiError::BadRequest("long_query_seconds must be more than 0 and at most 86400".into())),
    };
    let client = state.db.client().await?;
    let report = insights::report(&client, &insights::Thresholds::new(long_query)).await?;
    Ok(Json(report))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Only the samples taken after this time (RFC 3339 with its offset,
    /// e.g. `2026-12-05T08:00:00Z`); all of them without it. A reader that
    /// polls passes the time of the last sample it has.
    #[param(value_type = Option<String>, format = DateTime, max_length = 64)]
    pub since: Option<String>,
}

/// This process's recent request and database statistics.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricsHistory {
    /// The process the samples describe; its history starts when it started.
    pub instance: metrics::history::Instance,
    /// Seconds between samples (`DEVX_METRICS_SAMPLE_INTERVAL`).
    pub interval_seconds: f64,
    /// The most samples kept; the oldest go first.
    pub capacity: usize,
    /// Oldest first.
    pub samples: Vec<metrics::history::Sample>,
}

/// This process's request and database statistics over the last 24 hours
/// (admin): one sample every `DEVX_METRICS_SAMPLE_INTERVAL` (10 s), kept in
/// memory, oldest first, each with what happened since the previous one
/// (requests and statements per second, their mean latency, errors) and the
/// pool at that moment. Another replica has its own history; a restart
/// starts a new one (a new `instance.id`).
#[utoipa::path(
    get, path = "/api/admin/metrics/history", tag = "health", security(("bearer" = ["admin"])),
    params(HistoryParams),
    responses(
        (status = 200, body = MetricsHistory),
        (status = 400, description = "Unknown or empty query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`since` is not an RFC 3339 time", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn metrics_history(
    State(state): State<AppState>,
    _admin: AdminPrincipal,
    Query(params): Query<HistoryParams>,
) -> ApiResult<Json<MetricsHistory>> {
    let since = match params.since.as_deref().map(|raw| (raw, DateTime::parse_from_rfc3339(raw))) {
        None => None,
        Some((raw, _)) if raw.chars().count() > 64 => {
            return Err(ApiError::Invalid(vec![FieldError::new(
                "since",
                "at most 64 characters: an RFC 3339 time such as 2026-12-05T08:00:00Z",
            )]));
        }
        Some((_, Ok(t))) => Some(t.with_timezone(&Utc)),
        Some((raw, Err(e))) => {
            return Err(ApiError::Invalid(vec![FieldError::new(
                "since",
                format!(
                    "{raw:?} is not an RFC 3339 time ({e}); give one with its offset, such as \
                     2026-12-05T08:00:00Z or 2026-12-05T09:00:00+01:00"
                ),
            )]));
        }
    };
    let history = state.metrics.history();
    Ok(Json(MetricsHistory {
        instance: history.instance().clone(),
        interval_seconds: history.interval().as_secs_f64(),
        capacity: metrics::history::CAPACITY,
        samples: history.since(since),
    }))
}

/// `GET /metrics`: the text exposition format; behind a bearer token when
/// `DEVX_METRICS_TOKEN` is set.
pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.http.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        if !given.is_some_and(|given| token_matches(given, token.expose())) {
            return ApiError::Unauthorized(
                "/metrics needs `Authorization: Bearer <DEVX_METRICS_TOKEN>`; the token is missing or wrong".into(),
            )
            .into_response();
        }
    }
    let body = state.metrics.render(&state.probes).await;
    ([(header::CONTENT_TYPE, HeaderValue::from_static(prometheus::TEXT_FORMAT))], body).into_response()
}

/// Compares digests in constant time (hashing first hides the length too).
fn token_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.as_slice().ct_eq(b.as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_value() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("", "abc"));
    }
}
