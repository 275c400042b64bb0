//! Deployments over HTTP: create (queued, with its commit and who triggered
//! it), list, latest, get (the one place secrets are revealed), update with
//! the status machine enforced, cancel, redeploy, delete, the caller's
//! deployments by status, and a summary.
//!
//! Every write that takes or frees a build slot (create, redeploy, a status
//! change, cancel, delete) takes the build-slot lock first, then runs the
//! queue (`queries::promote_queued`) before it commits: a queued deployment
//! moves to `building` as soon as a slot is free, oldest first.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Schema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{
    Deployment, DeploymentDetail, DeploymentRow, DeploymentStatus, DeploymentSummary, DeploymentTrigger,
    NewDeploymentStatus, any_json,
};
use super::queries::{self, DeploymentChange, NewDeployment};
use super::snapshot::{self, SnapshotState};
use crate::accounts::Credential;
use crate::accounts::Principal;
use crate::config::SecretKeys;
use crate::db::Queryable;
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, IfMatch, Json, Path, Query, Tagged, Versioned};
use crate::projects::access::{find_project, project_for};
use crate::runtime::secrets::{self, Sealed};
use crate::runtime::{JSON_MAX_BYTES, TimeKey};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_project_deployments, create_deployment))
        .routes(routes!(latest_deployment))
        .routes(routes!(list_my_deployments))
        .routes(routes!(deployment_summary))
        .routes(routes!(get_deployment, update_deployment, delete_deployment))
        .routes(routes!(cancel_deployment))
        .routes(routes!(redeploy_deployment))
        .routes(routes!(rollback_deployment))
        .merge(super::logs::routes())
}

const TABLE: &str = "deployments";
pub(super) const CONNECTION_INFO: &str = "db_connection_info";
pub(super) const ENVIRONMENT_VARS: &str = "environment_vars";

fn seal(keys: Option<&SecretKeys>, id: Uuid, column: &str, value: &Value) -> ApiResult<Sealed> {
    Ok(secrets::seal_json(keys, &secrets::context(TABLE, column, id), value)?)
}

pub(super) fn open(
    keys: Option<&SecretKeys>,
    id: Uuid,
    column: &str,
    sealed: Option<&Sealed>,
) -> ApiResult<Option<Value>> {
    match sealed {
        None => Ok(None),
        Some(s) => Ok(Some(secrets::open_json(keys, &s.key_id, &secrets::context(TABLE, column, id), &s.bytes)?)),
    }
}

/// A value sealed for deployment `from`, sealed again for `to` (under the
/// first key).
fn reseal(
    keys: Option<&SecretKeys>,
    from: Uuid,
    to: Uuid,
    column: &str,
    sealed: Option<&Sealed>,
) -> ApiResult<Option<Sealed>> {
    open(keys, from, column, sealed)?.map(|value| seal(keys, to, column, &value)).transpose()
}

/// `manual` for a signed-in person, `api` for an API key.
fn trigger_of(principal: &Principal) -> DeploymentTrigger {
    match principal.credential {
        Credential::Session(_) => DeploymentTrigger::Manual,
        Credential::ApiKey { .. } => DeploymentTrigger::Api,
    }
}

/// Moves queued deployments to `building` while there are slots. The
/// caller holds [`queries::lock_build_slots`].
async fn run_queue(db: &impl Queryable) -> ApiResult<()> {
    let (global, per_project) = queries::build_limits(db).await?;
    queries::promote_queued(db, global, per_project).await?;
    Ok(())
}

/// Inserts a deployment (queued) with its configuration snapshot (a
/// service's deployment, when a key is set: `snapshot`) and runs the queue,
/// so it builds at once when a slot is free: the one way every caller (the
/// API, redeploys, webhooks, previews) creates a deployment. The caller
/// holds [`queries::lock_build_slots`] and commits.
pub(crate) async fn queue(
    db: &impl Queryable,
    keys: Option<&SecretKeys>,
    n: &NewDeployment<'_>,
) -> ApiResult<Deployment> {
    let snapshot = snapshot::take(db, keys, n).await?;
    queue_with(db, n, snapshot.as_ref()).await
}

/// [`queue`] with a given snapshot (a rollback's copy).
async fn queue_with(
    db: &impl Queryable,
    n: &NewDeployment<'_>,
    snapshot: Option<&queries::StoredSnapshot>,
) -> ApiResult<Deployment> {
    let row = queries::insert_deployment(db, n, snapshot).await?;
    run_queue(db).await?;
    reload(db, row.deployment.id).await
}

/// Ends a deployment that something replaced or closed (a pull request's
/// preview): cancelled if it has not gone live, stopped if it runs, left
/// alone when it is final already; its build slot goes to the next in the
/// queue. The caller holds [`queries::lock_build_slots`] and commits.
/// Whether it changed anything.
pub(crate) async fn end(db: &impl Queryable, id: Uuid) -> ApiResult<bool> {
    let Some(row) = queries::get_deployment(db, id, false, true).await? else { return Ok(false) };
    let to = match row.deployment.status {
        s if s.can_cancel() => DeploymentStatus::Cancelled,
        DeploymentStatus::Running => DeploymentStatus::Stopped,
        _ => return Ok(false),
    };
    let change = DeploymentChange { status: Some(to.as_str()), ..DeploymentChange::default() };
    queries::update_deployment(db, id, &change).await?;
    run_queue(db).await?;
    Ok(true)
}

/// A deployment the caller may see, as it is now in this transaction.
async fn reload(db: &impl Queryable, id: Uuid) -> ApiResult<Deployment> {
    Ok(queries::get_deployment(db, id, false, false).await?.ok_or(ApiError::NotFound("deployment"))?.deployment)
}

fn check_commit_sha(v: &mut Validator, sha: &str) {
    v.check(
        (7..=64).contains(&sha.len()) && sha.chars().all(|c| c.is_ascii_hexdigit()),
        "commit_sha",
        "must be 7 to 64 hexadecimal digits (a full or abbreviated git commit id)",
    );
}

fn page(rows: Vec<DeploymentRow>, limit: i64) -> Page<Deployment> {
    let rows: Vec<Deployment> = rows.into_iter().map(|r| r.deployment).collect();
    Page::from_rows(rows, limit, |d| (d.created_at, d.id))
}

fn check_text(v: &mut Validator, field: &str, value: &str, max: usize) {
    v.text(field, value, 1, max);
}

/// Any JSON but `null`, at most [`JSON_MAX_BYTES`], without NUL characters.
fn check_connection_info(v: &mut Validator, value: &Value) {
    match value {
        Value::Null => v.error(CONNECTION_INFO, "must not be null here; omit it instead"),
        Value::Object(_) => v.json_object(CONNECTION_INFO, value, JSON_MAX_BYTES),
        other => {
            let text = other.to_string();
            v.check(!text.contains("\\u0000"), CONNECTION_INFO, "must not contain NUL characters");
            v.check(text.len() <= JSON_MAX_BYTES, CONNECTION_INFO, format!("must be at most {JSON_MAX_BYTES} bytes"));
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeploymentListParams {
    pub status: Option<DeploymentStatus>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A project's deployments, newest first; secrets masked
/// (`getDeploymentsByProjectId`).
#[utoipa::path(
    get, path = "/api/projects/{id}/deployments", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Project id"), DeploymentListParams),
    responses(
        (status = 200, body = Page<Deployment>),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_project_deployments(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Query(p): Query<DeploymentListParams>,
) -> ApiResult<Json<Page<Deployment>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let status = p.status.map(DeploymentStatus::as_str);
    let rows = crate::db_read!(state.db, |c| async {
        let Some(project) = find_project(c, &principal, id, false).await? else { return Ok(None) };
        queries::list_project_deployments(c, project.project_id, status, after, limit).await.map(Some)
    })?
    .ok_or(ApiError::NotFound("project"))?;
    Ok(Json(page(rows, limit)))
}

/// A project's newest deployment; secrets masked. A project that has never
/// been deployed answers 204: the project is there, its deployment is not
/// yet (a 404 would say the project is missing).
#[utoipa::path(
    get, path = "/api/projects/{id}/deployments/latest", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, body = Deployment),
        (status = 204, description = "The project has no deployment yet"),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn latest_deployment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let found = crate::db_read!(state.db, |c| async {
        let Some(project) = find_project(c, &principal, id, false).await? else { return Ok(None) };
        queries::latest_deployment(c, project.project_id).await.map(Some)
    })?;
    Ok(match found.ok_or(ApiError::NotFound("project"))? {
        Some(row) => Json(row.deployment).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Any JSON for `db_connection_info` (`null`: none), at most 64 KiB.
fn connection_info_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(any_json())
        .description(Some(
            "Secret, sealed at rest (needs `DEVX_SECRET_KEY`): any JSON of at most 64 KiB; `null` is none \
             (on a change: clears it).",
        ))
        .into()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// A service of the same project (404 naming the field if there is none).
    pub service_id: Option<Uuid>,
    /// Trimmed; 1 to 255 characters.
    #[schema(
        example = "sandbox_abc123",
        min_length = 1,
        max_length = 255,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub app_sandbox_id: Option<String>,
    /// An http(s) URL of at most 2048 characters (other characters than
    /// RFC 3986's percent-encoded).
    #[schema(
        example = "https://myapp.coderunner.dev",
        max_length = 2048,
        pattern = "^https?://[A-Za-z0-9\\-._~:/?#@!$&'()*+,;=%]+$"
    )]
    pub public_url: Option<String>,
    /// Trimmed; 1 to 255 characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub db_sandbox_id: Option<String>,
    #[schema(schema_with = connection_info_schema)]
    pub db_connection_info: Option<Value>,
    /// Secret, sealed at rest (needs `DEVX_SECRET_KEY`): an object of at
    /// most 64 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    pub environment_vars: Option<Value>,
    /// Trimmed; 1 to 100 characters.
    #[schema(
        example = "nodejs",
        min_length = 1,
        max_length = 100,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub runtime_type: Option<String>,
    /// The commit deployed: 7 to 64 hexadecimal digits.
    #[schema(example = "3f786850e387550fdab836ed7e6dc881de23001b", pattern = "^[0-9A-Fa-f]{7,64}$")]
    pub commit_sha: Option<String>,
    /// Not blank; at most 10000 characters.
    #[schema(
        example = "Fix the checkout total",
        min_length = 1,
        max_length = 10000,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub commit_message: Option<String>,
    /// Trimmed; 1 to 255 characters.
    #[schema(
        example = "main",
        min_length = 1,
        max_length = 255,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub branch: Option<String>,
    /// A deployment starts `queued` (`pending` is accepted as its former
    /// name); no other value is. It moves to `building` by itself when a
    /// build slot is free.
    // Parsed to refuse any other value; the one it can hold is the default.
    #[serde(rename = "status")]
    pub _status: Option<NewDeploymentStatus>,
}

/// Create a deployment (`createDeployment`). It starts `queued` and is
/// `building` in the answer already when a build slot is free
/// (`deploy.max_concurrent_builds` in all and
/// `deploy.max_concurrent_builds_per_project`); `trigger` is `manual` for a
/// signed-in person and `api` for an API key, and `triggered_by` the
/// caller as the audit trail names it. The answer masks the secrets.
#[utoipa::path(
    post, path = "/api/projects/{id}/deployments", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Project id"), IdempotencyKey),
    request_body = CreateDeployment,
    responses(
        (status = 201, body = Deployment, headers(("Location" = String, description = "The new deployment: /api/deployments/{id}"), ("ETag" = String, description = "The new deployment's version, for If-Match"))),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Secrets given but DEVX_SECRET_KEY is not set", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_deployment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateDeployment>,
) -> ApiResult<Created<Deployment>> {
    let mut v = Validator::new();
    if let Some(s) = &req.app_sandbox_id {
        check_text(&mut v, "app_sandbox_id", s, 255);
    }
    if let Some(s) = &req.db_sandbox_id {
        check_text(&mut v, "db_sandbox_id", s, 255);
    }
    if let Some(s) = &req.runtime_type {
        check_text(&mut v, "runtime_type", s, 100);
    }
    if let Some(url) = &req.public_url {
        v.url("public_url", url);
    }
    if let Some(info) = &req.db_connection_info {
        check_connection_info(&mut v, info);
    }
    if let Some(env) = &req.environment_vars {
        v.json_object(ENVIRONMENT_VARS, env, JSON_MAX_BYTES);
    }
    if let Some(sha) = &req.commit_sha {
        check_commit_sha(&mut v, sha);
    }
    if let Some(s) = &req.commit_message {
        check_text(&mut v, "commit_message", s, 10_000);
    }
    if let Some(s) = &req.branch {
        check_text(&mut v, "branch", s, 255);
    }
    v.finish()?;

    let deployment_id = Uuid::new_v4();
    let key = state.config.secret_keys.as_ref();
    let connection =
        req.db_connection_info.as_ref().map(|x| seal(key, deployment_id, CONNECTION_INFO, x)).transpose()?;
    let env = req.environment_vars.as_ref().map(|x| seal(key, deployment_id, ENVIRONMENT_VARS, x)).transpose()?;

    let actor = principal.actor();
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&actor).await?;
    queries::lock_build_slots(&tx).await?;
    let project = project_for(&tx, &principal, id, false).await?;
    if let Some(service_id) = req.service_id
        && !queries::service_in_project(&tx, service_id, project.project_id).await?
    {
        return Err(ApiError::no_such("service_id", "no such service in this project"));
    }
    let deployment = queue(
        &tx,
        key,
        &NewDeployment {
            id: deployment_id,
            project_id: project.project_id,
            service_id: req.service_id,
            app_sandbox_id: req.app_sandbox_id.as_deref().map(str::trim),
            public_url: req.public_url.as_deref(),
            db_sandbox_id: req.db_sandbox_id.as_deref().map(str::trim),
            db_connection_info: connection.as_ref(),
            environment_vars: env.as_ref(),
            runtime_type: req.runtime_type.as_deref().map(str::trim),
            commit_sha: req.commit_sha.as_deref(),
            commit_message: req.commit_message.as_deref(),
            branch: req.branch.as_deref().map(str::trim),
            trigger: trigger_of(&principal),
            triggered_by: &actor,
            rollback_of: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/deployments/{}", deployment.id), deployment))
}

/// The caller's deployments (an admin's: everyone's) across projects, newest first; secrets masked
/// (`getDeploymentsByStatus` with `status`).
#[utoipa::path(
    get, path = "/api/deployments", tag = "runtime", security(("bearer" = ["read"])),
    params(DeploymentListParams),
    responses(
        (status = 200, body = Page<Deployment>),
        (status = 400, description = "Bad filter or cursor", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_my_deployments(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<DeploymentListParams>,
) -> ApiResult<Json<Page<Deployment>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let status = p.status.map(DeploymentStatus::as_str);
    let owner = principal.visibility();
    let rows = crate::db_read!(state.db, |c| queries::list_visible_deployments(c, owner, status, after, limit))?;
    Ok(Json(page(rows, limit)))
}

/// How many deployments the caller has (an admin: all of them), by status
/// (`getRunningDeploymentCountByUser` is `by_status.running`).
#[utoipa::path(
    get, path = "/api/deployments/summary", tag = "runtime", security(("bearer" = ["read"])),
    responses((status = 200, body = DeploymentSummary))
)]
async fn deployment_summary(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<DeploymentSummary>> {
    let owner = principal.visibility();
    let counts = crate::db_read!(state.db, |c| queries::count_visible_deployments(c, owner))?;
    let mut by_status: BTreeMap<String, i64> =
        DeploymentStatus::ALL.iter().map(|s| (s.as_str().to_string(), 0)).collect();
    for c in counts {
        *by_status.entry(c.status.as_str().to_string()).or_default() += c.count;
    }
    Ok(Json(DeploymentSummary { total: by_status.values().sum(), by_status }))
}

/// One deployment with its secrets in full (`getDeploymentWithDetails`),
/// and its configuration snapshot: secret values masked as `"****"`, with
/// its digest and a diff against the previous deployment of the same
/// service whose snapshot is stored (`snapshot_state` says when there is
/// none). Needs `DEVX_SECRET_KEY` when the deployment has secrets or a
/// snapshot.
#[utoipa::path(
    get, path = "/api/deployments/{id}", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses(
        (status = 200, body = DeploymentDetail, headers(("ETag" = String, description = "The deployment's version, for If-Match"))),
        (status = 404, description = "No such deployment of yours", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "It has secrets or a snapshot and DEVX_SECRET_KEY is not set (or cannot open them)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_deployment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<DeploymentDetail>> {
    let found = crate::db_read!(state.db, |c| async {
        let Some(row) = queries::get_deployment(c, id, true, false).await? else { return Ok(None) };
        if !principal.can_see(row.deployment.owner_id) {
            return Ok(None);
        }
        let Some(snap) = queries::snapshot(c, id).await? else { return Ok(None) };
        let previous = match snap.service_id {
            Some(service_id) if snap.snapshot_sealed.is_some() => {
                queries::previous_snapshot(c, service_id, snap.created_at, id).await?
            }
            _ => None,
        };
        Ok(Some((row, snap, previous)))
    })?;
    let (row, snap, previous) = found.ok_or(ApiError::NotFound("deployment"))?;
    let key = state.config.secret_keys.as_ref();
    let mut deployment = row.deployment;
    deployment.db_connection_info = open(key, id, CONNECTION_INFO, row.sealed_connection_info.as_ref())?;
    deployment.environment_vars = open(key, id, ENVIRONMENT_VARS, row.sealed_environment_vars.as_ref())?;
    let current = snapshot::open(key, &snap)?;
    let diff = match (&current, previous) {
        (Some(now), Some(prev)) => snapshot::open(key, &prev)?.map(|before| snapshot::diff(&before, now)),
        _ => None,
    };
    Ok(Tagged(DeploymentDetail {
        deployment,
        snapshot_state: snapshot::state(&snap),
        snapshot: current.as_ref().map(snapshot::masked),
        snapshot_digest: snap.snapshot_digest,
        snapshot_diff: diff,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDeployment {
    /// Forward along queued -> building -> deploying -> running -> stopped
    /// (steps may be skipped, but a queued deployment moves only to
    /// `building`, and only when a build slot is free), `cancelled` from
    /// queued, building or deploying, or `failed` from any status but
    /// `stopped`, `failed` and `cancelled`, which are final. 409 otherwise.
    /// The same status is a no-op.
    pub status: Option<DeploymentStatus>,
    /// Why it failed: not blank, at most 10000 characters. `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 10000, pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]")]
    pub error_message: Option<Option<String>>,
    /// Trimmed; 1 to 255 characters. `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255, pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]")]
    pub app_sandbox_id: Option<Option<String>>,
    /// An http(s) URL of at most 2048 characters (other characters than
    /// RFC 3986's percent-encoded). `null`
    /// clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^https?://[A-Za-z0-9\\-._~:/?#@!$&'()*+,;=%]+$")]
    pub public_url: Option<Option<String>>,
    /// Trimmed; 1 to 255 characters. `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255, pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]")]
    pub db_sandbox_id: Option<Option<String>>,
    /// Trimmed; 1 to 100 characters. `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100, pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]")]
    pub runtime_type: Option<Option<String>>,
    /// Replaces the stored value.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(schema_with = connection_info_schema)]
    pub db_connection_info: Option<Option<Value>>,
    /// Secret; replaces the whole object (at most 64 KiB of JSON); `null`
    /// clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<Object>)]
    pub environment_vars: Option<Option<Value>>,
}

/// Change a deployment (`updateDeployment`, `updateDeploymentStatus`). The
/// answer masks the secrets.
#[utoipa::path(
    patch, path = "/api/deployments/{id}", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Deployment id"), IfMatch),
    request_body = UpdateDeployment,
    responses(
        (status = 200, body = Deployment, headers(("ETag" = String, description = "The deployment's version after the change"))),
        (status = 404, description = "No such deployment of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The status cannot move there from where it is (or no build slot is free)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the deployment no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Secrets given but DEVX_SECRET_KEY is not set", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_deployment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(req): Json<UpdateDeployment>,
) -> ApiResult<Tagged<Deployment>> {
    let mut v = Validator::new();
    for (field, value, max) in [
        ("app_sandbox_id", &req.app_sandbox_id, 255),
        ("db_sandbox_id", &req.db_sandbox_id, 255),
        ("runtime_type", &req.runtime_type, 100),
        ("error_message", &req.error_message, 10_000),
    ] {
        if let Some(Some(s)) = value {
            check_text(&mut v, field, s, max);
        }
    }
    if let Some(Some(url)) = &req.public_url {
        v.url("public_url", url);
    }
    if let Some(Some(info)) = &req.db_connection_info {
        check_connection_info(&mut v, info);
    }
    if let Some(Some(env)) = &req.environment_vars {
        v.json_object(ENVIRONMENT_VARS, env, JSON_MAX_BYTES);
    }
    v.finish()?;

    let key = state.config.secret_keys.as_ref();
    let connection = match &req.db_connection_info {
        Some(Some(x)) => Some(Some(seal(key, id, CONNECTION_INFO, x)?)),
        Some(None) => Some(None),
        None => None,
    };
    let env = match &req.environment_vars {
        Some(Some(x)) => Some(Some(seal(key, id, ENVIRONMENT_VARS, x)?)),
        Some(None) => Some(None),
        None => None,
    };

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    if req.status.is_some() {
        queries::lock_build_slots(&tx).await?;
    }
    // Locked: concurrent changes to one deployment take turns, and each sees
    // the status the one before it left.
    let before = queries::get_deployment(&tx, id, false, true)
        .await?
        .filter(|r| principal.can_see(r.deployment.owner_id))
        .ok_or(ApiError::NotFound("deployment"))?
        .deployment;
    if_match.check("deployment", &before.etag())?;
    let status = match req.status {
        // A queued deployment gets a build slot only in its turn.
        Some(DeploymentStatus::Building) if before.status == DeploymentStatus::Queued => {
            run_queue(&tx).await?;
            if reload(&tx, id).await?.status == DeploymentStatus::Queued {
                let (global, per_project) = queries::build_limits(&tx).await?;
                let (building, in_project) = queries::building_counts(&tx, before.project_id).await?;
                let per_project =
                    if per_project == i64::MAX { "no limit".to_string() } else { per_project.to_string() };
                return Err(ApiError::conflict(
                    "status",
                    format!(
                        "no build slot is free ({building} of {global} building in all, {in_project} of \
                         {per_project} in this project), or older queued deployments come first: it moves to \
                         building by itself when its turn comes"
                    ),
                ));
            }
            None
        }
        Some(to) if to != before.status && !before.status.can_move_to(to) => {
            let next: Vec<&str> = before.status.next().iter().map(|s| s.as_str()).collect();
            let allowed = if next.is_empty() {
                format!("{} is final", before.status.as_str())
            } else {
                format!("from {} it may move to {}", before.status.as_str(), next.join(", "))
            };
            return Err(ApiError::conflict(
                "status",
                format!("a deployment cannot move from {} to {}: {allowed}", before.status.as_str(), to.as_str()),
            ));
        }
        other => other,
    };
    let change = DeploymentChange {
        status: status.map(DeploymentStatus::as_str),
        app_sandbox_id: req.app_sandbox_id.as_ref().map(|x| x.as_deref().map(str::trim)),
        public_url: req.public_url.as_ref().map(|x| x.as_deref()),
        db_sandbox_id: req.db_sandbox_id.as_ref().map(|x| x.as_deref().map(str::trim)),
        runtime_type: req.runtime_type.as_ref().map(|x| x.as_deref().map(str::trim)),
        db_connection_info: connection.as_ref().map(|x| x.as_ref()),
        environment_vars: env.as_ref().map(|x| x.as_ref()),
        error_message: req.error_message.as_ref().map(|x| x.as_deref()),
    };
    queries::update_deployment(&tx, id, &change).await?.ok_or(ApiError::NotFound("deployment"))?;
    if status == Some(DeploymentStatus::Running) && before.status != DeploymentStatus::Running {
        queries::mark_deployed(&tx, before.project_id, before.service_id).await?;
    }
    if status.is_some_and(|to| to != before.status) {
        run_queue(&tx).await?;
    }
    let deployment = reload(&tx, id).await?;
    tx.commit().await?;
    Ok(Tagged(deployment))
}

/// Cancel a deployment that has not gone live: queued, building or
/// deploying (409 otherwise). Its build slot, if it held one, goes to the
/// oldest queued deployment.
#[utoipa::path(
    post, path = "/api/deployments/{id}/cancel", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses(
        (status = 200, body = Deployment, headers(("ETag" = String, description = "The deployment's version after the change"))),
        (status = 404, description = "No such deployment of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is running or final already: only queued, building or deploying deployments can be cancelled", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_deployment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<Deployment>> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    queries::lock_build_slots(&tx).await?;
    let before = queries::get_deployment(&tx, id, false, true)
        .await?
        .filter(|r| principal.can_see(r.deployment.owner_id))
        .ok_or(ApiError::NotFound("deployment"))?
        .deployment;
    if !before.status.can_cancel() {
        return Err(ApiError::conflict(
            "status",
            format!(
                "a {} deployment cannot be cancelled: only queued, building or deploying ones can",
                before.status.as_str()
            ),
        ));
    }
    let change = DeploymentChange { status: Some(DeploymentStatus::Cancelled.as_str()), ..DeploymentChange::default() };
    queries::update_deployment(&tx, id, &change).await?.ok_or(ApiError::NotFound("deployment"))?;
    run_queue(&tx).await?;
    let deployment = reload(&tx, id).await?;
    tx.commit().await?;
    Ok(Tagged(deployment))
}

/// Deploy a stopped or failed deployment again (409 otherwise): a new
/// deployment with its service, public URL, database, connection info,
/// environment, runtime type and commit (not its app sandbox), `trigger`
/// `redeploy`, queued like any new one. Needs `DEVX_SECRET_KEY` when it has
/// secrets (they are sealed again for the new deployment).
#[utoipa::path(
    post, path = "/api/deployments/{id}/redeploy", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Deployment id"), IdempotencyKey),
    responses(
        (status = 201, body = Deployment, headers(("Location" = String, description = "The new deployment: /api/deployments/{id}"), ("ETag" = String, description = "The new deployment's version, for If-Match"))),
        (status = 404, description = "No such deployment of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is not stopped or failed; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "It has secrets and DEVX_SECRET_KEY is not set (or cannot open them)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn redeploy_deployment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Created<Deployment>> {
    let actor = principal.actor();
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&actor).await?;
    queries::lock_build_slots(&tx).await?;
    let source = queries::get_deployment(&tx, id, true, true)
        .await?
        .filter(|r| principal.can_see(r.deployment.owner_id))
        .ok_or(ApiError::NotFound("deployment"))?;
    let d = &source.deployment;
    if !d.status.can_redeploy() {
        return Err(ApiError::conflict(
            "status",
            format!("a {} deployment cannot be redeployed: only stopped or failed ones can", d.status.as_str()),
        ));
    }
    let new_id = Uuid::new_v4();
    let key = state.config.secret_keys.as_ref();
    let connection = reseal(key, id, new_id, CONNECTION_INFO, source.sealed_connection_info.as_ref())?;
    let env = reseal(key, id, new_id, ENVIRONMENT_VARS, source.sealed_environment_vars.as_ref())?;
    let deployment = queue(
        &tx,
        key,
        &NewDeployment {
            id: new_id,
            project_id: d.project_id,
            service_id: d.service_id,
            app_sandbox_id: None,
            public_url: d.public_url.as_deref(),
            db_sandbox_id: d.db_sandbox_id.as_deref(),
            db_connection_info: connection.as_ref(),
            environment_vars: env.as_ref(),
            runtime_type: d.runtime_type.as_deref(),
            commit_sha: d.commit_sha.as_deref(),
            commit_message: d.commit_message.as_deref(),
            branch: d.branch.as_deref(),
            trigger: DeploymentTrigger::Redeploy,
            triggered_by: &actor,
            rollback_of: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/deployments/{new_id}"), deployment))
}

/// Roll back to a deployment's configuration snapshot: a new deployment
/// (`trigger` `rollback`, `rollback_of` this one, queued like any new one)
/// of the same service, with that snapshot (the same digest) and its commit
/// and branch; the public URL, database and runtime type come from the
/// deployment as a redeploy's do. The service's current env vars are not
/// rewritten. 409 when the deployment has no snapshot (not a service's,
/// made before snapshots or without `DEVX_SECRET_KEY`), retention pruned
/// it (`deploy.keep_snapshots`), or its service was deleted since.
#[utoipa::path(
    post, path = "/api/deployments/{id}/rollback", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Deployment id"), IdempotencyKey),
    responses(
        (status = 201, body = Deployment, headers(("Location" = String, description = "The new deployment: /api/deployments/{id}"), ("ETag" = String, description = "The new deployment's version, for If-Match"))),
        (status = 404, description = "No such deployment of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It has no configuration snapshot, retention pruned it, or its service was deleted; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "DEVX_SECRET_KEY is not set (or cannot open the snapshot or the deployment's secrets)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn rollback_deployment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Created<Deployment>> {
    let actor = principal.actor();
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&actor).await?;
    queries::lock_build_slots(&tx).await?;
    let source = queries::get_deployment(&tx, id, true, true)
        .await?
        .filter(|r| principal.can_see(r.deployment.owner_id))
        .ok_or(ApiError::NotFound("deployment"))?;
    let snap = queries::snapshot(&tx, id).await?.ok_or(ApiError::NotFound("deployment"))?;
    match snapshot::state(&snap) {
        SnapshotState::Stored => {}
        SnapshotState::Pruned => {
            return Err(ApiError::conflict(
                "snapshot",
                "its configuration snapshot was pruned by retention (deploy.keep_snapshots keeps the newest per \
                 service): roll back to a newer deployment, or redeploy this one",
            ));
        }
        SnapshotState::None => {
            return Err(ApiError::conflict(
                "snapshot",
                "it has no configuration snapshot (not a service's deployment, made before snapshots, or made \
                 without DEVX_SECRET_KEY): redeploy it instead",
            ));
        }
    }
    if source.deployment.service_id.is_none() {
        return Err(ApiError::conflict(
            "snapshot",
            "its service was deleted: a snapshot is rolled back onto the service it was taken of",
        ));
    }
    let key = state.config.secret_keys.as_ref();
    let value = snapshot::open(key, &snap)?.ok_or(ApiError::NotFound("deployment"))?;
    let new_id = Uuid::new_v4();
    let copy = snapshot::seal(key, new_id, &value)?;
    let d = &source.deployment;
    let connection = reseal(key, id, new_id, CONNECTION_INFO, source.sealed_connection_info.as_ref())?;
    let env = reseal(key, id, new_id, ENVIRONMENT_VARS, source.sealed_environment_vars.as_ref())?;
    let commit_sha = value.pointer("/source/commit_sha").and_then(Value::as_str);
    let branch = value.pointer("/source/branch").and_then(Value::as_str);
    let deployment = queue_with(
        &tx,
        &NewDeployment {
            id: new_id,
            project_id: d.project_id,
            service_id: d.service_id,
            app_sandbox_id: None,
            public_url: d.public_url.as_deref(),
            db_sandbox_id: d.db_sandbox_id.as_deref(),
            db_connection_info: connection.as_ref(),
            environment_vars: env.as_ref(),
            runtime_type: d.runtime_type.as_deref(),
            commit_sha,
            commit_message: d.commit_message.as_deref(),
            branch,
            trigger: DeploymentTrigger::Rollback,
            triggered_by: &actor,
            rollback_of: Some(id),
        },
        Some(&copy),
    )
    .await?;
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/deployments/{new_id}"), deployment))
}

/// Delete a deployment (`deleteDeployment`).
#[utoipa::path(
    delete, path = "/api/deployments/{id}", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Deployment id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such deployment of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_deployment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    queries::lock_build_slots(&tx).await?;
    queries::get_deployment(&tx, id, false, true)
        .await?
        .filter(|r| principal.can_see(r.deployment.owner_id))
        .ok_or(ApiError::NotFound("deployment"))?;
    queries::delete_deployment(&tx, id).await?;
    run_queue(&tx).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
