//! Services over HTTP: listed and created under a project, read, changed and
//! deleted by id.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{Service, ServiceStatus};
use super::queries::{self, NewService, ServiceChange};
use crate::accounts::{Bearer, Principal};
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, IfMatch, Json, Path, Query, Tagged, Versioned};
use crate::projects::access::{find_project, project_for};
use crate::projects::queries::usable_template_id;
use crate::runtime::{JSON_MAX_BYTES, TimeKey, env};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_services, create_service)).routes(routes!(
        get_service,
        update_service,
        delete_service
    ))
}

/// `^[a-z0-9]+(-[a-z0-9]+)*$`, at most 100 characters (what the database checks).
fn slug_ok(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

/// `^[a-z][a-z0-9_-]{0,49}$`.
fn service_type_ok(s: &str) -> bool {
    (1..=50).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn check_slug(v: &mut Validator, slug: &str) {
    v.check(
        slug_ok(slug),
        "slug",
        "must be 1-100 lowercase letters or digits in groups joined by single dashes (e.g. billing-api)",
    );
}

fn check_service_type(v: &mut Validator, t: &str) {
    v.check(
        service_type_ok(t),
        "service_type",
        "must be a lowercase word of up to 50 letters, digits, `_` or `-` (e.g. api, worker)",
    );
}

/// An http(s) URL or an absolute path such as `/health`, at most 500
/// characters (counted as the document's `maxLength` counts them).
fn check_health_url(v: &mut Validator, url: &str) {
    let short = url.chars().count() <= 500;
    if url.starts_with('/') {
        v.check(
            short && !url.contains(char::is_whitespace) && !url.contains('\0'),
            "health_check_url",
            "must be an http(s) URL or a path such as /health, at most 500 characters",
        );
    } else {
        v.url("health_check_url", url);
        v.check(short, "health_check_url", "must be at most 500 characters");
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ServiceListParams {
    pub status: Option<ServiceStatus>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A project's services, newest first.
#[utoipa::path(
    get, path = "/api/projects/{id}/services", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Project id"), ServiceListParams),
    responses(
        (status = 200, body = Page<Service>),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Its environment variables must be sealed or opened and DEVX_SECRET_KEY is not set (or does not open them)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_services(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Query(p): Query<ServiceListParams>,
) -> ApiResult<Json<Page<Service>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let status = p.status.map(ServiceStatus::as_str);
    let rows = crate::db_read!(state.db, |c| async {
        let Some(project) = find_project(c, &principal, id, false).await? else { return Ok(None) };
        queries::list_project_services(c, project.project_id, status, after, limit).await.map(Some)
    })?
    .ok_or(ApiError::NotFound("project"))?;
    let mut page = Page::from_rows(rows, limit, |s| (s.created_at, s.id));
    let ids: Vec<Uuid> = page.items.iter().map(|s| s.id).collect();
    let client = state.db.client().await?;
    let mut views = env::service_views(&client, state.config.secret_keys.as_ref(), &ids).await?;
    for s in &mut page.items {
        s.environment_vars = views.remove(&s.id).unwrap_or_default();
    }
    Ok(Json(page))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateService {
    /// Trimmed; 1 to 200 characters.
    #[schema(
        example = "Billing API",
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: String,
    /// Unique across devx (409 if taken): lowercase letters or digits in
    /// groups joined by single dashes, at most 100 characters.
    #[schema(example = "billing-api", max_length = 100, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub slug: String,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// A lowercase word (e.g. `api`, `worker`); default `api`.
    #[schema(pattern = "^[a-z][a-z0-9_-]{0,49}$")]
    pub service_type: Option<String>,
    #[serde(default, deserialize_with = "crate::http::extract::opt_whole")]
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i32>,
    /// An http(s) URL (other characters than RFC 3986's percent-encoded)
    /// or a path such as `/health` without whitespace.
    #[schema(
        max_length = 500,
        pattern = "^(/[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*|https?://[A-Za-z0-9\\-._~:/?#@!$&'()*+,;=%]+)$"
    )]
    pub health_check_url: Option<String>,
    /// Default `inactive`.
    pub status: Option<ServiceStatus>,
    /// A template by id (404 naming the field if there is none).
    pub template_id: Option<Uuid>,
    /// A template by slug, as the catalog lists them (404 naming the field
    /// for one there is none of, or a non-public one of someone else's);
    /// with `template_id` too, both must name the same template (else a 404
    /// naming `template_id`).
    #[schema(example = "express-api", min_length = 1, max_length = 100)]
    pub template: Option<String>,
    /// At most 64 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    pub deployment_config: Option<Value>,
    /// Names to values (a value that is not a string is stored as its
    /// JSON); each name must be an environment name (`^[A-Za-z_][A-Za-z0-9_]*$`,
    /// at most 255 characters; else 422 naming `environment_vars.<name>`).
    /// Stored as the service's environment variables (`/api/services/{id}/env`),
    /// secret if the name looks like a secret's (PASSWORD, SECRET, TOKEN,
    /// KEY, URL, CREDENTIAL, PRIVATE); needs DEVX_SECRET_KEY (else 503).
    /// At most 64 KiB of JSON.
    #[schema(schema_with = crate::runtime::env::env_map_schema)]
    pub environment_vars: Option<Value>,
    /// At most 64 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    pub resource_limits: Option<Value>,
}

/// Add a service to a project.
#[utoipa::path(
    post, path = "/api/projects/{id}/services", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Project id"), IdempotencyKey),
    request_body = CreateService,
    responses(
        (status = 201, body = Service, headers(("Location" = String, description = "The new service: /api/services/{id}"), ("ETag" = String, description = "The new service's version, for If-Match"))),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Its environment variables must be sealed or opened and DEVX_SECRET_KEY is not set (or does not open them)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_service(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateService>,
) -> ApiResult<Created<Service>> {
    let empty = json!({});
    let mut v = Validator::new();
    v.text("name", &req.name, 1, 200);
    check_slug(&mut v, &req.slug);
    v.opt_text("description", req.description.as_deref(), 0, 2000);
    if let Some(t) = &req.service_type {
        check_service_type(&mut v, t);
    }
    if let Some(port) = req.port {
        v.port("port", port);
    }
    if let Some(url) = &req.health_check_url {
        check_health_url(&mut v, url);
    }
    v.opt_text("template", req.template.as_deref(), 1, 100);
    v.opt_json_object("deployment_config", req.deployment_config.as_ref(), JSON_MAX_BYTES);
    v.opt_json_object("environment_vars", req.environment_vars.as_ref(), JSON_MAX_BYTES);
    env::check_object(&mut v, "environment_vars", req.environment_vars.as_ref());
    v.opt_json_object("resource_limits", req.resource_limits.as_ref(), JSON_MAX_BYTES);
    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let project = project_for(&tx, &principal, id, false).await?;
    let template_id = match &req.template {
        Some(slug) => {
            let found = usable_template_id(&tx, slug, principal.user_id, principal.is_admin())
                .await?
                .ok_or_else(|| ApiError::no_such("template", "no such template; see GET /api/templates"))?;
            // Both given: they must name the same template (none has both otherwise).
            if req.template_id.is_some_and(|id| id != found) {
                return Err(ApiError::no_such("template_id", format!("template {slug} has another id")));
            }
            Some(found)
        }
        None => req.template_id,
    };
    let service = queries::insert_service(
        &tx,
        &NewService {
            project_id: project.project_id,
            owner_id: project.owner_id,
            template_id,
            name: req.name.trim(),
            slug: &req.slug,
            description: req.description.as_deref(),
            service_type: req.service_type.as_deref().unwrap_or("api"),
            port: req.port,
            health_check_url: req.health_check_url.as_deref(),
            status: req.status.unwrap_or(ServiceStatus::Inactive).as_str(),
            deployment_config: req.deployment_config.as_ref().unwrap_or(&empty),
            // The variables are rows of their own (`runtime::env`).
            environment_vars: &empty,
            resource_limits: req.resource_limits.as_ref().unwrap_or(&empty),
        },
    )
    .await?;
    let mut service = service;
    let keys = state.config.secret_keys.as_ref();
    if let Some(vars) = &req.environment_vars {
        env::replace_service_vars(&tx, keys, service.id, vars, &principal.actor()).await?;
    }
    service.environment_vars = env::service_view(&tx, keys, service.id).await?;
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/services/{}", service.id), service))
}

/// One service.
#[utoipa::path(
    get, path = "/api/services/{id}", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Service id")),
    responses(
        (status = 200, body = Service, headers(("ETag" = String, description = "The service's version, for If-Match"))),
        (status = 404, description = "No such service of yours", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Its environment variables must be sealed or opened and DEVX_SECRET_KEY is not set (or does not open them)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_service(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<Service>> {
    // The credential, the service and its variables in one round trip; the
    // variables are opened only for a caller who may see the service.
    let (principal, (found, vars)) = crate::db_read_as!(state, bearer, |c| async {
        tokio::try_join!(queries::get_service(c, id, false), env::service_vars(c, id))
    })?;
    let mut service = principal.visibility().filter(found).ok_or(ApiError::NotFound("service"))?;
    service.environment_vars = vars.view(state.config.secret_keys.as_ref())?;
    Ok(Tagged(service))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateService {
    /// Trimmed; 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: Option<String>,
    /// Unique across devx (409 if taken), as on create.
    #[schema(max_length = 100, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub description: Option<Option<String>>,
    #[schema(pattern = "^[a-z][a-z0-9_-]{0,49}$")]
    pub service_type: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable_whole")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 65535)]
    pub port: Option<Option<i32>>,
    /// An http(s) URL (other characters than RFC 3986's percent-encoded)
    /// or a path such as `/health` without whitespace;
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = "^(/[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*|https?://[A-Za-z0-9\\-._~:/?#@!$&'()*+,;=%]+)$")]
    pub health_check_url: Option<Option<String>>,
    /// Becoming `running` sets `deployed_at`.
    pub status: Option<ServiceStatus>,
    /// Replaces the whole object; at most 64 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    pub deployment_config: Option<Value>,
    /// Replaces the service's (non-preview) environment variables: names
    /// not in it are deleted, the others set (an existing one keeps its
    /// flags); names as on create (else 422); needs DEVX_SECRET_KEY (else
    /// 503). At most 64 KiB of JSON.
    #[schema(schema_with = crate::runtime::env::env_map_schema)]
    pub environment_vars: Option<Value>,
    /// Replaces the whole object; at most 64 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    pub resource_limits: Option<Value>,
}

/// Change a service (only the fields given).
#[utoipa::path(
    patch, path = "/api/services/{id}", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Service id"), IfMatch),
    request_body = UpdateService,
    responses(
        (status = 200, body = Service, headers(("ETag" = String, description = "The service's version after the change"))),
        (status = 404, description = "No such service of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the service no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Its environment variables must be sealed or opened and DEVX_SECRET_KEY is not set (or does not open them)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_service(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(req): Json<UpdateService>,
) -> ApiResult<Tagged<Service>> {
    let mut v = Validator::new();
    if let Some(name) = &req.name {
        v.text("name", name, 1, 200);
    }
    if let Some(slug) = &req.slug {
        check_slug(&mut v, slug);
    }
    if let Some(Some(d)) = &req.description {
        v.text("description", d, 0, 2000);
    }
    if let Some(t) = &req.service_type {
        check_service_type(&mut v, t);
    }
    if let Some(Some(port)) = req.port {
        v.port("port", port);
    }
    if let Some(Some(url)) = &req.health_check_url {
        check_health_url(&mut v, url);
    }
    v.opt_json_object("deployment_config", req.deployment_config.as_ref(), JSON_MAX_BYTES);
    v.opt_json_object("environment_vars", req.environment_vars.as_ref(), JSON_MAX_BYTES);
    env::check_object(&mut v, "environment_vars", req.environment_vars.as_ref());
    v.opt_json_object("resource_limits", req.resource_limits.as_ref(), JSON_MAX_BYTES);
    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let before = principal
        .visibility()
        .filter(queries::get_service(&tx, id, true).await?)
        .ok_or(ApiError::NotFound("service"))?;
    if_match.check("service", &before.etag())?;
    let change = ServiceChange {
        name: req.name.as_deref().map(str::trim),
        slug: req.slug.as_deref(),
        description: req.description.as_ref().map(|d| d.as_deref()),
        service_type: req.service_type.as_deref(),
        port: req.port,
        health_check_url: req.health_check_url.as_ref().map(|u| u.as_deref()),
        status: req.status.map(ServiceStatus::as_str),
        deployment_config: req.deployment_config.as_ref(),
        environment_vars: None,
        resource_limits: req.resource_limits.as_ref(),
    };
    let mut service = queries::update_service(&tx, id, &change).await?.ok_or(ApiError::NotFound("service"))?;
    let keys = state.config.secret_keys.as_ref();
    if let Some(vars) = &req.environment_vars {
        env::replace_service_vars(&tx, keys, id, vars, &principal.actor()).await?;
    }
    service.environment_vars = env::service_view(&tx, keys, id).await?;
    tx.commit().await?;
    Ok(Tagged(service))
}

/// Delete a service. Its deployments stay, without the link.
#[utoipa::path(
    delete, path = "/api/services/{id}", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Service id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such service of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_service(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    principal.visibility().filter(queries::get_service(&tx, id, true).await?).ok_or(ApiError::NotFound("service"))?;
    queries::delete_service(&tx, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_database_rule() {
        for ok in ["a", "billing-api", "v2-x-9"] {
            assert!(slug_ok(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "A", "a_b", "a b"] {
            assert!(!slug_ok(bad), "{bad}");
        }
        assert!(service_type_ok("api") && service_type_ok("web_app-2"));
        assert!(!service_type_ok("2api") && !service_type_ok("Api"));
    }

    #[test]
    fn the_health_url_pattern_is_the_rule() {
        use crate::http::json_schema::testing::{assert_agree, pattern_of, strings};
        let accepted = |value: &str| {
            let mut v = Validator::new();
            check_health_url(&mut v, value);
            v.finish().is_ok()
        };
        let fixed = [
            "/health",
            "/",
            "/a b",
            "https://example.com/h%20z",
            "http://x",
            "https://",
            "ftp://x",
            "https://[::1]",
            "health",
        ];
        let random = strings("htps:/x \u{85}é[%", 5000, 12);
        let pointer = "/properties/health_check_url/pattern";
        for pattern in [pattern_of::<CreateService>(pointer), pattern_of::<UpdateService>(pointer)] {
            assert_agree(&pattern, accepted, fixed.into_iter().chain(random.iter().map(String::as_str)));
        }
    }
}
