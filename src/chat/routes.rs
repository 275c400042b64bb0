//! Chat over HTTP: a project's messages, read in order and appended; a
//! container's, read in order.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{CONTENT_MAX_CHARS, ChatMessage, Order, Role};
use super::queries::{self, Chat, NewMessage};
use crate::accounts::{Bearer, Principal};
use crate::http::error::Problem;
use crate::http::idempotency::IdempotencyKey;
use crate::http::json_schema::AnyJson;
use crate::http::pagination::{Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, Json, Path, Query};
use crate::projects::access::{project_for, project_owner};
use crate::runtime::containers::queries::{belongs_to_project, get_container};
use crate::runtime::{JSON_MAX_BYTES, TimeKey};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages, post_message))
        .routes(routes!(list_container_messages))
        .routes(routes!(get_message))
}

/// Largest `attachments` array, serialized.
const ATTACHMENTS_MAX_BYTES: usize = 256 * 1024;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageListParams {
    /// Only this conversation.
    #[param(max_length = 255, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub session_id: Option<String>,
    /// `asc` (default): oldest first, `next_cursor` goes forward in time.
    /// `desc`: newest first, `next_cursor` goes back in time (load the latest
    /// page, then scroll up). A cursor continues in the order it came from.
    #[param(inline)]
    pub order: Option<Order>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A project's chat messages in order (keyset paging both ways: see `order`).
#[utoipa::path(
    get, path = "/api/projects/{id}/messages", tag = "chat", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Project id"), MessageListParams),
    responses(
        (status = 200, body = Page<ChatMessage>),
        (status = 400, description = "Bad filter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_messages(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<Uuid>,
    Query(p): Query<MessageListParams>,
) -> ApiResult<Json<Page<ChatMessage>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let mut v = Validator::new();
    v.opt_text("session_id", p.session_id.as_deref(), 1, 255);
    v.finish()?;
    let order = p.order.unwrap_or_default();
    let session = p.session_id.as_deref();
    // The credential, the project's owner and the page go out together:
    // one round trip. Another user's page is read and dropped, never answered.
    let (principal, (project, rows)) = crate::db_read_as!(state, bearer, |c| async {
        tokio::try_join!(
            project_owner(c, id),
            queries::list_messages(c, Chat::Project(id), session, order, after, limit),
        )
    })?;
    project.and_then(|p| p.seen_by(&principal)).ok_or(ApiError::NotFound("project"))?;
    Ok(Json(Page::from_rows(rows, limit, |m| (m.created_at, m.id))))
}

/// A container's chat in order, as the container-keyed design reads it: the
/// messages about the container (posted with its `container_id`), of one
/// conversation with `session_id`; keyset paging both ways (see `order`).
#[utoipa::path(
    get, path = "/api/containers/{id}/messages", tag = "chat", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Container id (devx's, not the runtime's)"), MessageListParams),
    responses(
        (status = 200, body = Page<ChatMessage>),
        (status = 400, description = "Bad filter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such container of yours", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter value", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_container_messages(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<Uuid>,
    Query(p): Query<MessageListParams>,
) -> ApiResult<Json<Page<ChatMessage>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(p.limit, p.cursor.as_deref())?;
    let mut v = Validator::new();
    v.opt_text("session_id", p.session_id.as_deref(), 1, 255);
    v.finish()?;
    let order = p.order.unwrap_or_default();
    let session = p.session_id.as_deref();
    // As for a project's chat: credential, container and page in one round trip.
    let (principal, (container, rows)) = crate::db_read_as!(state, bearer, |c| async {
        tokio::try_join!(
            get_container(c, id, false),
            queries::list_messages(c, Chat::Container(id), session, order, after, limit),
        )
    })?;
    principal.visibility().filter(container).ok_or(ApiError::NotFound("container"))?;
    Ok(Json(Page::from_rows(rows, limit, |m| (m.created_at, m.id))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// The conversation, 1 to 255 characters.
    #[schema(
        example = "c0ffee-session-1",
        min_length = 1,
        max_length = 255,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub session_id: String,
    pub role: Role,
    /// 1 to 100,000 characters.
    #[schema(
        min_length = 1,
        max_length = 100_000,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub content: String,
    /// A JSON array (default `[]`), at most 256 KiB serialized.
    #[schema(value_type = Option<Vec<AnyJson>>)]
    pub attachments: Option<Value>,
    /// A JSON object (default `{}`), at most 64 KiB serialized.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// A container of this project, or the one it lives in (another is a
    /// 404). The message is then also in the container's chat
    /// (`GET /api/containers/{id}/messages`).
    pub container_id: Option<Uuid>,
}

/// Append a message to a project's chat.
#[utoipa::path(
    post, path = "/api/projects/{id}/messages", tag = "chat", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Project id"), IdempotencyKey),
    request_body = PostMessage,
    responses(
        (status = 201, body = ChatMessage, headers(("Location" = String, description = "The new message: /api/messages/{id}"))),
        (status = 404, description = "No such project of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or a container of another project; or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn post_message(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Json(req): Json<PostMessage>,
) -> ApiResult<Created<ChatMessage>> {
    let mut v = Validator::new();
    v.text("session_id", &req.session_id, 1, 255);
    v.text("content", &req.content, 1, CONTENT_MAX_CHARS);
    if let Some(a) = &req.attachments {
        v.json_array("attachments", a, ATTACHMENTS_MAX_BYTES);
    }
    if let Some(m) = &req.metadata {
        v.json_object("metadata", m, JSON_MAX_BYTES);
    }
    v.finish()?;

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let project = project_for(&tx, &principal, id, false).await?;
    if let Some(container_id) = req.container_id
        && !belongs_to_project(&tx, container_id, project.project_id).await?
    {
        return Err(ApiError::no_such("container_id", "no such container in this project"));
    }
    let message = queries::insert_message(
        &tx,
        &NewMessage {
            project_id: project.project_id,
            container_id: req.container_id,
            session_id: &req.session_id,
            role: req.role.as_str(),
            content: &req.content,
            attachments: req.attachments.as_ref().unwrap_or(&json!([])),
            metadata: req.metadata.as_ref().unwrap_or(&json!({})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Created::at(format!("/api/messages/{}", message.id), message))
}

/// One chat message.
#[utoipa::path(
    get, path = "/api/messages/{id}", tag = "chat", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses(
        (status = 200, body = ChatMessage),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_message(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ChatMessage>> {
    let (principal, found) = crate::db_read_as!(state, bearer, |c| queries::get_message(c, id))?;
    match found {
        Some((message, owner)) if principal.can_see(owner) => Ok(Json(message)),
        _ => Err(ApiError::NotFound("message")),
    }
}
