//! Administration over HTTP: runtime settings, the audit trail, recent
//! activity, system statistics and the periodic jobs' shared schedule.
//! Every route takes [`AdminPrincipal`]: anonymous callers get 401,
//! everyone else who is not an admin 403.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{AuditAction, AuditEntry, ConfigEntry, JobList, JobStatus, SystemStats};
use super::queries::{self, AuditFilter};
use super::settings;
use crate::accounts::AdminPrincipal;
use crate::accounts::activity::{self, ActivityAction, ActivityEntry, ActivityFilter};
use crate::http::error::Problem;
use crate::http::json_schema::AnyJsonButNull;
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
        .routes(routes!(list_activity_logs))
        .routes(routes!(stats))
        .routes(routes!(list_jobs))
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
    /// The new value: any JSON but `null`, at most 64 KiB serialized. The
    /// settings devx knows take one kind of value (another is a 422):
    /// retention periods (`retention.*`, and `retention.interval`) are
    /// positive PostgreSQL intervals as strings (`"6 months"`),
    /// `retention.batch_size` an integer from 1 to 100000,
    /// `retention.partitions_ahead` from 0 to 366,
    /// `retention.partition_interval.<table>` (`audit_logs`, `execution_logs`,
    /// `deployment_log_lines`, `activity_logs`, `error_logs`) one of "month", "day",
    /// `retention.enabled` a boolean, `agents.max_concurrent_executions` an
    /// integer from 1 to 10000, `agents.max_concurrent_executions_per_project`
    /// from 1 to 10000, `agents.max_concurrent_executions_per_agent_type` an
    /// object from agent types to integers from 1 to 10000,
    /// `agents.execution_timeout_seconds` from 1 to 31536000,
    /// `agents.lease_seconds` from 1 to 3600, `agents.max_attempts` from 1 to
    /// 100, `agents.retry_backoff_base_seconds` from 0 to 86400,
    /// `agents.retry_backoff_max_seconds` from 0 to 604800,
    /// `agents.reaper_interval_seconds` from 1 to 3600, `agents.max_log_bytes`
    /// from 1024 to 1073741824, `deploy.max_concurrent_builds` from 1 to
    /// 10000, `deploy.max_concurrent_builds_per_project` from 1 to 10000,
    /// `deploy.max_log_bytes` from 1024 to 1073741824,
    /// `deploy.previews_per_service` from 1 to 1000,
    /// `deploy.preview_ttl_hours` from 1 to 8760,
    /// `deploy.keep_snapshots` from 1 to 10000,
    /// `errors.max_recovery_attempts` from 0 to 100.
    #[schema(value_type = AnyJsonButNull, example = json!("6 months"))]
    pub value: Value,
    /// Replaces the description. Creating a setting devx does not know needs
    /// one: without it, that is a 409.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
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
    params(("key" = String, Path, max_length = 200, pattern = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$",
        description = "Setting key: dot-separated words of lowercase letters, digits and underscores, e.g. \
        retention.chat_messages. In the `retention.` namespace only the settings devx knows exist."), IfMatch),
    request_body = PutConfigRequest,
    responses(
        (status = 200, description = "Updated", body = ConfigEntry, headers(("ETag" = String, description = "The setting's version after the change"))),
        (status = 201, description = "Created", body = ConfigEntry, headers(("Location" = String, description = "The new setting: /api/admin/config/{key}"), ("ETag" = String, description = "The setting's version"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The setting does not exist yet and no `description` was given to create it", body = Problem, content_type = "application/problem+json"),
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
        // Fine once the setting exists: what is missing depends on the state.
        return Err(ApiError::conflict(
            "description",
            "a description is required to create a setting devx does not know",
        ));
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
    #[param(max_length = 200, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub entity_type: Option<String>,
    /// The row's key (a UUID, or a setting's key).
    #[param(max_length = 200, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub entity_id: Option<String>,
    /// Exactly, e.g. `user:<id>`, `system:retention` (changes made with an
    /// API key carry `user:<id> apikey:<id>`, with an agent's key
    /// `agent:<type> user:<id> apikey:<id>`).
    #[param(max_length = 200, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub actor: Option<String>,
    #[param(inline)]
    pub action: Option<AuditAction>,
    /// Changes at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Changes before this time (RFC 3339); at or before `since`, the page
    /// is empty.
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityLogParams {
    /// The account concerned.
    pub user_id: Option<Uuid>,
    #[param(inline)]
    pub action: Option<ActivityAction>,
    /// Events at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The activity log: application events that change no row, so the audit
/// trail cannot show them (sign-ins, sign-outs, failed sign-ins, lockouts,
/// an API key's first use, generations started), newest first (admin).
#[utoipa::path(
    get, path = "/api/admin/activity-logs", tag = "admin", security(("bearer" = ["admin"])),
    params(ActivityLogParams),
    responses(
        (status = 200, body = Page<ActivityEntry>),
        (status = 400, description = "Bad limit, cursor or filter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_activity_logs(
    State(state): State<AppState>,
    _admin: AdminPrincipal,
    Query(params): Query<ActivityLogParams>,
) -> ApiResult<Json<Page<ActivityEntry>>> {
    let PageRequest { limit, after } = PageRequest::new(params.limit, params.cursor.as_deref())?;
    let filter = ActivityFilter { user_id: params.user_id, action: params.action, since: params.since, after, limit };
    let rows = crate::db_read!(state.db, |c| activity::list(c, &filter))?;
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

/// The periodic jobs `devx serve` runs once per period across every process
/// (retention, the agents' reaper).
const JOBS: &[crate::jobs::Job] = &[crate::agents::reaper::JOB, retention::JOB];

/// The periodic jobs and their shared schedule: each job's interval, how
/// many periods were run across every devx process, and the last run: when,
/// by which process (`hostname:pid`), how it ended (admin).
#[utoipa::path(
    get, path = "/api/admin/jobs", tag = "admin", security(("bearer" = ["admin"])),
    responses(
        (status = 200, body = JobList),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_jobs(State(state): State<AppState>, _admin: AdminPrincipal) -> ApiResult<Json<JobList>> {
    let mut rows = crate::db_read!(state.db, |c| crate::jobs::queries::list(c))?;
    let mut jobs = Vec::with_capacity(JOBS.len() + rows.len());
    for job in JOBS {
        let interval = (job.schedule)(&state.db).await?;
        let row = rows.iter().position(|r| r.job == job.name).map(|at| rows.remove(at));
        jobs.push(job_status(job.name, interval, row));
    }
    // Rows of jobs this version does not run (a newer or older devx's).
    jobs.extend(rows.into_iter().map(|row| job_status(&row.job.clone(), None, Some(row))));
    jobs.sort_by(|a, b| a.job.cmp(&b.job));
    Ok(Json(JobList { jobs }))
}

fn job_status(
    name: &str,
    interval: Option<std::time::Duration>,
    row: Option<crate::jobs::queries::JobRow>,
) -> JobStatus {
    let row = row.unwrap_or_else(|| crate::jobs::queries::JobRow {
        job: name.to_string(),
        interval_seconds: None,
        runs: 0,
        last_started_at: None,
        last_finished_at: None,
        last_process: None,
        last_error: None,
    });
    let next_due_at = match (row.last_started_at, interval) {
        (Some(at), Some(every)) => {
            chrono::Duration::from_std(every).ok().and_then(|every| at.checked_add_signed(every))
        }
        _ => None,
    };
    JobStatus {
        job: name.to_string(),
        enabled: interval.is_some(),
        interval_seconds: interval.map(|i| i.as_secs_f64()),
        runs: row.runs,
        last_started_at: row.last_started_at,
        last_finished_at: row.last_finished_at,
        last_process: row.last_process,
        last_error: row.last_error,
        next_due_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::json_schema::testing::{assert_agree, strings};

    /// The rule a known setting's value follows depends on the key in the
    /// path, which a schema cannot say: the value's description says it.
    #[test]
    fn the_value_description_names_every_known_setting() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(PutConfigRequest::schema()).unwrap();
        let description = schema.pointer("/properties/value/description").and_then(Value::as_str).unwrap();
        let description = description.replace('\n', " ");
        for setting in settings::KNOWN {
            match setting.kind {
                settings::Kind::Period => assert!(setting.key.starts_with("retention."), "{}", setting.key),
                settings::Kind::Integer { min, max } => {
                    let said = format!("`{}` ", setting.key);
                    let range = format!("{min} to {max}");
                    let at = description.find(&said).unwrap_or_else(|| panic!("{} is not described", setting.key));
                    assert!(description[at..].contains(&range), "{}: {range}", setting.key);
                }
                settings::Kind::Bool => assert!(description.contains(&format!("`{}` a boolean", setting.key))),
                settings::Kind::AgentTypeLimits { max } => {
                    let said = format!("`{}` an object from agent types to integers from 1 to {max}", setting.key);
                    assert!(description.contains(&said), "{}", setting.key);
                }
                settings::Kind::OneOf(choices) => {
                    let table = setting.key.strip_prefix("retention.partition_interval.").unwrap();
                    assert!(description.contains(&format!("`{table}`")), "{}", setting.key);
                    let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
                    assert!(description.contains(&format!("one of {}", quoted.join(", "))), "{}", setting.key);
                }
            }
        }
    }

    #[test]
    fn the_key_pattern_is_the_rule() {
        let doc = serde_json::to_value(routes().into_openapi()).unwrap();
        let pointer = "/paths/~1api~1admin~1config~1{key}/put/parameters/0/schema/pattern";
        let pattern = regex::Regex::new(doc.pointer(pointer).and_then(Value::as_str).unwrap()).unwrap();
        let well_formed = |key: &str| {
            let mut v = Validator::new();
            settings::check_key(&mut v, key);
            v.finish().is_ok()
        };
        // Outside the closed `retention.` namespace, which the description states.
        let random = strings("az09_.A-", 5000, 6);
        let samples = ["ui.theme", "a", "a..b", ".a", "a.", "Bad.Key", "retention.chat_messages"].into_iter();
        assert_agree(&pattern, well_formed, samples.chain(random.iter().map(String::as_str)));
    }
}
