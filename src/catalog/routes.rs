//! The catalog over HTTP. Reading is public; writing is for admins. When the
//! database cannot be reached, reads are answered from the built-in catalog
//! with the header `X-Devx-Source: builtin-fallback`, so that clients can
//! still offer templates during an outage and know the list may be stale.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{
    Category, CategoryInput, CategoryPatch, Complexity, OptionalVar, Technology, TechnologyInput, TechnologyPatch,
    Template, TemplateSummary, VersionedCategory, VersionedTechnology,
};
use super::queries::{self, TemplateFilter, TemplateWrite};
use super::{admin as ops, builtin};
use crate::accounts::{AdminPrincipal, Principal};
use crate::db::{DbError, Visibility};
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::json_schema;
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, ETag, IfMatch, Json, Path, Query, Tagged};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(list_categories, create_category))
        .routes(routes!(get_category, update_category, delete_category))
        .routes(routes!(list_technologies, create_technology))
        .routes(routes!(get_technology, update_technology, delete_technology))
        .routes(routes!(get_template, update_template, delete_template))
}

const SOURCE: HeaderName = HeaderName::from_static("x-devx-source");

/// The database's answer, or the built-in one when the database is down.
fn or_fallback<T: serde::Serialize>(
    result: Result<T, DbError>,
    fallback: impl FnOnce() -> ApiResult<T>,
) -> ApiResult<Response> {
    match result {
        Ok(value) => Ok(Json(value).into_response()),
        Err(DbError::Unavailable(reason)) => {
            tracing::warn!(%reason, "database unavailable; serving the built-in catalog");
            let mut response = Json(fallback()?).into_response();
            response.headers_mut().insert(SOURCE, HeaderValue::from_static("builtin-fallback"));
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TemplateListParams {
    /// Category slug, e.g. `web`.
    #[param(max_length = 100, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub category: Option<String>,
    /// Technology slug in the template's stack, e.g. `react`.
    #[param(max_length = 100, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub technology: Option<String>,
    #[param(max_length = 100, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub tag: Option<String>,
    pub complexity: Option<Complexity>,
    /// Part of the name or description, any case.
    #[param(max_length = 200, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Templates by slug: the public ones, and for a signed-in caller also
/// their own non-public ones (every one for an administrator). No token is
/// needed; a token that is sent must be valid.
#[utoipa::path(
    get, path = "/api/templates", tag = "catalog", security((), ("bearer" = ["read"])),
    params(TemplateListParams),
    responses(
        (status = 200, body = Page<TemplateSummary>, description = "A page of templates. `X-Devx-Source: builtin-fallback` when served from the built-in catalog"),
        (status = 400, description = "Unknown filter or bad cursor", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_templates(
    State(state): State<AppState>,
    caller: Option<Principal>,
    Query(p): Query<TemplateListParams>,
) -> ApiResult<Response> {
    let viewer = caller.map(|c| c.visibility());
    let PageRequest { limit, after } = PageRequest::new(p.limit, p.cursor.as_deref())?;
    let mut v = Validator::new();
    for (field, value) in [("category", &p.category), ("technology", &p.technology), ("tag", &p.tag)] {
        v.opt_text(field, value.as_deref(), 1, 100);
    }
    v.opt_text("q", p.q.as_deref(), 1, 200);
    v.finish()?;
    let filter = TemplateFilter {
        category: p.category,
        technology: p.technology,
        tag: p.tag,
        complexity: p.complexity,
        q: p.q,
        after,
        limit,
    };
    let result = crate::db_read!(state.db, |c| queries::list_templates(c, viewer, &filter));
    let result = result.map(|rows| Page::from_rows(rows, limit, |t| t.slug.clone()));
    or_fallback(result, || {
        let q = filter.q.as_deref().map(str::to_lowercase);
        let rows = builtin::catalog()
            .templates
            .iter()
            .map(|t| &t.summary)
            .filter(|t| filter.category.as_ref().is_none_or(|c| &t.category == c))
            .filter(|t| filter.technology.as_ref().is_none_or(|x| t.tech_stack.contains(x)))
            .filter(|t| filter.tag.as_ref().is_none_or(|x| t.tags.contains(x)))
            .filter(|t| filter.complexity.is_none_or(|x| t.complexity == x))
            .filter(|t| {
                q.as_ref().is_none_or(|q| t.name.to_lowercase().contains(q) || t.description.to_lowercase().contains(q))
            })
            .filter(|t| filter.after.as_ref().is_none_or(|after| &t.slug > after))
            .take(usize::try_from(limit + 1).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        Ok(Page::from_rows(rows, limit, |t| t.slug.clone()))
    })
}

/// One template with its files. A non-public template is a 404 for anyone
/// but its creator and administrators.
#[utoipa::path(
    get, path = "/api/templates/{slug}", tag = "catalog", security((), ("bearer" = ["read"])),
    params(("slug" = String, Path, description = "Template slug")),
    responses(
        (status = 200, body = Template, headers(("ETag" = String, description = "The template's version, for If-Match (not sent with the built-in fallback)"))),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_template(
    State(state): State<AppState>,
    caller: Option<Principal>,
    Path(slug): Path<String>,
) -> ApiResult<Response> {
    let viewer = caller.map(|c| c.visibility());
    let result = crate::db_read!(state.db, |c| queries::versioned_template(c, viewer, &slug, false));
    let result = match result {
        Ok(None) => return Err(ApiError::NotFound("template")),
        Ok(Some((t, version))) => return Ok((ETag::from_timestamp(version), Json(t)).into_response()),
        Err(e) => Err(e),
    };
    or_fallback(result, || {
        builtin::catalog()
            .templates
            .iter()
            .find(|t| t.summary.slug == slug)
            .cloned()
            .ok_or(ApiError::NotFound("template"))
    })
}

/// Categories with their number of public templates.
#[utoipa::path(
    get, path = "/api/templates/categories", tag = "catalog",
    responses((status = 200, body = Vec<Category>))
)]
async fn list_categories(State(state): State<AppState>) -> ApiResult<Response> {
    let result = crate::db_read!(state.db, |c| queries::list_categories(c));
    or_fallback(result, || Ok(builtin::catalog().categories.clone()))
}

/// Technologies with their number of public templates.
#[utoipa::path(
    get, path = "/api/templates/technologies", tag = "catalog",
    responses((status = 200, body = Vec<Technology>))
)]
async fn list_technologies(State(state): State<AppState>) -> ApiResult<Response> {
    let result = crate::db_read!(state.db, |c| queries::list_technologies(c));
    or_fallback(result, || Ok(builtin::catalog().technologies.clone()))
}

/// One category with its number of public templates.
#[utoipa::path(
    get, path = "/api/templates/categories/{slug}", tag = "catalog",
    params(("slug" = String, Path, description = "Category slug")),
    responses(
        (status = 200, body = Category, headers(("ETag" = String, description = "The category's version, for If-Match"))),
        (status = 404, description = "No such category", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_category(State(state): State<AppState>, Path(slug): Path<String>) -> ApiResult<Tagged<VersionedCategory>> {
    let found = crate::db_read!(state.db, |c| queries::get_category(c, &slug, false))?;
    found.map(Tagged).ok_or(ApiError::NotFound("category"))
}

/// Add a category (admin), e.g. `microservice`.
#[utoipa::path(
    post, path = "/api/templates/categories", tag = "catalog", security(("bearer" = ["admin"])),
    params(IdempotencyKey),
    request_body = CategoryInput,
    responses(
        (status = 201, body = Category, headers(("Location" = String, description = "The new category: /api/templates/categories/{slug}"), ("ETag" = String, description = "The new category's version, for If-Match"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Slug taken; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_category(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    Json(input): Json<CategoryInput>,
) -> ApiResult<Created<VersionedCategory>> {
    input.validate()?;
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&admin.actor()).await?;
    let category = ops::add_category(&tx, &input).await?;
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/templates/categories/{}", category.category.slug), category))
}

/// Change a category (admin): only the fields given change; a new slug
/// renames it (its templates stay in it).
#[utoipa::path(
    patch, path = "/api/templates/categories/{slug}", tag = "catalog", security(("bearer" = ["admin"])),
    params(("slug" = String, Path, description = "Category slug"), IfMatch),
    request_body = CategoryPatch,
    responses(
        (status = 200, body = Category, headers(("ETag" = String, description = "The category's version after the change"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such category", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "New slug taken", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the category no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_category(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    Path(slug): Path<String>,
    if_match: IfMatch,
    Json(patch): Json<CategoryPatch>,
) -> ApiResult<Tagged<VersionedCategory>> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&admin.actor()).await?;
    let category = ops::change_category(&tx, &slug, patch, &if_match).await?;
    tx.commit().await?;
    Ok(Tagged(category))
}

/// Remove a category (admin). One that templates are in is a 409 naming
/// them: move or delete them first.
#[utoipa::path(
    delete, path = "/api/templates/categories/{slug}", tag = "catalog", security(("bearer" = ["admin"])),
    params(("slug" = String, Path, description = "Category slug")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such category", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Templates are in the category (the detail names them)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_category(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&admin.actor()).await?;
    ops::remove_category(&tx, &slug).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One technology with its number of public templates.
#[utoipa::path(
    get, path = "/api/templates/technologies/{slug}", tag = "catalog",
    params(("slug" = String, Path, description = "Technology slug")),
    responses(
        (status = 200, body = Technology, headers(("ETag" = String, description = "The technology's version, for If-Match"))),
        (status = 404, description = "No such technology", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_technology(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<Tagged<VersionedTechnology>> {
    let found = crate::db_read!(state.db, |c| queries::get_technology(c, &slug, false))?;
    found.map(Tagged).ok_or(ApiError::NotFound("technology"))
}

/// Add a technology (admin).
#[utoipa::path(
    post, path = "/api/templates/technologies", tag = "catalog", security(("bearer" = ["admin"])),
    params(IdempotencyKey),
    request_body = TechnologyInput,
    responses(
        (status = 201, body = Technology, headers(("Location" = String, description = "The new technology: /api/templates/technologies/{slug}"), ("ETag" = String, description = "The new technology's version, for If-Match"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Slug taken; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_technology(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    Json(input): Json<TechnologyInput>,
) -> ApiResult<Created<VersionedTechnology>> {
    input.validate()?;
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&admin.actor()).await?;
    let technology = ops::add_technology(&tx, &input).await?;
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/templates/technologies/{}", technology.technology.slug), technology))
}

/// Change a technology (admin): only the fields given change; a new slug is
/// carried into the `tech_stack` of the templates that named the old one.
#[utoipa::path(
    patch, path = "/api/templates/technologies/{slug}", tag = "catalog", security(("bearer" = ["admin"])),
    params(("slug" = String, Path, description = "Technology slug"), IfMatch),
    request_body = TechnologyPatch,
    responses(
        (status = 200, body = Technology, headers(("ETag" = String, description = "The technology's version after the change"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such technology", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "New slug taken", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the technology no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_technology(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    Path(slug): Path<String>,
    if_match: IfMatch,
    Json(patch): Json<TechnologyPatch>,
) -> ApiResult<Tagged<VersionedTechnology>> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&admin.actor()).await?;
    let technology = ops::change_technology(&tx, &slug, patch, &if_match).await?;
    tx.commit().await?;
    Ok(Tagged(technology))
}

/// Remove a technology (admin). One that templates name in their
/// `tech_stack` is a 409 naming them.
#[utoipa::path(
    delete, path = "/api/templates/technologies/{slug}", tag = "catalog", security(("bearer" = ["admin"])),
    params(("slug" = String, Path, description = "Technology slug")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such technology", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Templates name the technology (the detail names them)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_technology(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&admin.actor()).await?;
    ops::remove_technology(&tx, &slug).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A template as an admin writes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// Lowercase letters and digits, words joined by single dashes.
    #[schema(max_length = 63, pattern = r"^[a-z0-9]+(?:-[a-z0-9]+)*$", example = "hello-rust")]
    pub slug: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    /// Slug of an existing category (see `GET /api/templates/categories`;
    /// another is a 404).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub category: String,
    /// Path -> content, at most 500 files.
    #[serde(default)]
    #[schema(value_type = TemplateFiles)]
    pub files: BTreeMap<String, String>,
    /// The `{{VAR}}` placeholders a project must give.
    #[serde(default)]
    #[schema(value_type = Vec<VarName>)]
    pub required_vars: Vec<String>,
    #[serde(default)]
    pub optional_vars: Vec<OptionalVar>,
    /// Technology slugs, at most 50.
    #[serde(default)]
    #[schema(value_type = Vec<Label>, max_items = 50)]
    pub tech_stack: Vec<String>,
    /// At most 50.
    #[serde(default)]
    #[schema(value_type = Vec<Label>, max_items = 50)]
    pub tags: Vec<String>,
    /// Minutes.
    #[serde(default, deserialize_with = "crate::http::extract::whole")]
    #[schema(minimum = 0, maximum = 10_000)]
    pub estimated_setup_time: i32,
    pub complexity: Complexity,
    #[serde(default = "yes")]
    pub is_public: bool,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub author: Option<String>,
}

const MAX_FILES: usize = 500;
const FILE_PATH_MAX_CHARS: usize = 1024;
const MAX_LABELS: usize = 50;
const LABEL_MAX_CHARS: usize = 100;

crate::json_schema! {
    /// A template's files: path -> content.
    TemplateFiles = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "Path -> content. A path is relative and `/`-separated, at most 1024 characters, without empty or `..` \
             segments (`{{VAR}}` placeholders are allowed).",
        ))
        .property_names(Some(json_schema::string().max_length(Some(FILE_PATH_MAX_CHARS)).pattern(Some(
            r"^(?:[^/.\x00][^/\x00]*|\.|\.[^/.\x00][^/\x00]*|\.\.[^/\x00]+)(?:/(?:[^/.\x00][^/\x00]*|\.|\.[^/.\x00][^/\x00]*|\.\.[^/\x00]+))*$",
        ))))
        .additional_properties(Some(json_schema::string()))
        .max_properties(Some(MAX_FILES));
}

crate::json_schema! {
    /// The name of a `{{VAR}}` placeholder.
    VarName = json_schema::string()
        .description(Some("A placeholder's name: UPPER_SNAKE_CASE, 1 to 64 characters."))
        .pattern(Some(r"^[A-Z0-9_]{1,64}$"));
}

crate::json_schema! {
    /// A tag or a technology slug.
    Label = json_schema::string()
        .description(Some("A tag or technology slug, 1 to 100 characters."))
        .min_length(Some(1))
        .max_length(Some(LABEL_MAX_CHARS));
}

/// A file path in a template ([`TemplateFiles`]' keys).
fn is_template_path(path: &str) -> bool {
    !path.is_empty()
        && path.chars().count() <= FILE_PATH_MAX_CHARS
        && !path.starts_with('/')
        && !path.split('/').any(|seg| seg == ".." || seg.is_empty())
        && !path.contains('\0')
}

/// UPPER_SNAKE_CASE, 1 to 64 characters ([`VarName`]).
fn is_var_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn yes() -> bool {
    true
}

fn no_such_category() -> ApiError {
    ApiError::no_such("category", "no such category; see GET /api/templates/categories")
}

impl TemplateInput {
    fn validate(&self) -> ApiResult<()> {
        let mut v = Validator::new();
        v.slug("slug", &self.slug);
        v.text("name", &self.name, 1, 200);
        v.text("description", &self.description, 0, 5000);
        v.text("category", &self.category, 1, 100);
        v.check(self.files.len() <= MAX_FILES, "files", format!("at most {MAX_FILES} files"));
        for (path, content) in &self.files {
            v.check(is_template_path(path), "files", format!("{path:?} is not a relative path without `..`"));
            v.check(!content.contains('\0'), "files", format!("{path:?} contains NUL characters"));
        }
        v.check(self.required_vars.iter().all(|n| is_var_name(n)), "required_vars", "names are UPPER_SNAKE_CASE");
        v.check(self.optional_vars.iter().all(|o| is_var_name(&o.name)), "optional_vars", "names are UPPER_SNAKE_CASE");
        for (field, list) in [("tech_stack", &self.tech_stack), ("tags", &self.tags)] {
            let label_ok = |s: &String| !s.is_empty() && s.chars().count() <= LABEL_MAX_CHARS && !s.contains('\0');
            v.check(
                list.len() <= MAX_LABELS && list.iter().all(label_ok),
                field,
                format!("at most {MAX_LABELS} entries of 1-{LABEL_MAX_CHARS} characters"),
            );
        }
        v.check((0..=10_000).contains(&self.estimated_setup_time), "estimated_setup_time", "minutes, 0 to 10000");
        v.opt_text("author", self.author.as_deref(), 1, 200);
        v.finish()
    }

    fn write(&self, created_by: Option<uuid::Uuid>) -> TemplateWrite<'_> {
        TemplateWrite {
            slug: &self.slug,
            name: self.name.trim(),
            description: self.description.trim(),
            category: &self.category,
            files: &self.files,
            required_vars: &self.required_vars,
            optional_vars: &self.optional_vars,
            tech_stack: &self.tech_stack,
            tags: &self.tags,
            estimated_setup_time: self.estimated_setup_time,
            complexity: self.complexity,
            is_public: self.is_public,
            is_builtin: false,
            author: self.author.as_deref(),
            created_by,
        }
    }
}

/// Add a template (admin).
#[utoipa::path(
    post, path = "/api/templates", tag = "catalog", security(("bearer" = ["admin"])),
    params(IdempotencyKey),
    request_body = TemplateInput,
    responses(
        (status = 201, body = Template, headers(("Location" = String, description = "The new template: /api/templates/{slug}"))),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Slug taken; or a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or unknown category; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_template(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    Json(input): Json<TemplateInput>,
) -> ApiResult<Created<Template>> {
    input.validate()?;
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&admin.actor()).await?;
    queries::insert_template(&tx, &input.write(Some(admin.user_id)), false).await?.ok_or_else(no_such_category)?;
    let (template, _) = queries::versioned_template(&tx, Some(Visibility::All), &input.slug, false)
        .await?
        .ok_or_else(|| ApiError::internal("template vanished"))?;
    tx.commit().await?;
    Ok(Created::at(format!("/api/templates/{}", template.summary.slug), template))
}

/// Changes to a template: only the fields given change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplatePatch {
    #[schema(max_length = 63, pattern = r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
    pub slug: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// Slug of an existing category (another is a 404).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub category: Option<String>,
    /// Replaces the whole file set (at most 500 files).
    #[schema(value_type = Option<TemplateFiles>)]
    pub files: Option<BTreeMap<String, String>>,
    #[schema(value_type = Option<Vec<VarName>>)]
    pub required_vars: Option<Vec<String>>,
    pub optional_vars: Option<Vec<OptionalVar>>,
    #[schema(value_type = Option<Vec<Label>>, max_items = 50)]
    pub tech_stack: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<Label>>, max_items = 50)]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::http::extract::opt_whole")]
    #[schema(minimum = 0, maximum = 10_000)]
    pub estimated_setup_time: Option<i32>,
    pub complexity: Option<Complexity>,
    pub is_public: Option<bool>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub author: Option<Option<String>>,
}

impl TemplatePatch {
    fn apply(self, t: Template) -> TemplateInput {
        let s = t.summary;
        TemplateInput {
            slug: self.slug.unwrap_or(s.slug),
            name: self.name.unwrap_or(s.name),
            description: self.description.unwrap_or(s.description),
            category: self.category.unwrap_or(s.category),
            files: self.files.unwrap_or(t.files),
            required_vars: self.required_vars.unwrap_or(s.required_vars),
            optional_vars: self.optional_vars.unwrap_or(s.optional_vars),
            tech_stack: self.tech_stack.unwrap_or(s.tech_stack),
            tags: self.tags.unwrap_or(s.tags),
            estimated_setup_time: self.estimated_setup_time.unwrap_or(s.estimated_setup_time),
            complexity: self.complexity.unwrap_or(s.complexity),
            is_public: self.is_public.unwrap_or(s.is_public),
            author: self.author.unwrap_or(s.author),
        }
    }
}

/// Change a template (admin).
#[utoipa::path(
    patch, path = "/api/templates/{slug}", tag = "catalog", security(("bearer" = ["admin"])),
    params(("slug" = String, Path, description = "Template slug"), IfMatch),
    request_body = TemplatePatch,
    responses(
        (status = 200, body = Template, headers(("ETag" = String, description = "The template's version after the change"))),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "New slug taken", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the template no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or unknown category", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_template(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    Path(slug): Path<String>,
    if_match: IfMatch,
    Json(patch): Json<TemplatePatch>,
) -> ApiResult<(ETag, Json<Template>)> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&admin.actor()).await?;
    let (current, version) = queries::versioned_template(&tx, Some(Visibility::All), &slug, true)
        .await?
        .ok_or(ApiError::NotFound("template"))?;
    // Bad input is a 422 whatever the If-Match: the body is judged before the precondition.
    let input = patch.apply(current);
    input.validate()?;
    if_match.check("template", &ETag::from_timestamp(version))?;
    queries::replace_template(&tx, &slug, &input.write(None)).await?.ok_or_else(no_such_category)?;
    let (template, version) = queries::versioned_template(&tx, Some(Visibility::All), &input.slug, false)
        .await?
        .ok_or_else(|| ApiError::internal("template vanished"))?;
    tx.commit().await?;
    Ok((ETag::from_timestamp(version), Json(template)))
}

/// Remove a template (admin). Projects made from it keep their files.
#[utoipa::path(
    delete, path = "/api/templates/{slug}", tag = "catalog", security(("bearer" = ["admin"])),
    params(("slug" = String, Path, description = "Template slug")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_template(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&admin.actor()).await?;
    if !queries::delete_template(&tx, &slug).await? {
        return Err(ApiError::NotFound("template"));
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::json_schema::testing::{assert_agree, pattern_of, strings};

    #[test]
    fn the_slug_pattern_is_the_rule() {
        let pattern = pattern_of::<TemplateInput>("/properties/slug/pattern");
        let accepted = |slug: &str| {
            let mut v = Validator::new();
            v.slug("slug", slug);
            v.finish().is_ok()
        };
        let (longest, too_long) = ("a".repeat(63), "a".repeat(64));
        let random = strings("az09-A_ ", 5000, 6);
        let samples = ["my-service-2", "-a", "a-", "a--b", ""].into_iter();
        assert_agree(&pattern, accepted, samples.chain(random.iter().map(String::as_str)));
        // Length, which the document states with maxLength.
        assert!(accepted(&longest) && !accepted(&too_long));
    }

    #[test]
    fn the_var_name_pattern_is_the_rule() {
        let pattern = pattern_of::<VarName>("/pattern");
        let (longest, too_long) = ("A".repeat(64), "A".repeat(65));
        let random = strings("AZ09_a-", 5000, 6);
        let samples = ["PROJECT_NAME", "", &longest, &too_long].into_iter();
        assert_agree(&pattern, is_var_name, samples.chain(random.iter().map(String::as_str)));
    }

    #[test]
    fn the_template_path_pattern_is_the_rule() {
        let pattern = pattern_of::<TemplateFiles>("/propertyNames/pattern");
        let random = strings("a/.{}\\", 5000, 7);
        let samples = ["src/main.rs", "{{PROJECT_NAME}}/README.md", "./a", "a/..", "/a", "a//b", "..."].into_iter();
        assert_agree(&pattern, is_template_path, samples.chain(random.iter().map(String::as_str)));
    }
}
