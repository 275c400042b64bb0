//! Projects over HTTP: list, create (optionally from a template, in one
//! transaction with its code context, the template's usage count and a
//! generation record), read with counts, change, delete; and the caller's
//! summary. Every route on a project asks `access::project_for` first.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Ref, Schema, SchemaType, Type};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::access;
use super::model::{
    GenerationStatus, Project, ProjectDetail, ProjectStatus, TemplateSource, UserSummary, is_kebab_case, render,
};
use super::path;
use super::queries::{self, NewGeneration, NewProject, ProjectChange, ProjectFilter};
use crate::accounts::{Bearer, PersonRef, Principal, resolve_person};
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::json_schema;
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, ETag, IfMatch, Json, Path, Query, Tagged};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, update_project, delete_project))
        .routes(routes!(me_summary))
        .merge(super::context::routes())
        .merge(super::modifications::routes())
        .merge(super::generations::routes())
}

/// Largest `settings` / `metadata` object, serialized.
const SMALL_JSON: usize = 64 * 1024;
/// Largest template variable value.
const VAR_MAX: usize = 1000;

pub(super) use crate::http::pagination::TimeKey;

pub(super) fn empty_object() -> Value {
    Value::Object(Default::default())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProjectListParams {
    /// Only this user's projects, by user id or an account's email (an
    /// email no account has is a 404 naming the field). Admins see anyone's;
    /// everyone else sees only their own, so someone else's gives an empty
    /// page.
    #[param(value_type = Option<PersonRef>)]
    pub owner_id: Option<String>,
    pub status: Option<ProjectStatus>,
    /// Project type, e.g. `nextjs`.
    #[serde(rename = "type")]
    #[param(max_length = 100, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub project_type: Option<String>,
    /// Slug of the template the project was made from.
    #[param(max_length = 100, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub template: Option<String>,
    /// Part of the name, any case.
    #[param(max_length = 200, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub q: Option<String>,
    /// Files the project's codebase must hold, as a JSON object of paths to
    /// contents, e.g. `{"package.json":"..."}` (JSONB containment). Any JSON
    /// object of at most 64 KiB is taken; the schema states the useful part
    /// (string values, simple escapes) in a length any URL can carry.
    #[param(
        max_length = 4096,
        pattern = r#"^\{[ \t\n\r]*(?:"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt])*"[ \t\n\r]*:[ \t\n\r]*"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt])*"[ \t\n\r]*(?:,[ \t\n\r]*"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt])*"[ \t\n\r]*:[ \t\n\r]*"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt])*"[ \t\n\r]*)*)?\}$"#
    )]
    pub codebase_contains: Option<String>,
    /// A dependency the project's code context lists.
    #[param(max_length = 200, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub dependency: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The caller's projects (an admin's: everyone's), newest first.
#[utoipa::path(
    get, path = "/api/projects", tag = "projects", security(("bearer" = ["read"])),
    params(ProjectListParams),
    responses(
        (status = 200, body = Page<Project>),
        (status = 400, description = "Unknown filter, bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`owner_id` is an email no account has", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter value, or `owner_id` neither a user id nor an email", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_projects(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<ProjectListParams>,
) -> ApiResult<Json<Page<Project>>> {
    let PageRequest { limit, after } = PageRequest::new(p.limit, p.cursor.as_deref())?;
    let mut v = Validator::new();
    v.opt_text("type", p.project_type.as_deref(), 1, 100);
    v.opt_text("template", p.template.as_deref(), 1, 100);
    v.opt_text("q", p.q.as_deref(), 1, 200);
    v.opt_text("dependency", p.dependency.as_deref(), 1, 200);
    let codebase_contains = match p.codebase_contains.as_deref() {
        None => None,
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(doc) => {
                v.json_object("codebase_contains", &doc, SMALL_JSON);
                Some(doc)
            }
            Err(e) => {
                v.error("codebase_contains", format!("must be a JSON object such as {{\"README.md\":\"...\"}} ({e})"));
                None
            }
        },
    };
    v.finish()?;
    let owner_id = match &p.owner_id {
        Some(named) => Some(resolve_person(&state.db.client().await?, "owner_id", named).await?),
        None => None,
    };
    let filter = ProjectFilter {
        owner: principal.visibility().owner(),
        owner_id,
        status: p.status.map(|s| s.as_str().to_string()),
        project_type: p.project_type,
        template: p.template,
        q: p.q,
        codebase_contains,
        dependency: p.dependency,
        after,
        limit,
    };
    let rows = if filter.walks_an_index() {
        crate::db_read_shared!(state.db, |c| queries::list_projects(c, &filter))?
    } else {
        crate::db_read!(state.db, |c| queries::list_projects(c, &filter))?
    };
    Ok(Json(Page::from_rows(rows, limit, |p| (p.created_at, p.id))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    #[schema(
        example = "My shop",
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// Kind of project, e.g. `nextjs`, `api`.
    #[serde(rename = "type")]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub project_type: Option<String>,
    /// At most 64 KiB serialized.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub settings: Value,
    /// At most 64 KiB serialized.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Slug of a template to start from: its files become the codebase
    /// (another is a 404).
    pub template: Option<String>,
    /// The container the project lives in: one of the caller's (an admin:
    /// anyone's), not deleted. Another, or a missing one, is a 404 naming
    /// the field; a deleted one a 409.
    pub container_id: Option<Uuid>,
    /// Values for the template's `{{VAR}}` placeholders. Its required
    /// variables must be given and only the ones it declares; optional ones
    /// default. Without a template there is nothing to fill: only `{}` (or
    /// nothing) is taken then, as the request body's schema states.
    #[schema(value_type = Option<TemplateVariables>)]
    pub variables: Option<BTreeMap<String, Value>>,
}

crate::json_schema! {
    /// The values a project gives a template's placeholders.
    TemplateVariables = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "Placeholder name -> value: a string of at most 1000 characters, a number or a boolean; `PROJECT_NAME` \
             is kebab-case (lowercase letters and digits joined by dashes, at most 100 characters).",
        ))
        .property(
            "PROJECT_NAME",
            json_schema::string().max_length(Some(100)).pattern(Some(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")),
        )
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Number, Type::Boolean]))
                .max_length(Some(VAR_MAX)),
        ))
        .examples([json!({"PROJECT_NAME": "my-shop", "PORT": 8080})]);
}

/// The body of `POST /api/projects`: a [`CreateProject`], and its rule
/// across fields that a derived schema cannot state: `variables` with
/// values only with a `template`.
pub enum CreateProjectBody {}

impl utoipa::PartialSchema for CreateProjectBody {
    fn schema() -> RefOr<Schema> {
        let from_template = ObjectBuilder::new().property("template", json_schema::string()).required("template");
        let no_values = ObjectBuilder::new().property(
            "variables",
            ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Object, Type::Null])).max_properties(Some(0)),
        );
        AllOfBuilder::new()
            .item(Ref::from_schema_name(CreateProject::name()))
            .item(AnyOfBuilder::new().item(from_template).item(no_values))
            .into()
    }
}

impl utoipa::ToSchema for CreateProjectBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((CreateProject::name().into_owned(), CreateProject::schema()));
        CreateProject::schemas(schemas);
    }
}

/// A template's files with the variables substituted, and the variables used.
struct Rendered {
    files: BTreeMap<String, String>,
    variables: BTreeMap<String, String>,
}

/// Checks the given variables against what the template declares and
/// renders its files; problems go to `v`, named `variables.<NAME>`.
fn render_template(t: &TemplateSource, given: &BTreeMap<String, Value>, v: &mut Validator) -> Rendered {
    let declared = || {
        let mut names: Vec<&str> = t.required_vars.iter().map(String::as_str).collect();
        names.extend(t.optional_vars.keys().map(String::as_str));
        names.join(", ")
    };
    let mut variables = BTreeMap::new();
    for (name, value) in given {
        let field = format!("variables.{name}");
        if !t.required_vars.contains(name) && !t.optional_vars.contains_key(name) {
            v.error(&field, format!("is not a variable of template {} (it declares {})", t.slug, declared()));
            continue;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                v.error(&field, "must be a string, a number or a boolean");
                continue;
            }
        };
        if text.contains('\0') || text.chars().count() > VAR_MAX {
            v.error(&field, format!("must be at most {VAR_MAX} characters without NUL"));
            continue;
        }
        if name == "PROJECT_NAME" && !is_kebab_case(&text) {
            v.error(&field, "must be kebab-case: lowercase letters and digits joined by dashes, e.g. my-shop");
            continue;
        }
        variables.insert(name.clone(), text);
    }
    for name in &t.required_vars {
        if !given.contains_key(name) {
            v.error(&format!("variables.{name}"), format!("is required by template {}", t.slug));
        }
    }
    for (name, default) in &t.optional_vars {
        if !given.contains_key(name) {
            variables.insert(name.clone(), default.clone());
        }
    }
    let mut files = BTreeMap::new();
    for (path, content) in &t.files {
        let path = render(path, &variables);
        if let Some(problem) = path::problem(&path) {
            v.error("variables", format!("make the file path {path:?}, which {problem}"));
        }
        if files.insert(path.clone(), render(content, &variables)).is_some() {
            v.error("variables", format!("make two files land at {path:?}"));
        }
    }
    Rendered { files, variables }
}

/// Create a project, optionally from a template.
///
/// From a template, in one transaction: the project, its code context with
/// the template's files (placeholders substituted), the template's usage
/// count, and a `project` generation record.
#[utoipa::path(
    post, path = "/api/projects", tag = "projects", security(("bearer" = ["write"])),
    params(IdempotencyKey),
    request_body = CreateProjectBody,
    responses(
        (status = 201, body = ProjectDetail, headers(("Location" = String, description = "The new project: /api/projects/{id}"), ("ETag" = String, description = "The new project's version, for If-Match"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such container of yours (`container_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The container is deleted; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, unknown template, missing or invalid variables; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_project(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CreateProject>,
) -> ApiResult<Created<ProjectDetail>> {
    let started = Instant::now();
    let mut v = Validator::new();
    v.text("name", &req.name, 1, 200);
    v.opt_text("description", req.description.as_deref(), 0, 5000);
    v.opt_text("type", req.project_type.as_deref(), 1, 100);
    v.json_object("settings", &req.settings, SMALL_JSON);
    v.json_object("metadata", &req.metadata, SMALL_JSON);
    // An empty object fills nothing either way; values would be lost.
    if req.variables.as_ref().is_some_and(|vars| !vars.is_empty()) && req.template.is_none() {
        v.error("variables", "are only used with a template");
    }

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let mut from_template = None;
    if let Some(slug) = &req.template {
        match queries::usable_template(&tx, slug, principal.user_id, principal.is_admin()).await? {
            None => {
                v.finish()?;
                return Err(ApiError::no_such("template", "no such template; see GET /api/templates"));
            }
            Some(t) => {
                let rendered = render_template(&t, req.variables.as_ref().unwrap_or(&BTreeMap::new()), &mut v);
                from_template = Some((t, rendered));
            }
        }
    }
    v.finish()?;
    if let Some(container_id) = req.container_id {
        check_container(&tx, &principal, container_id).await?;
    }

    let project = queries::insert_project(
        &tx,
        &NewProject {
            owner_id: principal.user_id,
            name: req.name.trim(),
            description: req.description.as_deref().map(str::trim),
            project_type: req.project_type.as_deref().map(str::trim),
            template_id: from_template.as_ref().map(|(t, _)| t.id),
            container_id: req.container_id,
            metadata: &req.metadata,
            settings: &req.settings,
        },
    )
    .await?;
    let codebase = match &from_template {
        Some((_, rendered)) => serde_json::to_value(&rendered.files).map_err(ApiError::internal)?,
        None => empty_object(),
    };
    queries::insert_context(&tx, project.id, &codebase).await?;
    if let Some((t, rendered)) = &from_template {
        queries::count_template_use(&tx, t.id).await?;
        let input_params = json!({"name": project.name, "template": t.slug, "variables": rendered.variables});
        let output_files = json!(rendered.files.keys().collect::<Vec<_>>());
        queries::insert_generation(
            &tx,
            &NewGeneration {
                user_id: principal.user_id,
                template_id: Some(t.id),
                project_id: Some(project.id),
                service_id: None,
                generation_type: "project",
                input_params: &input_params,
                output_files: &output_files,
                status: GenerationStatus::Completed,
                error_message: None,
                execution_time_ms: Some(i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX)),
            },
        )
        .await?;
    }
    let detail =
        queries::project_detail(&tx, project.id).await?.ok_or_else(|| ApiError::internal("new project vanished"))?;
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/projects/{}", detail.project.id), detail))
}

/// A project with the counts of what belongs to it.
#[utoipa::path(
    get, path = "/api/projects/{id}", tag = "projects", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 200, body = ProjectDetail, headers(("ETag" = String, description = "The project's version, for If-Match"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_project(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<ProjectDetail>> {
    let (principal, detail) = crate::db_read_as!(state, bearer, |c| queries::project_detail(c, id))?;
    // Another user's project is read and dropped, never answered: a 404 like a missing one.
    detail.filter(|d| principal.can_see(d.project.owner_id)).map(Tagged).ok_or(ApiError::NotFound("project"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 5000)]
    pub description: Option<Option<String>>,
    /// `null` clears it.
    #[serde(rename = "type", default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub project_type: Option<Option<String>>,
    pub status: Option<ProjectStatus>,
    /// Replaces the whole object (at most 64 KiB serialized).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    /// Replaces the whole object (at most 64 KiB serialized).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// The container the project lives in: one of the caller's (an admin:
    /// anyone's), not deleted; another, or a missing one, is a 404 naming
    /// the field, a deleted one a 409. `null`: it lives in none.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub container_id: Option<Option<Uuid>>,
}

/// Change a project's name, description, type, status (active or
/// archived), settings, metadata or container. Only the fields given change.
#[utoipa::path(
    patch, path = "/api/projects/{id}", tag = "projects", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Project id"), IfMatch),
    request_body = UpdateProject,
    responses(
        (status = 200, body = ProjectDetail, headers(("ETag" = String, description = "The project's version after the change"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project of yours; or no such container of yours (`container_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The container is deleted", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the project no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_project(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(req): Json<UpdateProject>,
) -> ApiResult<Tagged<ProjectDetail>> {
    let mut v = Validator::new();
    v.opt_text("name", req.name.as_deref(), 1, 200);
    if let Some(Some(d)) = &req.description {
        v.text("description", d, 0, 5000);
    }
    if let Some(Some(t)) = &req.project_type {
        v.text("type", t, 1, 100);
    }
    if let Some(s) = &req.settings {
        v.json_object("settings", s, SMALL_JSON);
    }
    if let Some(m) = &req.metadata {
        v.json_object("metadata", m, SMALL_JSON);
    }
    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    access::project_for(&tx, &principal, id, true).await?;
    if if_match.is_conditional() {
        let version = queries::project_updated_at(&tx, id).await?.ok_or(ApiError::NotFound("project"))?;
        if_match.check("project", &ETag::from_timestamp(version))?;
    }
    if let Some(Some(container_id)) = req.container_id {
        check_container(&tx, &principal, container_id).await?;
    }
    let change = ProjectChange {
        name: req.name.as_deref().map(str::trim),
        description: req.description.as_ref().map(|d| d.as_deref().map(str::trim)),
        project_type: req.project_type.as_ref().map(|t| t.as_deref().map(str::trim)),
        status: req.status.map(ProjectStatus::as_str),
        metadata: req.metadata.as_ref(),
        settings: req.settings.as_ref(),
        container_id: req.container_id,
    };
    let unchanged = change.name.is_none()
        && change.description.is_none()
        && change.project_type.is_none()
        && change.status.is_none()
        && change.metadata.is_none()
        && change.settings.is_none()
        && change.container_id.is_none();
    if !unchanged {
        queries::update_project(&tx, id, &change).await?;
    }
    let detail = queries::project_detail(&tx, id).await?.ok_or(ApiError::NotFound("project"))?;
    tx.commit().await?;
    Ok(Tagged(detail))
}

/// A container the caller may house a project in: one they see (another
/// user's is a 404 naming the field, as a missing one), not deleted (409).
async fn check_container(tx: &impl crate::db::Queryable, principal: &Principal, id: Uuid) -> ApiResult<()> {
    match queries::container_for_project(tx, id).await? {
        Some((owner, deleted)) if principal.can_see(owner) => {
            if deleted {
                Err(ApiError::conflict(
                    "container_id",
                    "the container is deleted; name a live one, or register one with POST /api/containers",
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(ApiError::no_such("container_id", "no such container of yours; see GET /api/containers")),
    }
}

/// Delete a project and everything that belongs to it (code context,
/// modifications, services, containers, deployments, chat, files, tasks).
/// Generation records stay, without the link.
#[utoipa::path(
    delete, path = "/api/projects/{id}", tag = "projects", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Project id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_project(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    access::project_for(&tx, &principal, id, true).await?;
    queries::delete_project(&tx, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's projects and running containers, counted, and their latest
/// activity (`devx.user_projects`).
#[utoipa::path(
    get, path = "/api/me/summary", tag = "projects", security(("bearer" = ["read"])),
    responses(
        (status = 200, body = UserSummary),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn me_summary(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<UserSummary>> {
    let summary = crate::db_read!(state.db, |c| queries::user_summary(c, principal.user_id))?;
    summary.map(Json).ok_or(ApiError::NotFound("user"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::json_schema::testing::{assert_agree, param_pattern, pattern_of, strings};

    #[test]
    fn the_project_name_variable_pattern_is_the_rule() {
        let pattern = pattern_of::<TemplateVariables>("/properties/PROJECT_NAME/pattern");
        let random = strings("az09-A_", 5000, 6);
        let samples = ["my-shop", "a--b", "-a", "a-", ""].into_iter();
        // Length aside, which the document states with maxLength.
        assert_agree(&pattern, is_kebab_case, samples.chain(random.iter().map(String::as_str)));
    }

    /// What the pattern lets through, the server takes as a filter.
    #[test]
    fn what_the_codebase_filter_pattern_accepts_is_a_json_object() {
        let pattern = param_pattern::<ProjectListParams>("codebase_contains");
        let fixed = [r#"{}"#, r#"{"README.md": "x"}"#, r#"{ "a":"\"\\\/\n" , "b":"" }"#, r#"{"a":"é"}"#];
        let random = strings(r#"{}":, \abn/"#, 50_000, 14);
        let mut matched = 0;
        for sample in fixed.into_iter().chain(random.iter().map(String::as_str)) {
            if pattern.is_match(sample) {
                matched += 1;
                let doc: Value = serde_json::from_str(sample).unwrap_or_else(|e| panic!("{sample:?}: {e}"));
                let mut v = Validator::new();
                v.json_object("codebase_contains", &doc, SMALL_JSON);
                assert!(v.finish().is_ok(), "{sample:?}");
            }
        }
        assert!(matched > 20, "only {matched} samples matched");
    }
}
