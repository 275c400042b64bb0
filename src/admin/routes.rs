//! Administration over HTTP: runtime settings, the audit trail, recent
//! activity and system statistics. Every route takes [`AdminPrincipal`]:
//! anonymous callers get 401, everyone else who is not an admin 403.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{AuditAction, AuditEntry, ConfigEntry, SystemStats};
use super::queries::{self, AuditFilter};
use super::settings;
use crate::accounts::AdminPrincipal;
use crate::http::error::Problem;
use crate::http::pagination::{self, Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, IfMatch, Json, Path, Query, Tagged, Versioned};
use crate::retention;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_config))
        .routes(routes!(get_config, put_config))
        .routes(routes!(list_audit))
        .routes(routes!(recent_activity))
        .routes(routes!(stats))
}

/// Every setting, in key order (admin).
#[utoipa::path(
    get, path = "/api/admin/config", tag = "admin", security(("bearer" = ["admin"])),
    params(pagination::PageParams),
    responses(
        (status = 200, body = Page<ConfigEntry>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_config(
    State(state): State<AppState>,
    _admin: AdminPrincipal,
    Query(params): Query<pagination::PageParams>,
) -> ApiResult<Json<Page<ConfigEntry>>> {
    let PageRequest { limit, after } = PageRequest::<String>::new(params.limit, params.cursor.as_deref())?;
    let rows = crate::db_read!(state.db, |c| queries::list_config(c, after.as_deref(), limit))?;
    Ok(Json(Page::from_rows(rows, limit, |e| e.key.clone())))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutConfigRequest {
    /// The new value. Known settings are checked: retention periods
    /// (`retention.*`, and `retention.interval`) are positive PostgreSQL
    /// intervals as strings (`"6 months"`), `retention.batch_size` an integer
    /// from 1 to 100000, `retention.enabled` a boolean.
    #[schema(value_type = Object, example = json!("6 months"))]
    pub value: Value,
    /// Replaces the description; required to create a setting devx does not know.
    pub description: Option<String>,
}

/// One setting (admin).
#[utoipa::path(
    get, path = "/api/admin/config/{key}", tag = "admin", security(("bearer" = ["admin"])),
    params(("key" = String, Path, description = "Setting key, e.g. retention.chat_messages")),
    responses(
        (status = 200, body = ConfigEntry, headers(("ETag" = String, description = "The setting's version, for If-Match"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such setting", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_config(
    State(state): State<AppState>,
    _admin: AdminPrincipal,
    Path(key): Path<String>,
) -> ApiResult<Tagged<ConfigEntry>> {
    let entry = crate::db_read!(state.db, |c| queries::get_config(c, &key, false))?;
    entry.map(Tagged).ok_or(ApiError::NotFound("setting"))
}

/// Set a setting, creating it if needed (admin). The change is audited.
#[utoipa::path(
    put, path = "/api/admin/config/{key}", tag = "admin", security(("bearer" = ["admin"])),
    params(("key" = String, Path, description = "Setting key, e.g. retention.chat_messages"), IfMatch),
    request_body = PutConfigRequest,
    responses(
        (status = 200, description = "Updated", body = ConfigEntry, headers(("ETag" = String, description = "The setting's version after the change"))),
        (status = 201, description = "Created", body = ConfigEntry, headers(("Location" = String, description = "The new setting: /api/admin/config/{key}"), ("ETag" = String, description = "The setting's version"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the setting no longer has (or it does not exist); nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid key, value or description", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn put_config(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    Path(key): Path<String>,
    if_match: IfMatch,
    Json(req): Json<PutConfigRequest>,
) -> ApiResult<Response> {
    let mut v = Validator::new();
    settings::check_key(&mut v, &key);
    v.opt_text("description", req.description.as_deref(), 1, settings::DESCRIPTION_MAX_LEN);
    let period = settings::check_value(&mut v, &key, &req.value);
    let mut client = state.db.client().await?;
    if let Some(text) = period {
        // PostgreSQL reads the period exactly as retention will.
        match retention::queries::cutoff(&client, text).await? {
            Some((_, true)) => {}
            Some((_, false)) => v.error("value", "must be a positive period, e.g. \"6 months\""),
            None => v.error("value", "is not a PostgreSQL interval such as \"6 months\", \"90 days\" or \"1 year\""),
        }
    }
    v.finish()?;

    let known = settings::known(&key);
    let description = req.description.as_deref().map(str::trim);
    let tx = client.transaction_as(&admin.actor()).await?;
    if if_match.is_conditional() {
        let current = queries::get_config(&tx, &key, true).await?.ok_or_else(|| {
            ApiError::PreconditionFailed("the setting does not exist, so it has no version to match".into())
        })?;
        if_match.check("setting", &current.etag())?;
    }
    if known.is_none() && description.is_none() && !queries::config_exists(&tx, &key).await? {
        return Err(ApiError::invalid("description", "is required to create a setting devx does not know"));
    }
    let (entry, created) =
        queries::upsert_config(&tx, &key, &req.value, description, known.map(|k| k.description)).await?;
    tx.commit().await?;
    Ok(if created {
        Created::versioned(format!("/api/admin/config/{}", entry.key), entry).into_response()
    } else {
        Tagged(entry).into_response()
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// The table, schema-qualified, e.g. `devx.users`.
    pub entity_type: Option<String>,
    /// The row's key (a UUID, or a setting's key).
    pub entity_id: Option<String>,
    /// Exactly, e.g. `user:<id>`, `system:retention` (changes made with an
    /// API key carry `user:<id> apikey:<id>`).
    pub actor: Option<String>,
    #[param(inline)]
    pub action: Option<AuditAction>,
    /// Changes at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Changes before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The audit trail: every change to an audited table, with old and new
/// values and who made it, newest first (admin).
#[utoipa::path(
    get, path = "/api/admin/audit", tag = "admin", security(("bearer" = ["admin"])),
    params(AuditParams),
    responses(
        (status = 200, body = Page<AuditEntry>),
        (status = 400, description = "Bad limit, cursor or filter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_audit(
    State(state): State<AppState>,
    _admin: AdminPrincipal,
    Query(params): Query<AuditParams>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let PageRequest { limit, after } = PageRequest::new(params.limit, params.cursor.as_deref())?;
    let mut v = Validator::new();
    v.opt_text("entity_type", params.entity_type.as_deref(), 1, 200);
    v.opt_text("entity_id", params.entity_id.as_deref(), 1, 200);
    v.opt_text("actor", params.actor.as_deref(), 1, 200);
    if let (Some(since), Some(until)) = (params.since, params.until) {
        v.check(since < until, "until", "must be later than since");
    }
    v.finish()?;
    let filter = AuditFilter {
        entity_type: params.entity_type,
        entity_id: params.entity_id,
        actor: params.actor,
        action: params.action,
        since: params.since,
        until: params.until,
        after,
        limit,
    };
    let rows = crate::db_read!(state.db, |c| queries::list_audit(c, &filter))?;
    Ok(Json(Page::from_rows(rows, limit, |e| (e.created_at, e.id))))
}

/// The last 7 days of the audit trail (the `recent_activity` view), newest
/// first (admin).
#[utoipa::path(
    get, path = "/api/admin/activity", tag = "admin", security(("bearer" = ["admin"])),
    params(pagination::PageParams),
    responses(
        (status = 200, body = Page<AuditEntry>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn recent_activity(
    State(state): State<AppState>,
    _admin: AdminPrincipal,
    Query(params): Query<pagination::PageParams>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let PageRequest { limit, after } =
        PageRequest::<(DateTime<Utc>, i64)>::new(params.limit, params.cursor.as_deref())?;
    let rows = crate::db_read!(state.db, |c| queries::recent_activity(c, after, limit))?;
    Ok(Json(Page::from_rows(rows, limit, |e| (e.created_at, e.id))))
}

/// System statistics: users, projects, containers, deployments and tasks by
/// status, the database's size and its largest tables (admin).
#[utoipa::path(
    get, path = "/api/admin/stats", tag = "admin", security(("bearer" = ["admin"])),
    responses(
        (status = 200, body = SystemStats),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn stats(State(state): State<AppState>, _admin: AdminPrincipal) -> ApiResult<Json<SystemStats>> {
    Ok(Json(crate::db_read!(state.db, |c| queries::system_stats(c))?))
}
