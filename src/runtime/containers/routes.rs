//! Containers over HTTP: listed and registered under a project or on their
//! own (`POST /api/containers`, without a project), the caller's across
//! projects, and their lifecycle actions.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{Action, Container, ContainerStatus};
use super::queries::{self, ContainerChange, NewContainer};
use crate::accounts::{Bearer, Principal};
use crate::db::DbError;
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, IfMatch, Json, Path, Query, Tagged, Versioned};
use crate::projects::access::{find_project, project_for};
use crate::runtime::{JSON_MAX_BYTES, TimeKey};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_project_containers, create_container))
        .routes(routes!(list_my_containers, create_own_container))
        .routes(routes!(get_container, update_container))
        .routes(routes!(start_container))
        .routes(routes!(stop_container))
        .routes(routes!(delete_container))
}

const RUNNING_PORT_KEY: &str = "containers_running_port_key";

/// 409 for a port another running container holds, naming the port.
fn port_conflict(e: DbError, port: Option<i32>) -> ApiError {
    match &e {
        DbError::UniqueViolation { constraint } if constraint == RUNNING_PORT_KEY => {
            let port = port.map_or_else(|| "this port".to_string(), |p| format!("port {p}"));
            ApiError::conflict(
                "assigned_port",
                format!("{port} is already assigned to another running container; stop that one or pick another port"),
            )
        }
        _ => e.into(),
    }
}

fn illegal(action: Action, current: ContainerStatus) -> ApiError {
    let allowed: Vec<&str> = action.allowed_from().iter().map(|s| s.as_str()).collect();
    ApiError::conflict(
        "status",
        format!(
            "cannot {} a container that is {}: {} is allowed only from {}",
            action.verb(),
            current.as_str(),
            action.verb(),
            allowed.join(", ")
        ),
    )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProjectContainerParams {
    pub status: Option<ContainerStatus>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A project's containers, newest first (deleted ones only with `status=deleted`).
#[utoipa::path(
    get, path = "/api/projects/{id}/containers", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Project id"), ProjectContainerParams),
    responses(
        (status = 200, body = Page<Container>),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_project_containers(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Query(p): Query<ProjectContainerParams>,
) -> ApiResult<Json<Page<Container>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let status = p.status.map(ContainerStatus::as_str);
    let rows = crate::db_read!(state.db, |c| async {
        let Some(project) = find_project(c, &principal, id, false).await? else { return Ok(None) };
        queries::list_project_containers(c, project.project_id, status, after, limit).await.map(Some)
    })?
    .ok_or(ApiError::NotFound("project"))?;
    Ok(Json(Page::from_rows(rows, limit, |c| (c.created_at, c.id))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MyContainerParams {
    pub status: Option<ContainerStatus>,
    /// `true`: only active containers (created or running), from the
    /// `devx.active_containers` view, with their project's name; `status`
    /// may then be `created` or `running` (another is a 400).
    pub active: Option<bool>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The caller's containers (an admin's: everyone's) across projects and without one, newest first
/// (deleted ones only with `status=deleted`).
#[utoipa::path(
    get, path = "/api/containers", tag = "runtime", security(("bearer" = ["read"])),
    params(MyContainerParams),
    responses(
        (status = 200, body = Page<Container>),
        (status = 400, description = "Bad filter or cursor", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_my_containers(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<MyContainerParams>,
) -> ApiResult<Json<Page<Container>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let owner = principal.visibility();
    let rows = if p.active == Some(true) {
        if p.status.is_some_and(|s| !matches!(s, ContainerStatus::Created | ContainerStatus::Running)) {
            return Err(ApiError::BadRequest(
                "active=true lists created and running containers; drop `status` or `active`".into(),
            ));
        }
        let status = p.status.map(ContainerStatus::as_str);
        crate::db_read!(state.db, |c| queries::list_active_containers(c, owner, status, after, limit))?
    } else {
        let status = p.status.map(ContainerStatus::as_str);
        crate::db_read!(state.db, |c| queries::list_visible_containers(c, owner, status, after, limit))?
    };
    Ok(Json(Page::from_rows(rows, limit, |c| (c.created_at, c.id))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContainer {
    /// The runtime's id for it (unique; 409 if known already). Trimmed; 1 to
    /// 255 characters.
    #[schema(
        example = "3f4e9a1c2b7d",
        min_length = 1,
        max_length = 255,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub container_id: String,
    /// Trimmed; 1 to 255 characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: String,
    /// Trimmed; 1 to 255 characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub image_name: Option<String>,
    #[serde(default, deserialize_with = "crate::http::extract::opt_whole")]
    #[schema(minimum = 1, maximum = 65535)]
    pub assigned_port: Option<i32>,
    /// An http(s) URL of at most 2048 characters (other characters than
    /// RFC 3986's percent-encoded).
    #[schema(max_length = 2048, pattern = "^https?://[A-Za-z0-9\\-._~:/?#@!$&'()*+,;=%]+$")]
    pub url: Option<String>,
    /// At most 64 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    pub labels: Option<Value>,
    /// At most 64 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// Register a container for a project; it starts as `created`.
#[utoipa::path(
    post, path = "/api/projects/{id}/containers", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Project id"), IdempotencyKey),
    request_body = CreateContainer,
    responses(
        (status = 201, body = Container, headers(("Location" = String, description = "The new container: /api/containers/{id}"), ("ETag" = String, description = "The new container's version, for If-Match"))),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The runtime id is known already; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_container(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateContainer>,
) -> ApiResult<Created<Container>> {
    validate_new(&req)?;
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let project = project_for(&tx, &principal, id, false).await?;
    let container = insert(&tx, &req, Some(project.project_id), project.owner_id).await?;
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/containers/{}", container.id), container))
}

/// Register a container of the caller's own, before and without a project;
/// it starts as `created`. A project can then name it as the container it
/// lives in (`container_id` on the project).
#[utoipa::path(
    post, path = "/api/containers", tag = "runtime", security(("bearer" = ["write"])),
    params(IdempotencyKey),
    request_body = CreateContainer,
    responses(
        (status = 201, body = Container, headers(("Location" = String, description = "The new container: /api/containers/{id}"), ("ETag" = String, description = "The new container's version, for If-Match"))),
        (status = 409, description = "The runtime id is known already; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_own_container(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CreateContainer>,
) -> ApiResult<Created<Container>> {
    validate_new(&req)?;
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let container = insert(&tx, &req, None, principal.user_id).await?;
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/containers/{}", container.id), container))
}

fn validate_new(req: &CreateContainer) -> ApiResult<()> {
    let mut v = Validator::new();
    v.text("container_id", &req.container_id, 1, 255);
    v.text("name", &req.name, 1, 255);
    v.opt_text("image_name", req.image_name.as_deref(), 1, 255);
    if let Some(port) = req.assigned_port {
        v.port("assigned_port", port);
    }
    if let Some(url) = &req.url {
        v.url("url", url);
    }
    v.opt_json_object("labels", req.labels.as_ref(), JSON_MAX_BYTES);
    v.opt_json_object("metadata", req.metadata.as_ref(), JSON_MAX_BYTES);
    v.finish()
}

async fn insert(
    tx: &impl crate::db::Queryable,
    req: &CreateContainer,
    project_id: Option<Uuid>,
    owner_id: Uuid,
) -> ApiResult<Container> {
    let empty = json!({});
    Ok(queries::insert_container(
        tx,
        &NewContainer {
            project_id,
            owner_id,
            container_id: req.container_id.trim(),
            name: req.name.trim(),
            image_name: req.image_name.as_deref().map(str::trim),
            assigned_port: req.assigned_port,
            url: req.url.as_deref(),
            labels: req.labels.as_ref().unwrap_or(&empty),
            metadata: req.metadata.as_ref().unwrap_or(&empty),
        },
    )
    .await?)
}

/// One container.
#[utoipa::path(
    get, path = "/api/containers/{id}", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Container id (devx's, not the runtime's)")),
    responses(
        (status = 200, body = Container, headers(("ETag" = String, description = "The container's version, for If-Match"))),
        (status = 404, description = "No such container of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_container(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<Container>> {
    let (principal, found) = crate::db_read_as!(state, bearer, |c| queries::get_container(c, id, false))?;
    principal.visibility().filter(found).map(Tagged).ok_or(ApiError::NotFound("container"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContainer {
    /// Trimmed; 1 to 255 characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: Option<String>,
    /// Trimmed; 1 to 255 characters. `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255, pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]")]
    pub image_name: Option<Option<String>>,
    /// `null` clears it; 409 if another running container holds the port.
    #[serde(default, deserialize_with = "crate::http::extract::nullable_whole")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 65535)]
    pub assigned_port: Option<Option<i32>>,
    /// An http(s) URL of at most 2048 characters (other characters than
    /// RFC 3986's percent-encoded). `null`
    /// clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^https?://[A-Za-z0-9\\-._~:/?#@!$&'()*+,;=%]+$")]
    pub url: Option<Option<String>>,
    /// Replaces the whole object; at most 64 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    pub labels: Option<Value>,
    /// Replaces the whole object; at most 64 KiB of JSON.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// Change a container's labels, metadata, name, image, port or URL. The
/// status changes only through start, stop and delete.
#[utoipa::path(
    patch, path = "/api/containers/{id}", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Container id"), IfMatch),
    request_body = UpdateContainer,
    responses(
        (status = 200, body = Container, headers(("ETag" = String, description = "The container's version after the change"))),
        (status = 404, description = "No such container of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Deleted, or the port is held by another running container", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the container no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_container(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(req): Json<UpdateContainer>,
) -> ApiResult<Tagged<Container>> {
    let mut v = Validator::new();
    if let Some(name) = &req.name {
        v.text("name", name, 1, 255);
    }
    if let Some(Some(image)) = &req.image_name {
        v.text("image_name", image, 1, 255);
    }
    if let Some(Some(port)) = req.assigned_port {
        v.port("assigned_port", port);
    }
    if let Some(Some(url)) = &req.url {
        v.url("url", url);
    }
    v.opt_json_object("labels", req.labels.as_ref(), JSON_MAX_BYTES);
    v.opt_json_object("metadata", req.metadata.as_ref(), JSON_MAX_BYTES);
    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let before = principal
        .visibility()
        .filter(queries::get_container(&tx, id, true).await?)
        .ok_or(ApiError::NotFound("container"))?;
    if_match.check("container", &before.etag())?;
    let change = ContainerChange {
        name: req.name.as_deref().map(str::trim),
        image_name: req.image_name.as_ref().map(|i| i.as_deref().map(str::trim)),
        assigned_port: req.assigned_port,
        url: req.url.as_ref().map(|u| u.as_deref()),
        labels: req.labels.as_ref(),
        metadata: req.metadata.as_ref(),
    };
    let port = req.assigned_port.unwrap_or(before.assigned_port);
    let updated = queries::update_container(&tx, id, &change).await.map_err(|e| port_conflict(e, port))?;
    let Some(container) = updated else {
        return Err(ApiError::conflict("status", "the container is deleted; a deleted container cannot be changed"));
    };
    tx.commit().await?;
    Ok(Tagged(container))
}

/// Runs one lifecycle action as a conditional update.
async fn act(state: AppState, principal: Principal, id: Uuid, action: Action) -> ApiResult<Json<Container>> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let before = principal
        .visibility()
        .filter(queries::get_container(&tx, id, false).await?)
        .ok_or(ApiError::NotFound("container"))?;
    match queries::transition(&tx, id, action).await {
        Ok(Some(container)) => {
            tx.commit().await?;
            Ok(Json(container))
        }
        Ok(None) => {
            // Another request may have moved it since it was read: report
            // the status it has now.
            let current = queries::get_container(&tx, id, false).await?.map_or(before.status, |(c, _)| c.status);
            Err(illegal(action, current))
        }
        Err(e) => Err(port_conflict(e, before.assigned_port)),
    }
}

/// Start a container: `created` or `stopped` -> `running` (sets `started_at`).
#[utoipa::path(
    post, path = "/api/containers/{id}/start", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Container id"), IdempotencyKey),
    responses(
        (status = 200, body = Container),
        (status = 404, description = "No such container of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not startable from its status, or its port is held by another running container; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn start_container(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Container>> {
    act(state, principal, id, Action::Start).await
}

/// Stop a container: `running` -> `stopped` (sets `stopped_at`).
#[utoipa::path(
    post, path = "/api/containers/{id}/stop", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Container id")),
    responses(
        (status = 200, body = Container),
        (status = 404, description = "No such container of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not running", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn stop_container(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Container>> {
    act(state, principal, id, Action::Stop).await
}

/// Delete a container: any status -> `deleted` (final). The record stays,
/// out of the default and active lists, until retention removes it.
#[utoipa::path(
    post, path = "/api/containers/{id}/delete", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Container id")),
    responses(
        (status = 200, body = Container),
        (status = 404, description = "No such container of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already deleted", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_container(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Container>> {
    act(state, principal, id, Action::Delete).await
}
