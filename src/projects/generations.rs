//! Generation history over HTTP: what generators ran, for whom, from which
//! template, with what result and how long it took. A generation starts
//! `pending` or `running` and ends once (`completed`, `failed` or
//! `cancelled`); ending it again is a 409. Users see their own, admins all.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, RefBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::access;
use super::model::{Generation, GenerationStats, GenerationStatus};
use super::queries::{self, GenerationFilter, GenerationOutcome, NewGeneration};
use super::routes::TimeKey;
use crate::accounts::activity::{self, Activity, ActivityAction, Origin};
use crate::accounts::{Bearer, Principal};
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::json_schema::{self, AnyJson};
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, IfMatch, Json, Path, Query, Tagged, Versioned};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_generations, start_generation))
        .routes(routes!(generation_stats))
        .routes(routes!(get_generation, finish_generation))
}

const PARAMS_MAX: usize = 256 * 1024;

fn generation_type_ok(t: &str) -> bool {
    let mut chars = t.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && t.len() <= 50
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

const TYPE_MESSAGE: &str = "must be 1-50 lowercase letters, digits, `_` or `-`, starting with a letter (e.g. project)";
const ERROR_MAX_CHARS: usize = 20_000;

/// The statuses a generation can be recorded in; it moves on with PATCH.
const START: [GenerationStatus; 2] = [GenerationStatus::Pending, GenerationStatus::Running];
/// The statuses PATCH moves a generation to that may carry an error message.
const WITH_ERROR: [GenerationStatus; 2] = [GenerationStatus::Failed, GenerationStatus::Cancelled];
/// The other statuses PATCH moves a generation to.
const WITHOUT_ERROR: [GenerationStatus; 2] = [GenerationStatus::Running, GenerationStatus::Completed];

fn status_schema(statuses: &[GenerationStatus]) -> ObjectBuilder {
    json_schema::string().enum_values(Some(statuses.iter().map(|s| s.as_str())))
}

crate::json_schema! {
    /// The statuses a generation starts in.
    GenerationStart = status_schema(&START)
        .description(Some("`pending` (the default) or `running`; PATCH /api/generations/{id} moves it on."));
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GenerationListParams {
    /// Also accepted as `type`.
    #[serde(alias = "type")]
    #[param(pattern = "^[a-z][a-z0-9_-]{0,49}$")]
    pub generation_type: Option<String>,
    pub status: Option<GenerationStatus>,
    /// Template slug.
    #[param(max_length = 100, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub template: Option<String>,
    /// Also accepted as `project`.
    #[serde(alias = "project")]
    pub project_id: Option<Uuid>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The caller's generations (an admin's: everyone's), newest first.
#[utoipa::path(
    get, path = "/api/generations", tag = "generations", security(("bearer" = ["read"])),
    params(GenerationListParams),
    responses(
        (status = 200, body = Page<Generation>),
        (status = 400, description = "Unknown filter, bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter value", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_generations(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<GenerationListParams>,
) -> ApiResult<Json<Page<Generation>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let mut v = Validator::new();
    if let Some(t) = &p.generation_type {
        v.check(generation_type_ok(t), "generation_type", TYPE_MESSAGE);
    }
    v.opt_text("template", p.template.as_deref(), 1, 100);
    v.finish()?;
    let filter = GenerationFilter {
        user: principal.visibility().owner(),
        generation_type: p.generation_type,
        status: p.status,
        template: p.template,
        project: p.project_id,
        after,
        limit,
    };
    let rows = crate::db_read!(state.db, |c| queries::list_generations(c, &filter))?;
    Ok(Json(Page::from_rows(rows, limit, |g| (g.created_at, g.id))))
}

/// Counts, success rate and average time of the caller's generations (an
/// admin's: everyone's), in total and per generation type.
#[utoipa::path(
    get, path = "/api/generations/stats", tag = "generations", security(("bearer" = ["read"])),
    responses(
        (status = 200, body = GenerationStats),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn generation_stats(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<GenerationStats>> {
    let user = principal.visibility().owner();
    let stats = crate::db_read!(state.db, |c| queries::generation_stats(c, user))?;
    Ok(Json(stats))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartGeneration {
    /// 1 to 50 lowercase letters, digits, `_` or `-`, starting with a letter.
    #[schema(example = "service", pattern = "^[a-z][a-z0-9_-]{0,49}$")]
    pub generation_type: String,
    /// Template slug (another is a 404).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub template: Option<String>,
    /// A project of the caller's (another is a 404).
    pub project_id: Option<Uuid>,
    /// A service of the caller's (another is a 404).
    pub service_id: Option<Uuid>,
    /// At most 256 KiB serialized.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input_params: Map<String, Value>,
    #[schema(value_type = Option<GenerationStart>)]
    pub status: Option<GenerationStatus>,
}

/// Record that a generation started.
#[utoipa::path(
    post, path = "/api/generations", tag = "generations", security(("bearer" = ["write"])),
    params(IdempotencyKey),
    request_body = StartGeneration,
    responses(
        (status = 201, body = Generation, headers(("Location" = String, description = "The new generation: /api/generations/{id}"), ("ETag" = String, description = "The new generation's version, for If-Match"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or a template, project or service that is not there for you; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn start_generation(
    State(state): State<AppState>,
    principal: Principal,
    origin: Origin,
    Json(req): Json<StartGeneration>,
) -> ApiResult<Created<Generation>> {
    let status = req.status.unwrap_or(GenerationStatus::Pending);
    let input_params = Value::Object(req.input_params);
    let mut v = Validator::new();
    v.check(generation_type_ok(&req.generation_type), "generation_type", TYPE_MESSAGE);
    v.check(
        START.contains(&status),
        "status",
        "a generation starts pending or running; finish it with PATCH /api/generations/{id}",
    );
    v.opt_text("template", req.template.as_deref(), 1, 100);
    v.json_object("input_params", &input_params, PARAMS_MAX);

    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let mut template_id = None;
    if let Some(slug) = &req.template {
        template_id = queries::usable_template_id(&tx, slug, principal.user_id, principal.is_admin()).await?;
        if template_id.is_none() {
            return Err(ApiError::no_such("template", "no such template; see GET /api/templates"));
        }
    }
    if let Some(project) = req.project_id
        && access::find_project(&tx, &principal, project, false).await?.is_none()
    {
        return Err(ApiError::no_such("project_id", "no such project of yours"));
    }
    if let Some(service) = req.service_id
        && !queries::service_owner(&tx, service).await?.is_some_and(|o| principal.can_see(o))
    {
        return Err(ApiError::no_such("service_id", "no such service of yours"));
    }

    let empty = Value::Array(Vec::new());
    let g = queries::insert_generation(
        &tx,
        &NewGeneration {
            user_id: principal.user_id,
            template_id,
            project_id: req.project_id,
            service_id: req.service_id,
            generation_type: &req.generation_type,
            input_params: &input_params,
            output_files: &empty,
            status,
            error_message: None,
            execution_time_ms: None,
        },
    )
    .await?;
    let started = Activity {
        user_id: Some(principal.user_id),
        actor: &principal.actor(),
        action: ActivityAction::GenerationStarted,
        origin: &origin,
        details: serde_json::json!({
            "generation_id": g.id, "generation_type": g.generation_type, "project_id": g.project_id,
        }),
    };
    activity::record(&tx, &started).await?;
    tx.commit().await?;
    Ok(Created::versioned(format!("/api/generations/{}", g.id), g))
}

/// One generation.
#[utoipa::path(
    get, path = "/api/generations/{id}", tag = "generations", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Generation id")),
    responses(
        (status = 200, body = Generation, headers(("ETag" = String, description = "The generation's version, for If-Match"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such generation of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_generation(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<Generation>> {
    let (principal, g) = crate::db_read_as!(state, bearer, |c| queries::get_generation(c, id, false))?;
    g.filter(|g| principal.can_see(g.user_id)).map(Tagged).ok_or(ApiError::NotFound("generation"))
}

/// How a generation ended, or that a pending one runs now. Its schema is
/// written out below: `error_message` only with `failed` or `cancelled`,
/// which the keys of `#[schema(...)]` cannot say.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishGeneration {
    /// `completed`, `failed` or `cancelled` (final: sets `completed_at`), or
    /// `running` for a pending one.
    pub status: GenerationStatus,
    /// Why it failed or was cancelled.
    pub error_message: Option<String>,
    /// What was produced.
    pub output_files: Option<Vec<Value>>,
    /// Measured by the generator; by default the time since it was recorded.
    #[serde(default, deserialize_with = "crate::http::extract::opt_whole")]
    pub execution_time_ms: Option<i32>,
}

impl utoipa::ToSchema for FinishGeneration {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((AnyJson::name().into_owned(), AnyJson::schema()));
    }
}

/// One of two shapes, told apart by `status`: with `running` or `completed`
/// there is no error message (or `null`); with `failed` or `cancelled`
/// there may be one.
impl utoipa::PartialSchema for FinishGeneration {
    fn schema() -> RefOr<Schema> {
        let shape = |statuses: &[GenerationStatus], error_message: ObjectBuilder| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("status", status_schema(statuses))
                .required("status")
                .property("error_message", error_message)
                .property(
                    "output_files",
                    ArrayBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
                        .description(Some("What was produced; at most 256 KiB serialized."))
                        .items(RefBuilder::new().ref_location_from_schema_name(AnyJson::name())),
                )
                .property(
                    "execution_time_ms",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                        .description(Some(
                            "Measured by the generator, 0 or more; by default the time since it was recorded.",
                        ))
                        .minimum(Some(0))
                        .maximum(Some(i32::MAX)),
                )
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        let none = ObjectBuilder::new()
            .schema_type(Type::Null)
            .description(Some("Only a failed or cancelled generation has one."));
        let some = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .description(Some("Why it failed or was cancelled, 1 to 20,000 characters."))
            .min_length(Some(1))
            .max_length(Some(ERROR_MAX_CHARS))
            .pattern(Some(json_schema::NON_BLANK));
        OneOfBuilder::new()
            .description(Some(
                "How a generation ended: `completed`, `failed` or `cancelled` (final: sets `completed_at`), or \
                 `running` for a pending one.",
            ))
            .item(shape(&WITHOUT_ERROR, none))
            .item(shape(&WITH_ERROR, some))
            .into()
    }
}

/// Record how a generation ended (or that it is running now).
#[utoipa::path(
    patch, path = "/api/generations/{id}", tag = "generations", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Generation id"), IfMatch),
    request_body = FinishGeneration,
    responses(
        (status = 200, body = Generation, headers(("ETag" = String, description = "The generation's version after the change"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such generation of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already finished (or not pending, to start running)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the generation no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn finish_generation(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(req): Json<FinishGeneration>,
) -> ApiResult<Tagged<Generation>> {
    let output_files = req.output_files.map(Value::Array);
    let mut v = Validator::new();
    v.check(req.status != GenerationStatus::Pending, "status", "must be running, completed, failed or cancelled");
    if req.error_message.is_some() {
        v.check(WITH_ERROR.contains(&req.status), "error_message", "only a failed or cancelled generation has one");
    }
    v.opt_text("error_message", req.error_message.as_deref(), 1, ERROR_MAX_CHARS);
    if let Some(files) = &output_files {
        v.json_array("output_files", files, PARAMS_MAX);
    }
    v.check(req.execution_time_ms.is_none_or(|ms| ms >= 0), "execution_time_ms", "must be 0 or more");
    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let current = queries::get_generation(&tx, id, true)
        .await?
        .filter(|g| principal.can_see(g.user_id))
        .ok_or(ApiError::NotFound("generation"))?;
    if_match.check("generation", &current.etag())?;
    let refusal = |now: GenerationStatus| {
        let detail = if now.is_final() {
            format!("the generation is {}, which is final: it cannot become {}", now.as_str(), req.status.as_str())
        } else {
            format!("the generation is {}; it cannot become {}", now.as_str(), req.status.as_str())
        };
        ApiError::Conflict { detail, field: None }
    };
    if !req.status.sources().contains(&current.status) {
        return Err(refusal(current.status));
    }
    let outcome = GenerationOutcome {
        status: req.status,
        error_message: req.error_message.as_deref(),
        output_files: output_files.as_ref(),
        execution_time_ms: req.execution_time_ms,
    };
    match queries::finish_generation(&tx, id, &outcome).await? {
        Some(g) => {
            tx.commit().await?;
            Ok(Tagged(g))
        }
        None => {
            let now = queries::get_generation(&tx, id, false).await?.ok_or(ApiError::NotFound("generation"))?;
            Err(refusal(now.status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::json_schema::testing::{assert_agree, param_pattern, pattern_of, strings};

    #[test]
    fn the_type_pattern_is_the_rule() {
        let (longest, too_long) = ("a".repeat(50), "a".repeat(51));
        let random = strings("az09_- A", 5000, 5);
        let fixed = ["project", "a-b_c9", "", "9a", "-a", "é", "aé", &longest, &too_long];
        for pattern in [
            pattern_of::<StartGeneration>("/properties/generation_type/pattern"),
            param_pattern::<GenerationListParams>("generation_type"),
        ] {
            let samples = fixed.into_iter().chain(random.iter().map(String::as_str));
            assert_agree(&pattern, generation_type_ok, samples);
        }
    }
}
