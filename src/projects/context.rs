//! A project's code context over HTTP: read it, replace it (`PUT`), or merge
//! into it (`PATCH`: top-level keys of the object columns are merged, `null`
//! removes a key; done in SQL so that concurrent patches of different keys
//! both land).

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::access;
use super::model::ProjectContext;
use super::queries::{self, ContextPatch, ContextWrite, ObjectMerge};
use super::routes::empty_object;
use crate::accounts::Principal;
use crate::db::Queryable;
use crate::http::error::Problem;
use crate::http::json_schema;
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, IfMatch, Json, Path, Tagged, Versioned};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_context, put_context, patch_context))
}

/// Largest codebase accepted (the request body limit usually binds first).
const CODEBASE_MAX: usize = 16 * 1024 * 1024;
const CONFIG_MAX: usize = 256 * 1024;
const DEPENDENCIES_MAX: usize = 2000;
const DEPENDENCY_MAX_CHARS: usize = 200;

crate::json_schema! {
    /// A dependency's name.
    Dependency = json_schema::string()
        .description(Some("A dependency's name, 1 to 200 characters (surrounding spaces are trimmed)."))
        .min_length(Some(1))
        .max_length(Some(DEPENDENCY_MAX_CHARS))
        .pattern(Some(json_schema::NON_BLANK));
}

/// A variable's name: not empty, no `=`.
fn variable_name() -> ObjectBuilder {
    json_schema::string().min_length(Some(1)).pattern(Some("^[^=]+$"))
}

crate::json_schema! {
    /// Environment variables: name -> value.
    EnvironmentVars = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("Name (not empty, no `=`) -> value (a string); at most 256 KiB serialized."))
        .property_names(Some(variable_name()))
        .additional_properties(Some(json_schema::string()));
}

crate::json_schema! {
    /// Changes to environment variables: name -> value, or `null` to remove it.
    EnvironmentVarsPatch = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "Name (not empty, no `=`) -> new value (a string), or `null` to remove the variable; the values set \
             are at most 256 KiB serialized.",
        ))
        .property_names(Some(variable_name()))
        .additional_properties(Some(
            ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])),
        ));
}

fn score(v: &mut Validator, field: &str, value: Option<f64>) {
    if let Some(x) = value {
        v.check(x.is_finite() && (0.0..=100.0).contains(&x), field, "must be a number from 0 to 100");
    }
}

fn dependencies(v: &mut Validator, list: &[String]) -> Vec<String> {
    v.check(list.len() <= DEPENDENCIES_MAX, "dependencies", format!("at most {DEPENDENCIES_MAX} entries"));
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for raw in list {
        let d = raw.trim();
        if d.is_empty() || raw.chars().count() > DEPENDENCY_MAX_CHARS || d.contains('\0') {
            v.error("dependencies", format!("{d:?} is not a dependency name of 1 to 200 characters"));
        } else if !out.iter().any(|o| o == d) {
            out.push(d.to_string());
        }
    }
    out
}

/// Environment variables are text: each value a string (or, in a patch,
/// `null` to remove it).
fn env_values(v: &mut Validator, vars: &Map<String, Value>, allow_null: bool) {
    for (name, value) in vars {
        let ok = value.is_string() || (allow_null && value.is_null());
        v.check(ok, &format!("environment_vars.{name}"), "must be a string");
        v.check(
            !name.is_empty() && !name.contains('='),
            "environment_vars",
            format!("{name:?} is not a variable name"),
        );
    }
}

/// The code context of a project.
#[utoipa::path(
    get, path = "/api/projects/{id}/context", tag = "projects", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, body = ProjectContext, headers(("ETag" = String, description = "The code context's version, for If-Match"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project of yours, or it has no code context yet", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_context(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<ProjectContext>> {
    let found = crate::db_read!(state.db, |c| async {
        match access::find_project(c, &principal, id, false).await? {
            Some(_) => queries::get_context(c, id, false).await.map(Some),
            None => Ok(None),
        }
    })?;
    let context = found.ok_or(ApiError::NotFound("project"))?.ok_or(ApiError::NotFound("project context"))?;
    Ok(Tagged(context))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextInput {
    /// Path -> file content (the request body limit applies).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub codebase: Value,
    /// At most 2000; repeated names are kept once.
    #[serde(default)]
    #[schema(value_type = Vec<Dependency>, max_items = 2000)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    #[schema(value_type = EnvironmentVars)]
    pub environment_vars: Map<String, Value>,
    /// At most 256 KiB serialized.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub deployment_config: Value,
    /// Percent, 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    pub test_coverage: Option<f64>,
    /// 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    pub security_score: Option<f64>,
    /// 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    pub performance_score: Option<f64>,
}

/// Replace the code context (fields left out become empty).
#[utoipa::path(
    put, path = "/api/projects/{id}/context", tag = "projects", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Project id"), IfMatch),
    request_body = ContextInput,
    responses(
        (status = 200, body = ProjectContext, headers(("ETag" = String, description = "The code context's version after the change"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the code context no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn put_context(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(req): Json<ContextInput>,
) -> ApiResult<Tagged<ProjectContext>> {
    let mut v = Validator::new();
    v.json_object("codebase", &req.codebase, CODEBASE_MAX);
    let deps = dependencies(&mut v, &req.dependencies);
    env_values(&mut v, &req.environment_vars, false);
    let environment_vars = Value::Object(req.environment_vars);
    v.json_object("environment_vars", &environment_vars, CONFIG_MAX);
    v.json_object("deployment_config", &req.deployment_config, CONFIG_MAX);
    score(&mut v, "test_coverage", req.test_coverage);
    score(&mut v, "security_score", req.security_score);
    score(&mut v, "performance_score", req.performance_score);
    v.finish()?;

    let write = ContextWrite {
        codebase: req.codebase,
        dependencies: deps,
        environment_vars,
        deployment_config: req.deployment_config,
        test_coverage: req.test_coverage,
        security_score: req.security_score,
        performance_score: req.performance_score,
    };
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    access::project_for(&tx, &principal, id, false).await?;
    check_context(&tx, id, &if_match).await?;
    let context = queries::put_context(&tx, id, &write).await?;
    tx.commit().await?;
    Ok(Tagged(context))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextPatchInput {
    /// Keys merged into the codebase; a `null` value removes the file.
    #[schema(value_type = Option<Object>)]
    pub codebase: Option<Map<String, Value>>,
    /// Keys merged; `null` removes a variable.
    #[schema(value_type = Option<EnvironmentVarsPatch>)]
    pub environment_vars: Option<Map<String, Value>>,
    /// Keys merged; `null` removes a key. The values set are at most 256 KiB
    /// serialized.
    #[schema(value_type = Option<Object>)]
    pub deployment_config: Option<Map<String, Value>>,
    /// Replaces the list (as a JSON merge patch replaces arrays): at most
    /// 2000; repeated names are kept once.
    #[schema(value_type = Option<Vec<Dependency>>, max_items = 2000)]
    pub dependencies: Option<Vec<String>>,
    /// Percent, 0 to 100; `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 100)]
    pub test_coverage: Option<Option<f64>>,
    /// 0 to 100; `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 100)]
    pub security_score: Option<Option<f64>>,
    /// 0 to 100; `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 100)]
    pub performance_score: Option<Option<f64>>,
}

/// Splits a merge patch object into the keys to write and the keys to drop.
fn merge(v: &mut Validator, field: &str, patch: Option<Map<String, Value>>, max: usize) -> ObjectMerge {
    let Some(patch) = patch else { return ObjectMerge::default() };
    let mut set = Map::new();
    let mut remove = Vec::new();
    for (key, value) in patch {
        if value.is_null() {
            remove.push(key);
        } else {
            set.insert(key, value);
        }
    }
    let set = Value::Object(set);
    v.json_object(field, &set, max);
    v.check(remove.iter().all(|k| !k.contains('\0')), field, "keys must not contain NUL characters");
    ObjectMerge { set, remove }
}

/// Merge changes into the code context: top-level keys of `codebase`,
/// `environment_vars` and `deployment_config` are merged (`null` removes a
/// key); `dependencies` and the scores are replaced when given.
#[utoipa::path(
    patch, path = "/api/projects/{id}/context", tag = "projects", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Project id"), IfMatch),
    request_body = ContextPatchInput,
    responses(
        (status = 200, body = ProjectContext, headers(("ETag" = String, description = "The code context's version after the change"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the code context no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn patch_context(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(req): Json<ContextPatchInput>,
) -> ApiResult<Tagged<ProjectContext>> {
    let mut v = Validator::new();
    if let Some(env) = &req.environment_vars {
        env_values(&mut v, env, true);
    }
    let patch = ContextPatch {
        codebase: merge(&mut v, "codebase", req.codebase, CODEBASE_MAX),
        environment_vars: merge(&mut v, "environment_vars", req.environment_vars, CONFIG_MAX),
        deployment_config: merge(&mut v, "deployment_config", req.deployment_config, CONFIG_MAX),
        dependencies: req.dependencies.as_deref().map(|d| dependencies(&mut v, d)),
        test_coverage: req.test_coverage,
        security_score: req.security_score,
        performance_score: req.performance_score,
    };
    score(&mut v, "test_coverage", req.test_coverage.flatten());
    score(&mut v, "security_score", req.security_score.flatten());
    score(&mut v, "performance_score", req.performance_score.flatten());
    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    access::project_for(&tx, &principal, id, false).await?;
    check_context(&tx, id, &if_match).await?;
    let context = queries::patch_context(&tx, id, &patch).await?;
    tx.commit().await?;
    Ok(Tagged(context))
}

/// `If-Match` against the code context, locked for the rest of the write's
/// transaction; a context that does not exist yet has no version to match.
async fn check_context(tx: &impl Queryable, project_id: Uuid, if_match: &IfMatch) -> ApiResult<()> {
    if !if_match.is_conditional() {
        return Ok(());
    }
    let current = queries::get_context(tx, project_id, true).await?.ok_or_else(|| {
        ApiError::PreconditionFailed("the project has no code context yet, so it has no version to match".into())
    })?;
    if_match.check("code context", &current.etag())
}
