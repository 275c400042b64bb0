//! Accounts over HTTP: registration, sign-in and out, the caller's profile,
//! API keys, and user administration. Handlers validate, then run the
//! queries in one transaction that names the audit actor.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::activity::{self, Activity, ActivityAction, Origin};
use super::hasher::HashError;
use super::identity::{AccountsContext, AdminPrincipal, Credential, Principal};
use super::import::{self, ImportReport};
use super::model::{ApiKey, ApiKeyKind, CreatedApiKey, PlanType, Role, Scope, SessionGrant, SessionInfo, User};
use super::queries::{self, AdminUserChange, NewApiKey, NewSession, NewUser, UserFilter};
use super::secrets;
use super::throttle;
use crate::http::error::Problem;
use crate::http::pagination::{self, Page, PageRequest};
use crate::http::validate::Validator;
use crate::http::{ApiError, ApiResult, AppState, Created, IfMatch, Json, Path, Query, Tagged, Versioned};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me, update_me, close_me))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(get_key, revoke_key))
        .routes(routes!(list_sessions))
        .routes(routes!(end_session))
        .routes(routes!(admin_list_users))
        .routes(routes!(admin_import_users))
        .routes(routes!(admin_get_user, admin_update_user, admin_close_user))
}

/// Runs argon2 off the async threads.
impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ApiError::Overloaded(e.to_string()),
            HashError::Failed(_) => ApiError::internal(e),
        }
    }
}

/// Opens a session for `user` and writes the `sign_in` to the activity log,
/// both in the caller's transaction.
async fn open_session(
    db: &impl crate::db::Queryable,
    state: &AppState,
    user: User,
    origin: &Origin,
    how: &str,
) -> ApiResult<SessionGrant> {
    let (token, hash) = secrets::new_session_token();
    // The request came without a credential, yet wrote for this user: with
    // replicas, the user's next reads must see it (`db::replicas`).
    crate::db::replicas::note_caller(Some(user.id), None);
    let ttl = chrono::TimeDelta::from_std(state.config.http.session_ttl).map_err(ApiError::internal)?;
    let expires_at = Utc::now() + ttl;
    let session_id = queries::insert_session(
        db,
        &NewSession {
            user_id: user.id,
            token_hash: &hash,
            expires_at,
            ip_address: origin.ip,
            user_agent: origin.user_agent.as_deref(),
        },
    )
    .await?;
    let activity = Activity {
        user_id: Some(user.id),
        actor: &format!("user:{}", user.id),
        action: ActivityAction::SignIn,
        origin,
        details: serde_json::json!({"session_id": session_id, "via": how}),
    };
    activity::record(db, &activity).await?;
    Ok(SessionGrant { token, expires_at, user })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// `local@domain.tld`: no spaces, one `@`, a dot inside the domain; at
    /// most 254 characters.
    #[schema(
        example = "ada@example.com",
        max_length = 254,
        pattern = r"^[^@\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@.\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^@\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\.[^@\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@.\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$"
    )]
    pub email: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: Option<String>,
}

/// Create an account and sign in.
#[utoipa::path(
    post, path = "/api/auth/register", tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created; signed in", body = SessionGrant, headers(("Location" = String, description = "The new account, as its session sees it: /api/auth/me"))),
        (status = 409, description = "Email already registered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations from this address", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = String, description = "Seconds until a new attempt can succeed"))),
    )
)]
async fn register(
    State(state): State<AppState>,
    Extension(AccountsContext { hasher, .. }): Extension<AccountsContext>,
    origin: Origin,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<Created<SessionGrant>> {
    let mut v = Validator::new();
    v.email("email", req.email.trim());
    if let Some(problem) = secrets::password_problem(&req.password) {
        v.error("password", problem);
    }
    v.opt_text("name", req.name.as_deref(), 1, 200);
    v.finish()?;

    // Every attempt counts, including those answered 409 (which tell that
    // an email has an account), before any work is done for it.
    if let Some(ip) = origin.ip {
        let key = [throttle::Key::registration(ip, &state.config.http)];
        let mut client = state.db.client().await?;
        throttle::check(&client, &key, "registrations from this address").await?;
        let tx = client.transaction().await?;
        throttle::record_failure(&tx, &key, &state.config.http, &origin, None).await?;
        tx.commit().await?;
    }
    let hash = hasher.hash(req.password.clone()).await?;
    let id = Uuid::new_v4();
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&format!("user:{id}")).await?;
    let mut user = queries::insert_user(
        &tx,
        &NewUser {
            id,
            email: req.email.trim(),
            name: req.name.as_deref().map(str::trim),
            password_hash: Some(&hash),
            role: Role::User,
            plan_type: PlanType::Free,
        },
    )
    .await?;
    // The account as stored, sign-in included.
    user.last_login = Some(queries::record_login(&tx, user.id).await?);
    let grant = open_session(&tx, &state, user, &origin, "register").await?;
    tx.commit().await?;
    Ok(Created::at("/api/auth/me", grant))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Sign in with email and password; returns a session token.
///
/// An unknown email and a wrong password get the same answer in about the
/// same time. Repeated failures for an email or from an address get 429.
#[utoipa::path(
    post, path = "/api/auth/login", tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = SessionGrant),
        (status = 401, description = "Wrong email or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = String, description = "Seconds until a new attempt can succeed"))),
    )
)]
async fn login(
    State(state): State<AppState>,
    Extension(AccountsContext { hasher, .. }): Extension<AccountsContext>,
    origin: Origin,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Json<SessionGrant>> {
    let http = &state.config.http;
    let account = throttle::Key::account(&req.email, http);
    let mut keys = vec![account.clone()];
    keys.extend(origin.ip.map(|ip| throttle::Key::address(ip, http)));
    {
        let client = state.db.client().await?;
        throttle::check(&client, &keys, "failed sign-ins").await?;
    }
    // An email or password no account can have is answered at once, neither
    // hashed nor counted (a blank email would not even make a throttle key).
    let email = req.email.trim();
    if email.is_empty() || email.chars().count() > 254 || req.password.chars().count() > secrets::PASSWORD_MAX_CHARS {
        return Err(ApiError::Unauthorized("wrong email or password".into()));
    }
    let found = crate::db_read!(state.db, |c| queries::find_login(c, email))?;
    let known = found.as_ref().map(|(user, _)| user.id);
    let (user, hash) = match found {
        Some((user, hash)) if user.is_active => (Some(user), hash),
        _ => (None, None),
    };
    let verified = hasher.verify(req.password.clone(), hash.clone()).await?;
    let (true, Some(user), Some(hash)) = (verified, user, hash) else {
        // Refused, and recorded: the count, any lockout it starts, and the
        // failed attempt itself, together.
        let mut client = state.db.client().await?;
        let tx = client.transaction().await?;
        let actor = known.map_or_else(|| activity::ANONYMOUS.to_string(), |id| format!("user:{id}"));
        let failed = Activity {
            user_id: known,
            actor: &actor,
            action: ActivityAction::SignInFailed,
            origin: &origin,
            details: serde_json::json!({"email": email}),
        };
        activity::record(&tx, &failed).await?;
        throttle::record_failure(&tx, &keys, http, &origin, known).await?;
        tx.commit().await?;
        return Err(ApiError::Unauthorized("wrong email or password".into()));
    };
    // An imported hash of another kind (bcrypt) is replaced by argon2id now
    // that the password is known.
    let rehashed = if secrets::needs_rehash(&hash) { Some(hasher.hash(req.password.clone()).await?) } else { None };
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&format!("user:{}", user.id)).await?;
    throttle::clear(&tx, &account).await?;
    queries::record_login(&tx, user.id).await?;
    if let Some(new_hash) = &rehashed {
        queries::replace_password_hash(&tx, user.id, &hash, new_hash).await?;
    }
    let grant = open_session(&tx, &state, user, &origin, "password").await?;
    tx.commit().await?;
    Ok(Json(grant))
}

/// Sign out: revokes the session whose token was sent.
#[utoipa::path(
    post, path = "/api/auth/logout", tag = "accounts", security(("bearer" = ["write"])),
    responses(
        (status = 204, description = "Session revoked"),
        (status = 400, description = "Called with an API key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn logout(State(state): State<AppState>, principal: Principal, origin: Origin) -> ApiResult<StatusCode> {
    let Some(session) = principal.session_id() else {
        return Err(ApiError::BadRequest(
            "an API key has no session to end; revoke it with DELETE /api/api-keys/{id}".into(),
        ));
    };
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    queries::revoke_session(&tx, principal.user_id, session).await?;
    let activity = Activity {
        user_id: Some(principal.user_id),
        actor: &principal.actor(),
        action: ActivityAction::SignOut,
        origin: &origin,
        details: serde_json::json!({"session_id": session}),
    };
    activity::record(&tx, &activity).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(
    get, path = "/api/auth/me", tag = "accounts", security(("bearer" = ["read"])),
    responses(
        (status = 200, body = User, headers(("ETag" = String, description = "The account's version, for If-Match"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn me(State(state): State<AppState>, principal: Principal) -> ApiResult<Tagged<User>> {
    let user = crate::db_read!(state.db, |c| queries::get_user(c, principal.user_id))?;
    user.map(Tagged).ok_or(ApiError::NotFound("user"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub name: Option<Option<String>>,
    /// An `http://` or `https://` URL of at most 2048 characters, other
    /// characters than RFC 3986's percent-encoded; `null` clears it.
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = r"^https?://[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]+$")]
    pub avatar_url: Option<Option<String>>,
    /// Changing the password needs the current one, and signs out every
    /// other session.
    pub password: Option<PasswordChange>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// A wrong one is a 403, and counts as a failed sign-in.
    pub current: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub new: String,
}

/// Change the caller's name, avatar or password.
#[utoipa::path(
    patch, path = "/api/auth/me", tag = "accounts", security(("bearer" = ["write"])),
    params(IfMatch),
    request_body = UpdateMeRequest,
    responses(
        (status = 200, body = User, headers(("ETag" = String, description = "The account's version after the change"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the account no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or wrong current password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong current passwords", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = String, description = "Seconds until a new attempt can succeed"))),
    )
)]
async fn update_me(
    State(state): State<AppState>,
    Extension(AccountsContext { hasher, .. }): Extension<AccountsContext>,
    principal: Principal,
    origin: Origin,
    if_match: IfMatch,
    Json(req): Json<UpdateMeRequest>,
) -> ApiResult<Tagged<User>> {
    let mut v = Validator::new();
    if let Some(Some(name)) = &req.name {
        v.text("name", name, 1, 200);
    }
    if let Some(Some(url)) = &req.avatar_url {
        v.url("avatar_url", url);
    }
    if let Some(change) = &req.password
        && let Some(problem) = secrets::password_problem(&change.new)
    {
        v.error("password.new", problem);
    }
    v.finish()?;

    let new_hash = match &req.password {
        None => None,
        Some(change) => {
            // A wrong current password is a failed sign-in for this account:
            // a stolen session must not become a way to guess the password.
            let client = state.db.client().await?;
            let (email, current_hash) = queries::login_secret(&client, principal.user_id).await?;
            let account = [throttle::Key::account(&email, &state.config.http)];
            throttle::check(&client, &account, "failed password checks").await?;
            drop(client);
            match hasher.change(change.current.clone(), current_hash, change.new.clone()).await? {
                None => {
                    let mut client = state.db.client().await?;
                    let tx = client.transaction().await?;
                    throttle::record_failure(&tx, &account, &state.config.http, &origin, Some(principal.user_id))
                        .await?;
                    tx.commit().await?;
                    // The proof of identity failed, as a wrong password at
                    // sign-in does; the session itself is still good (not 401).
                    return Err(ApiError::Forbidden("password.current is not your current password".into()));
                }
                Some(hash) => Some(hash),
            }
        }
    };

    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let name = req.name.as_ref().map(|n| n.as_deref().map(str::trim));
    let avatar = req.avatar_url.as_ref().map(|a| a.as_deref());
    if if_match.is_conditional() {
        let current = queries::lock_user(&tx, principal.user_id).await?.ok_or(ApiError::NotFound("user"))?;
        if_match.check("account", &current.etag())?;
    }
    let user =
        queries::update_profile(&tx, principal.user_id, name, avatar).await?.ok_or(ApiError::NotFound("user"))?;
    if let Some(hash) = new_hash {
        queries::set_password_hash(&tx, principal.user_id, &hash).await?;
        queries::revoke_sessions_of(&tx, principal.user_id, principal.session_id()).await?;
    }
    tx.commit().await?;
    Ok(Tagged(user))
}

/// Close the caller's account: it is deactivated at once, its sessions and
/// keys revoked; its data is purged after the retention period.
#[utoipa::path(
    delete, path = "/api/auth/me", tag = "accounts", security(("bearer" = ["write"])),
    responses(
        (status = 204, description = "Account closed"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn close_me(State(state): State<AppState>, principal: Principal) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    queries::close_account(&tx, principal.user_id).await?;
    queries::revoke_sessions_of(&tx, principal.user_id, None).await?;
    queries::revoke_api_keys_of(&tx, principal.user_id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

use crate::http::pagination::TimeKey;

/// The caller's live sessions (not signed out, revoked or expired), newest
/// first; `current` marks the one this request was made with.
#[utoipa::path(
    get, path = "/api/auth/sessions", tag = "accounts", security(("bearer" = ["read"])),
    params(pagination::PageParams),
    responses(
        (status = 200, body = Page<SessionInfo>),
        (status = 400, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_sessions(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<pagination::PageParams>,
) -> ApiResult<Json<Page<SessionInfo>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(params.limit, params.cursor.as_deref())?;
    let current = principal.session_id();
    let rows = crate::db_read!(state.db, |c| queries::list_sessions(c, principal.user_id, current, after, limit))?;
    Ok(Json(Page::from_rows(rows, limit, |s| (s.created_at, s.id))))
}

/// End one of the caller's sessions (signs that device out). Ending the
/// current one is signing out.
#[utoipa::path(
    delete, path = "/api/auth/sessions/{id}", tag = "accounts", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Session ended"),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No live session of yours with this id", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn end_session(
    State(state): State<AppState>,
    principal: Principal,
    origin: Origin,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    if !queries::revoke_session(&tx, principal.user_id, id).await? {
        return Err(ApiError::NotFound("session"));
    }
    let activity = Activity {
        user_id: Some(principal.user_id),
        actor: &principal.actor(),
        action: ActivityAction::SignOut,
        origin: &origin,
        details: serde_json::json!({"session_id": id, "current": principal.session_id() == Some(id)}),
    };
    activity::record(&tx, &activity).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's API keys that are not revoked, newest first (keys themselves
/// are never shown again).
#[utoipa::path(
    get, path = "/api/api-keys", tag = "accounts", security(("bearer" = ["read"])),
    params(pagination::PageParams),
    responses(
        (status = 200, body = Page<ApiKey>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<pagination::PageParams>,
) -> ApiResult<Json<Page<ApiKey>>> {
    let PageRequest { limit, after } = PageRequest::<TimeKey>::new(params.limit, params.cursor.as_deref())?;
    let rows = crate::db_read!(state.db, |c| queries::list_api_keys(c, principal.user_id, after, limit))?;
    Ok(Json(Page::from_rows(rows, limit, |k| (k.created_at, k.id))))
}

/// A new API key: a person's (no `agent_type`) or an agent's (`kind:
/// agent` and its `agent_type`). The document states the two shapes as a
/// `oneOf` (see the impl of `PartialSchema` below), so the rule between the
/// two fields is in the contract, not only in the handler.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub name: String,
    /// Default `["read"]`.
    #[serde(default)]
    pub scopes: Option<Vec<Scope>>,
    /// When the key stops working; none = never. A time already past is a
    /// 409.
    pub expires_at: Option<DateTime<Utc>>,
    /// `user` (default): the key acts as you. `agent`: an agent's key, which
    /// needs `agent_type`; it claims tasks for that type, and the audit
    /// trail and the executions it starts name the agent.
    #[serde(default)]
    pub kind: ApiKeyKind,
    /// The agent type of an `agent` key (only there), e.g. `claude-code`.
    pub agent_type: Option<String>,
}

impl utoipa::PartialSchema for CreateKeyRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(<key_request::PersonKey as utoipa::PartialSchema>::schema())
            .item(<key_request::AgentKey as utoipa::PartialSchema>::schema())
            .into()
    }
}

impl utoipa::ToSchema for CreateKeyRequest {}

/// The shapes of [`CreateKeyRequest`] as the document states them; never
/// built, only described.
#[allow(dead_code)]
mod key_request {
    use chrono::{DateTime, Utc};
    use serde::Deserialize;

    use crate::accounts::model::Scope;

    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum PersonKind {
        User,
    }

    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum AgentKind {
        Agent,
    }

    /// A key that acts as you.
    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PersonKey {
        #[schema(
            example = "ci pipeline",
            min_length = 1,
            max_length = 200,
            pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
        )]
        pub name: String,
        /// Default `["read"]`.
        #[schema(min_items = 1)]
        pub scopes: Option<Vec<Scope>>,
        /// When the key stops working; none = never. A time already past is
        /// a 409.
        pub expires_at: Option<DateTime<Utc>>,
        /// `user` (the default).
        #[schema(inline)]
        pub kind: Option<PersonKind>,
    }

    /// An agent's key: it claims tasks for its `agent_type`, and the audit
    /// trail and the executions it starts name the agent.
    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct AgentKey {
        #[schema(
            example = "claude-code agent",
            min_length = 1,
            max_length = 200,
            pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
        )]
        pub name: String,
        /// Default `["read"]`.
        #[schema(min_items = 1)]
        pub scopes: Option<Vec<Scope>>,
        /// When the key stops working; none = never. A time already past is
        /// a 409.
        pub expires_at: Option<DateTime<Utc>>,
        #[schema(inline)]
        pub kind: AgentKind,
        /// The agent type it claims for, e.g. `claude-code`.
        #[schema(example = "claude-code", pattern = "^[a-z][a-z0-9_-]{0,49}$")]
        pub agent_type: String,
    }
}

/// An agent type as `api_keys_agent_type_check` accepts it (the rule of
/// `agents`, which imports this module, so it is not imported from there).
fn is_agent_type(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 50
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Create an API key. The response holds the key itself, shown this once.
#[utoipa::path(
    post, path = "/api/api-keys", tag = "accounts", security(("bearer" = ["write"])),
    request_body = CreateKeyRequest,
    responses(
        (status = 201, body = CreatedApiKey, headers(("Location" = String, description = "The new key's record (without the key): /api/api-keys/{id}"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Asked for admin scope without being an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`expires_at` has already passed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CreateKeyRequest>,
) -> ApiResult<Created<CreatedApiKey>> {
    let mut scopes = req.scopes.unwrap_or_else(|| vec![Scope::Read]);
    scopes.sort();
    scopes.dedup();
    let mut v = Validator::new();
    v.text("name", &req.name, 1, 200);
    v.check(!scopes.is_empty(), "scopes", "give at least one of read, write, admin");
    match (req.kind, req.agent_type.as_deref()) {
        (ApiKeyKind::Agent, None) => v.error("agent_type", "an agent key needs the agent type it claims for"),
        (ApiKeyKind::Agent, Some(t)) => v.check(
            is_agent_type(t),
            "agent_type",
            "must be 1-50 lowercase letters, digits, `_` or `-`, starting with a letter (e.g. claude-code)",
        ),
        (ApiKeyKind::User, Some(_)) => v.error("agent_type", "only an agent key (kind: agent) has an agent type"),
        (ApiKeyKind::User, None) => {}
    }
    v.finish()?;
    // Well formed, but the clock has passed it: a conflict with now.
    if let Some(at) = req.expires_at
        && at <= Utc::now()
    {
        return Err(ApiError::conflict(
            "expires_at",
            format!("expires_at ({at}) has passed; give a later time, or none"),
        ));
    }
    // A key can never do more than the credential that made it.
    let ceiling = match &principal.credential {
        Credential::Session(_) if principal.role == Role::Admin => Scope::Admin,
        Credential::Session(_) => Scope::Write,
        Credential::ApiKey { scopes, .. } => scopes.iter().max().copied().unwrap_or(Scope::Read),
    };
    if let Some(too_much) = scopes.iter().find(|s| **s > ceiling) {
        return Err(ApiError::Forbidden(format!("you cannot grant the `{}` scope", too_much.as_str())));
    }
    let (key, prefix, hash) = secrets::new_api_key();
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    let api_key = queries::insert_api_key(
        &tx,
        &NewApiKey {
            user_id: principal.user_id,
            name: req.name.trim(),
            prefix: &prefix,
            key_hash: &hash,
            scopes: &scopes,
            expires_at: req.expires_at,
            agent_type: req.agent_type.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Created::at(format!("/api/api-keys/{}", api_key.id), CreatedApiKey { key, api_key }))
}

/// One of the caller's API keys (the key itself is never shown again).
#[utoipa::path(
    get, path = "/api/api-keys/{id}", tag = "accounts", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 200, body = ApiKey),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key of yours", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_key(State(state): State<AppState>, principal: Principal, Path(id): Path<Uuid>) -> ApiResult<Json<ApiKey>> {
    let key = crate::db_read!(state.db, |c| queries::get_api_key(c, principal.user_id, id))?;
    key.map(Json).ok_or(ApiError::NotFound("API key"))
}

/// Revoke one of the caller's API keys. It stops working at once and is
/// gone from the key routes (the audit trail keeps its record).
#[utoipa::path(
    delete, path = "/api/api-keys/{id}", tag = "accounts", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key of yours, or revoked already", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn revoke_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    if !queries::revoke_api_key(&tx, principal.user_id, id).await? {
        return Err(ApiError::NotFound("API key"));
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    pub role: Option<Role>,
    pub plan_type: Option<PlanType>,
    pub is_active: Option<bool>,
    /// Part of the email, any case.
    #[param(max_length = 254, pattern = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")]
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every user, newest first (admin).
#[utoipa::path(
    get, path = "/api/admin/users", tag = "admin", security(("bearer" = ["admin"])),
    params(UserListParams),
    responses(
        (status = 200, body = Page<User>),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn admin_list_users(
    State(state): State<AppState>,
    _admin: AdminPrincipal,
    Query(params): Query<UserListParams>,
) -> ApiResult<Json<Page<User>>> {
    let PageRequest { limit, after } = PageRequest::new(params.limit, params.cursor.as_deref())?;
    let mut v = Validator::new();
    v.opt_text("q", params.q.as_deref(), 1, 254);
    v.finish()?;
    let filter = UserFilter {
        role: params.role,
        plan_type: params.plan_type.map(|p| p.as_str().to_string()),
        is_active: params.is_active,
        q: params.q,
        after,
        limit,
    };
    let rows = crate::db_read!(state.db, |c| queries::list_users(c, &filter))?;
    Ok(Json(Page::from_rows(rows, limit, |u| (u.created_at, u.id))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminUpdateUser {
    pub role: Option<Role>,
    pub plan_type: Option<PlanType>,
    /// `false` deactivates the account and revokes its sessions and keys.
    pub is_active: Option<bool>,
}

/// Change a user's role, plan or active flag (admin).
#[utoipa::path(
    patch, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path, description = "User id"), IfMatch),
    request_body = AdminUpdateUser,
    responses(
        (status = 200, body = User, headers(("ETag" = String, description = "The user's version after the change"))),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Would leave no active admin", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names a version the user no longer has; nothing changed", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn admin_update_user(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(req): Json<AdminUpdateUser>,
) -> ApiResult<Tagged<User>> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&admin.actor()).await?;
    let change = AdminUserChange {
        role: req.role,
        plan_type: req.plan_type.map(|p| p.as_str().to_string()),
        is_active: req.is_active,
    };
    let before = queries::lock_user(&tx, id).await?.ok_or(ApiError::NotFound("user"))?;
    if_match.check("user", &before.etag())?;
    let was_admin = before.role == Role::Admin && before.is_active;
    if was_admin {
        // Two admins demoting each other at once must not both succeed.
        queries::lock_admin_roles(&tx).await?;
    }
    let user = queries::admin_update_user(&tx, id, &change).await?.ok_or(ApiError::NotFound("user"))?;
    let still_admin = user.role == Role::Admin && user.is_active;
    if was_admin && !still_admin && queries::other_active_admins(&tx, id).await? == 0 {
        return Err(ApiError::Conflict {
            detail: "this would leave no active administrator; promote another user first".into(),
            field: None,
        });
    }
    if !user.is_active {
        queries::revoke_sessions_of(&tx, id, None).await?;
        queries::revoke_api_keys_of(&tx, id).await?;
    }
    tx.commit().await?;
    Ok(Tagged(user))
}

/// One user (admin).
#[utoipa::path(
    get, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, body = User, headers(("ETag" = String, description = "The user's version, for If-Match"))),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn admin_get_user(
    State(state): State<AppState>,
    _admin: AdminPrincipal,
    Path(id): Path<Uuid>,
) -> ApiResult<Tagged<User>> {
    let user = crate::db_read!(state.db, |c| queries::get_user(c, id))?;
    user.map(Tagged).ok_or(ApiError::NotFound("user"))
}

/// Close a user's account (admin), as closing one's own does: deactivated
/// at once, sessions and keys revoked, data purged after the retention
/// period. Closing a closed account again changes nothing.
#[utoipa::path(
    delete, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 204, description = "Account closed"),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Would leave no active admin", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn admin_close_user(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&admin.actor()).await?;
    let user = queries::lock_user(&tx, id).await?.ok_or(ApiError::NotFound("user"))?;
    if user.role == Role::Admin && user.is_active {
        queries::lock_admin_roles(&tx).await?;
        if queries::other_active_admins(&tx, id).await? == 0 {
            return Err(ApiError::Conflict {
                detail: "this would leave no active administrator; promote another user first".into(),
                field: None,
            });
        }
    }
    queries::close_account(&tx, id).await?;
    queries::revoke_sessions_of(&tx, id, None).await?;
    queries::revoke_api_keys_of(&tx, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Import existing accounts (admin): JSON lines (`application/x-ndjson`)
/// or CSV with a header (`text/csv`), one account per record with `email`,
/// `password_hash` (bcrypt `$2a$`/`$2b$`/`$2y$`, or an argon2 PHC string),
/// and optionally `name`, `plan` (`free` when empty) and `created_at` (RFC
/// 3339). Every record is checked first: one bad record is a 422 naming
/// `line N: field`, and nothing is imported. Emails that already have an
/// account are skipped. A bcrypt account signs in with its old password; its
/// hash becomes argon2id then.
#[utoipa::path(
    post, path = "/api/admin/users/import", tag = "admin", security(("bearer" = ["admin"])),
    request_body(
        description = "At most 10000 accounts.",
        content(
            (String = "text/csv", example = "email,name,password_hash,plan,created_at\nada@example.com,Ada,$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy,team,2024-01-31T12:00:00Z"),
            (String = "application/x-ndjson", example = "{\"email\": \"ada@example.com\", \"password_hash\": \"$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\", \"plan\": \"team\"}"),
        )
    ),
    responses(
        (status = 200, description = "Imported", body = ImportReport),
        (status = 400, description = "The body is not UTF-8 text", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither text/csv nor application/x-ndjson", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A record is invalid (its line and field are named); nothing was imported", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn admin_import_users(
    State(state): State<AppState>,
    AdminPrincipal(admin): AdminPrincipal,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<ImportReport>> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let format = match content_type.as_deref() {
        Some("text/csv") => import::Format::Csv,
        Some("application/x-ndjson" | "application/jsonl" | "application/json-lines") => import::Format::JsonLines,
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "send the accounts as text/csv or application/x-ndjson (got {})",
                other.unwrap_or("no Content-Type")
            )));
        }
    };
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::BadRequest("the body is not UTF-8 text".into()))?;
    let records = import::parse(text, format)?;
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&admin.actor()).await?;
    let report = import::import(&tx, &records).await?;
    tx.commit().await?;
    Ok(Json(report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::json_schema::testing::{assert_agree, pattern_of, strings};

    fn accepted_by(check: impl Fn(&mut Validator, &str)) -> impl Fn(&str) -> bool {
        move |value| {
            let mut v = Validator::new();
            check(&mut v, value);
            v.finish().is_ok()
        }
    }

    #[test]
    fn the_email_pattern_is_the_rule() {
        let pattern = pattern_of::<RegisterRequest>("/properties/email/pattern");
        let fixed =
            ["ada@example.com", "a@b.c", "a@b..c", "a@.b", "a@b.", "@b.c", "a@@b.c", "a@bc", "a b@c.d", "a@b.c\u{85}"];
        let random = strings("ab.@ \u{85}\u{a0}\u{feff}é", 5000, 10);
        let samples = fixed.into_iter().chain(random.iter().map(String::as_str));
        assert_agree(&pattern, accepted_by(|v, s| v.email("email", s)), samples);
    }

    #[test]
    fn the_avatar_url_pattern_is_the_rule() {
        let pattern = pattern_of::<UpdateMeRequest>("/properties/avatar_url/pattern");
        let fixed =
            ["https://example.com/a%20b.png?s=1#x", "http://x", "https://", "ftp://x", "https://a b", "https://[::1]"];
        let random = strings("htps:/x \u{85}é[%", 5000, 12);
        let samples = fixed.into_iter().chain(random.iter().map(String::as_str));
        assert_agree(&pattern, accepted_by(|v, s| v.url("avatar_url", s)), samples);
    }
}
