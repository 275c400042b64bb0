//! Environment variables over HTTP: a project's and a service's, one by key
//! or in bulk from dotenv text, and a service's effective set.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{BulkResult, EffectiveEnv, EnvList, EnvVar, Purpose, list_version};
use super::{Flags, KEY_RULE, MAX_VALUE, Owner, key_ok, queries, set, view};
use crate::accounts::Principal;
use crate::db::{DbError, Queryable};
use crate::http::error::Problem;
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, ETag, IfMatch, Json, Path, Query, Tagged};
use crate::projects::access::find_project;
use crate::runtime::services::queries::get_service;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_project_env, bulk_project_env))
        .routes(routes!(get_project_var, put_project_var, delete_project_var))
        .routes(routes!(list_service_env, bulk_service_env))
        .routes(routes!(get_service_var, put_service_var, delete_service_var))
        .routes(routes!(effective_env))
}

#[derive(Clone, Copy)]
enum Kind {
    Project,
    Service,
}

/// The owner `id` of `kind` if the caller may see it (another user's is
/// missing); with `lock` (a write of its variables), its row is locked so
/// that writes to its variables are serialised, and a service's
/// `updated_at` moves: its variables are part of what `GET
/// /api/services/{id}` answers, so its `ETag` must move with them.
async fn owner(
    db: &impl Queryable,
    principal: &Principal,
    kind: Kind,
    id: Uuid,
    lock: bool,
) -> Result<Option<Owner>, DbError> {
    Ok(match kind {
        Kind::Project => find_project(db, principal, id, lock).await?.map(|p| Owner::Project(p.project_id)),
        Kind::Service => {
            let service = principal.visibility().filter(get_service(db, id, lock).await?);
            if lock && let Some(s) = &service {
                crate::runtime::services::queries::touch_service(db, s.id).await?;
            }
            service.map(|s| Owner::Service(s.id))
        }
    })
}

fn missing(kind: Kind) -> ApiError {
    match kind {
        Kind::Project => ApiError::NotFound("project"),
        Kind::Service => ApiError::NotFound("service"),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PreviewParam {
    /// `true`: the preview override of the key; default `false`.
    pub preview: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetVar {
    /// The value (no NUL), at most 65,536 characters.
    #[schema(max_length = 65_536)]
    pub value: String,
    /// Write-only from now on: answered as `"****"`. Default: kept, or
    /// `false` for a new variable.
    pub is_secret: Option<bool>,
    /// Default: kept, or `true`.
    pub is_buildtime: Option<bool>,
    /// Default: kept, or `true`.
    pub is_runtime: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkVars {
    /// Dotenv text: `NAME=value` lines, an optional `export `, `#`
    /// comments, single quotes literal, double quotes with escapes and
    /// `${NAME}` of an earlier line. Names are environment names. A bad
    /// line is a 422 naming its number, and nothing is stored.
    #[schema(example = "A=1\nexport B=\"two\"\n# comment", max_length = 1_048_576)]
    pub dotenv: String,
    /// Every variable of the text gets these flags; defaults false, true,
    /// true, false.
    #[serde(default)]
    pub is_secret: bool,
    #[serde(default = "yes")]
    pub is_buildtime: bool,
    #[serde(default = "yes")]
    pub is_runtime: bool,
    #[serde(default)]
    pub is_preview: bool,
}

fn yes() -> bool {
    true
}

async fn list_impl(state: AppState, principal: Principal, kind: Kind, id: Uuid) -> ApiResult<Tagged<EnvList>> {
    let rows = crate::db_read!(state.db, |c| async {
        let Some(owner) = owner(c, &principal, kind, id, false).await? else { return Ok(None) };
        queries::list(c, owner).await.map(Some)
    })?
    .ok_or_else(|| missing(kind))?;
    let keys = state.config.secret_keys.as_ref();
    let items = rows.iter().map(|r| view(keys, r)).collect::<Result<Vec<_>, _>>()?;
    Ok(Tagged(EnvList { items }))
}

async fn get_impl(
    state: AppState,
    principal: Principal,
    kind: Kind,
    id: Uuid,
    key: String,
    preview: bool,
) -> ApiResult<Tagged<EnvVar>> {
    let row = crate::db_read!(state.db, |c| async {
        let Some(owner) = owner(c, &principal, kind, id, false).await? else { return Ok(Err(missing(kind))) };
        Ok(queries::get(c, owner, &key, preview).await?.ok_or(ApiError::NotFound("variable")))
    })??;
    Ok(Tagged(view(state.config.secret_keys.as_ref(), &row)?))
}

#[allow(clippy::too_many_arguments)]
async fn put_impl(
    state: AppState,
    principal: Principal,
    kind: Kind,
    id: Uuid,
    key: String,
    preview: bool,
    if_match: IfMatch,
    req: SetVar,
) -> ApiResult<Tagged<EnvVar>> {
    let mut v = Validator::new();
    v.check(key_ok(&key), "key", KEY_RULE);
    v.text("value", &req.value, 0, MAX_VALUE);
    v.finish()?;
    let keys = state.config.secret_keys.as_ref();
    let actor = principal.actor();
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&actor).await?;
    let owner = owner(&tx, &principal, kind, id, true).await?.ok_or_else(|| missing(kind))?;
    let before = queries::get(&tx, owner, &key, preview).await?;
    // A tag for a variable that is not there never matches.
    let current = before.as_ref().map_or_else(|| ETag::digest("env:absent"), |b| ETag::from_timestamp(b.updated_at));
    if_match.check("variable", &current)?;
    let flags = Flags {
        is_secret: req.is_secret.or(before.as_ref().map(|b| b.is_secret)).unwrap_or(false),
        is_buildtime: req.is_buildtime.or(before.as_ref().map(|b| b.is_buildtime)).unwrap_or(true),
        is_runtime: req.is_runtime.or(before.as_ref().map(|b| b.is_runtime)).unwrap_or(true),
    };
    set(&tx, keys, owner, &key, &req.value, flags, preview, &actor).await?;
    let row = queries::get(&tx, owner, &key, preview).await?.ok_or(ApiError::NotFound("variable"))?;
    tx.commit().await?;
    Ok(Tagged(view(keys, &row)?))
}

async fn delete_impl(
    state: AppState,
    principal: Principal,
    kind: Kind,
    id: Uuid,
    key: String,
    preview: bool,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let owner = owner(&tx, &principal, kind, id, true).await?.ok_or_else(|| missing(kind))?;
    if !queries::delete(&tx, owner, &key, preview).await? {
        return Err(ApiError::NotFound("variable"));
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The variables of dotenv text, every problem with its line; a value is
/// never echoed (the text may be secrets).
fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut v = Validator::new();
    let (vars, problems) = crate::config::dotenv::parse(text, &|_| None);
    for p in &problems {
        v.error("dotenv", format!("line {}: {}", p.line, p.problem));
    }
    for (name, value) in &vars {
        if !key_ok(name) {
            let line = text
                .lines()
                .position(|l| {
                    let l = l.trim();
                    let l = l.strip_prefix("export ").map_or(l, str::trim_start);
                    l.split_once('=').is_some_and(|(n, _)| n.trim_end() == name)
                })
                .map_or(0, |i| i + 1);
            v.error("dotenv", format!("line {line}: {name:?} {KEY_RULE}"));
        }
        if value.contains('\0') || value.chars().count() > MAX_VALUE {
            v.error("dotenv", format!("the value of {name} must have no NUL and at most {MAX_VALUE} characters"));
        }
    }
    v.finish()?;
    // A later line for the same name wins.
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in vars {
        out.retain(|(n, _)| n != &name);
        out.push((name, value));
    }
    Ok(out)
}

async fn bulk_impl(
    state: AppState,
    principal: Principal,
    kind: Kind,
    id: Uuid,
    if_match: IfMatch,
    req: BulkVars,
) -> ApiResult<(ETag, Json<BulkResult>)> {
    let vars = parse_dotenv(&req.dotenv)?;
    let keys = state.config.secret_keys.as_ref();
    let actor = principal.actor();
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&actor).await?;
    let owner = owner(&tx, &principal, kind, id, true).await?.ok_or_else(|| missing(kind))?;
    let version =
        |rows: &[queries::EnvRow]| list_version(rows.iter().map(|r| (r.key.as_str(), r.is_preview, r.updated_at)));
    if_match.check("variables", &version(&queries::list(&tx, owner).await?))?;
    let flags = Flags { is_secret: req.is_secret, is_buildtime: req.is_buildtime, is_runtime: req.is_runtime };
    let mut done = BulkResult { created: 0, updated: 0 };
    for (key, value) in &vars {
        if set(&tx, keys, owner, key, value, flags, req.is_preview, &actor).await? {
            done.created += 1;
        } else {
            done.updated += 1;
        }
    }
    let etag = version(&queries::list(&tx, owner).await?);
    tx.commit().await?;
    Ok((etag, Json(done)))
}

const NOT_CONFIGURED: &str = "A value must be sealed or opened and DEVX_SECRET_KEY is not set (or does not open it)";

/// A project's environment variables, by key (a key's preview override
/// after it). Secret values are `null`, with `masked: "****"`.
#[utoipa::path(
    get, path = "/api/projects/{id}/env", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, body = EnvList, headers(("ETag" = String, description = "The version of the variables, for If-Match on the bulk PUT"))),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = NOT_CONFIGURED, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_project_env(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<EnvList>> {
    list_impl(state, principal, Kind::Project, id).await
}

/// Set a project's variables from dotenv text, in one transaction (created
/// or updated, with the flags given).
#[utoipa::path(
    put, path = "/api/projects/{id}/env", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Project id"), IfMatch),
    request_body = BulkVars,
    responses(
        (status = 200, body = BulkResult, headers(("ETag" = String, description = "The version of the variables after the change (as GET .../env answers it)"))),
        (status = 412, description = "If-Match names a version the variables no longer have; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A line of `dotenv` is malformed, names an invalid key or a value with NUL (each named by its line number); nothing is stored", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = NOT_CONFIGURED, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn bulk_project_env(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(req): Json<BulkVars>,
) -> ApiResult<(ETag, Json<BulkResult>)> {
    bulk_impl(state, principal, Kind::Project, id, if_match, req).await
}

/// One variable of a project.
#[utoipa::path(
    get, path = "/api/projects/{id}/env/{key}", tag = "runtime", security(("bearer" = ["read"])),
    params(
        ("id" = Uuid, Path, description = "Project id"),
        ("key" = String, Path, description = "The variable's name", max_length = 255, pattern = "^[A-Za-z_][A-Za-z0-9_]*$"),
        PreviewParam,
    ),
    responses(
        (status = 200, body = EnvVar, headers(("ETag" = String, description = "The variable's version, for If-Match"))),
        (status = 404, description = "No such project of yours, or no such variable", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = NOT_CONFIGURED, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_project_var(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, key)): Path<(Uuid, String)>,
    Query(p): Query<PreviewParam>,
) -> ApiResult<Tagged<EnvVar>> {
    get_impl(state, principal, Kind::Project, id, key, p.preview.unwrap_or(false)).await
}

/// Create or replace one variable of a project.
#[utoipa::path(
    put, path = "/api/projects/{id}/env/{key}", tag = "runtime", security(("bearer" = ["write"])),
    params(
        ("id" = Uuid, Path, description = "Project id"),
        ("key" = String, Path, description = "The variable's name", max_length = 255, pattern = "^[A-Za-z_][A-Za-z0-9_]*$"),
        PreviewParam,
        IfMatch,
    ),
    request_body = SetVar,
    responses(
        (status = 200, body = EnvVar, headers(("ETag" = String, description = "The variable's version after the change"))),
        (status = 412, description = "If-Match names a version the variable no longer has (or it does not exist); nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The key is not an environment name, or the value has NUL or is too long", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = NOT_CONFIGURED, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn put_project_var(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, key)): Path<(Uuid, String)>,
    Query(p): Query<PreviewParam>,
    if_match: IfMatch,
    Json(req): Json<SetVar>,
) -> ApiResult<Tagged<EnvVar>> {
    put_impl(state, principal, Kind::Project, id, key, p.preview.unwrap_or(false), if_match, req).await
}

/// Delete one variable of a project.
#[utoipa::path(
    delete, path = "/api/projects/{id}/env/{key}", tag = "runtime", security(("bearer" = ["write"])),
    params(
        ("id" = Uuid, Path, description = "Project id"),
        ("key" = String, Path, description = "The variable's name", max_length = 255, pattern = "^[A-Za-z_][A-Za-z0-9_]*$"),
        PreviewParam,
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such project of yours, or no such variable", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_project_var(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, key)): Path<(Uuid, String)>,
    Query(p): Query<PreviewParam>,
) -> ApiResult<StatusCode> {
    delete_impl(state, principal, Kind::Project, id, key, p.preview.unwrap_or(false)).await
}

/// A service's environment variables, by key (a key's preview override
/// after it). Secret values are `null`, with `masked: "****"`.
#[utoipa::path(
    get, path = "/api/services/{id}/env", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Service id")),
    responses(
        (status = 200, body = EnvList, headers(("ETag" = String, description = "The version of the variables, for If-Match on the bulk PUT"))),
        (status = 404, description = "No such service of yours", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = NOT_CONFIGURED, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_service_env(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<EnvList>> {
    list_impl(state, principal, Kind::Service, id).await
}

/// Set a service's variables from dotenv text, in one transaction (created
/// or updated, with the flags given).
#[utoipa::path(
    put, path = "/api/services/{id}/env", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Service id"), IfMatch),
    request_body = BulkVars,
    responses(
        (status = 200, body = BulkResult, headers(("ETag" = String, description = "The version of the variables after the change (as GET .../env answers it)"))),
        (status = 412, description = "If-Match names a version the variables no longer have; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service of yours", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A line of `dotenv` is malformed, names an invalid key or a value with NUL (each named by its line number); nothing is stored", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = NOT_CONFIGURED, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn bulk_service_env(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(req): Json<BulkVars>,
) -> ApiResult<(ETag, Json<BulkResult>)> {
    bulk_impl(state, principal, Kind::Service, id, if_match, req).await
}

/// One variable of a service.
#[utoipa::path(
    get, path = "/api/services/{id}/env/{key}", tag = "runtime", security(("bearer" = ["read"])),
    params(
        ("id" = Uuid, Path, description = "Service id"),
        ("key" = String, Path, description = "The variable's name", max_length = 255, pattern = "^[A-Za-z_][A-Za-z0-9_]*$"),
        PreviewParam,
    ),
    responses(
        (status = 200, body = EnvVar, headers(("ETag" = String, description = "The variable's version, for If-Match"))),
        (status = 404, description = "No such service of yours, or no such variable", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = NOT_CONFIGURED, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_service_var(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, key)): Path<(Uuid, String)>,
    Query(p): Query<PreviewParam>,
) -> ApiResult<Tagged<EnvVar>> {
    get_impl(state, principal, Kind::Service, id, key, p.preview.unwrap_or(false)).await
}

/// Create or replace one variable of a service.
#[utoipa::path(
    put, path = "/api/services/{id}/env/{key}", tag = "runtime", security(("bearer" = ["write"])),
    params(
        ("id" = Uuid, Path, description = "Service id"),
        ("key" = String, Path, description = "The variable's name", max_length = 255, pattern = "^[A-Za-z_][A-Za-z0-9_]*$"),
        PreviewParam,
        IfMatch,
    ),
    request_body = SetVar,
    responses(
        (status = 200, body = EnvVar, headers(("ETag" = String, description = "The variable's version after the change"))),
        (status = 412, description = "If-Match names a version the variable no longer has (or it does not exist); nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service of yours", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The key is not an environment name, or the value has NUL or is too long", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = NOT_CONFIGURED, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn put_service_var(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, key)): Path<(Uuid, String)>,
    Query(p): Query<PreviewParam>,
    if_match: IfMatch,
    Json(req): Json<SetVar>,
) -> ApiResult<Tagged<EnvVar>> {
    put_impl(state, principal, Kind::Service, id, key, p.preview.unwrap_or(false), if_match, req).await
}

/// Delete one variable of a service.
#[utoipa::path(
    delete, path = "/api/services/{id}/env/{key}", tag = "runtime", security(("bearer" = ["write"])),
    params(
        ("id" = Uuid, Path, description = "Service id"),
        ("key" = String, Path, description = "The variable's name", max_length = 255, pattern = "^[A-Za-z_][A-Za-z0-9_]*$"),
        PreviewParam,
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such service of yours, or no such variable", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_service_var(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, key)): Path<(Uuid, String)>,
    Query(p): Query<PreviewParam>,
) -> ApiResult<StatusCode> {
    delete_impl(state, principal, Kind::Service, id, key, p.preview.unwrap_or(false)).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EffectiveParams {
    /// Variables used at build time or at run time; default `runtime`.
    pub purpose: Option<Purpose>,
    /// `true`: a preview deployment's set (preview overrides win); default `false`.
    pub preview: Option<bool>,
}

/// The variables a deployment of the service gets: the project's, then the
/// service's (winning over the project's), then with `preview=true` the
/// project's and then the service's preview overrides (winning over both);
/// only those marked for `purpose`. Secret values are `null` with
/// `masked: "****"`; each says where it came from.
#[utoipa::path(
    get, path = "/api/services/{id}/effective-env", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Service id"), EffectiveParams),
    responses(
        (status = 200, body = EffectiveEnv),
        (status = 400, description = "Bad purpose or preview", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service of yours", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = NOT_CONFIGURED, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn effective_env(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Query(p): Query<EffectiveParams>,
) -> ApiResult<Json<EffectiveEnv>> {
    let purpose = p.purpose.unwrap_or(Purpose::Runtime);
    let preview = p.preview.unwrap_or(false);
    let keys = state.config.secret_keys.as_ref();
    let client = state.db.client().await?;
    let service =
        principal.visibility().filter(get_service(&client, id, false).await?).ok_or(ApiError::NotFound("service"))?;
    let items = super::effective(&client, keys, service.project_id, service.id, purpose, preview).await?;
    Ok(Json(EffectiveEnv { purpose, preview, items }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_problems_name_their_line_and_never_a_value() {
        let vars = parse_dotenv("A=1\nexport B=\"two\"\n# c\nA=3\nC='${A}'").ok().unwrap();
        assert_eq!(vars, [("B".into(), "two".into()), ("A".into(), "3".into()), ("C".into(), "${A}".into())]);
        let problem = |text: &str| match parse_dotenv(text) {
            Err(ApiError::Invalid(errors)) => format!("{errors:?}"),
            other => panic!("{text:?}: {:?}", other.map(|v| v.len())),
        };
        let p = problem("A=1\nsk-live-secret-value\nB=2");
        assert!(p.contains("line 2") && !p.contains("sk-live"), "{p}");
        assert!(problem("A=1\nmy.var=2").contains("line 2"));
        let p = problem("TOKEN=two words");
        assert!(p.contains("line 1") && !p.contains("words"), "{p}");
        // The server's own environment is never read.
        assert_eq!(parse_dotenv("A=${HOME}x").ok().unwrap(), [("A".into(), "x".into())]);
    }
}
