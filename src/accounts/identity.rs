//! Who is calling: the `Authorization: Bearer` extractor (a session token or
//! an API key, looked up by its SHA-256), and the role and scope checks.
//! Accounts own sessions and keys, so identity lives here; every other
//! capability takes a [`Principal`] or an [`AdminPrincipal`] as an extractor,
//! or, for a read whose statements do not depend on who calls, a [`Bearer`]
//! whose lookup goes out with the read ([`crate::db_read_as!`]).
//!
//! Scopes are decided per route, never by HTTP method: each operation states
//! the scope it needs (`read`, `write` or `admin`) in the `security`
//! requirement of its OpenAPI annotation, next to its handler; the
//! composition root turns the document into [`RouteScopes`], and this
//! extractor checks the matched route's scope for every caller. A key holds
//! the scopes it was given; a session holds `read` and `write`, and `admin`
//! when its user is an administrator. Admin handlers also take
//! [`AdminPrincipal`]. A route that declares no scope is refused (and a test
//! fails on it), so a handler cannot forget the check.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{Method, header};
use chrono::Utc;
use uuid::Uuid;

use super::activity::{self, Activity, ActivityAction, Origin};
use super::model::{CredentialRow, Role, Scope};
use super::queries;
use super::secrets::{API_KEY_PREFIX, TokenHash, hash_token};
use super::touch::Touches;
use crate::db::{DbError, Queryable};
use crate::http::{ApiError, AppState};
use tokio_postgres::types::PgLsn;

/// `last_activity` / `last_used_at` are noted at most this often per
/// credential, and written in batches off the request path
/// ([`Touches`]): authenticating is a read.
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Session(Uuid),
    /// An API key; `agent_type` when it is an agent's.
    ApiKey {
        id: Uuid,
        scopes: Vec<Scope>,
        agent_type: Option<String>,
    },
}

/// The signed-in caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub role: Role,
    pub credential: Credential,
}

impl Principal {
    /// The audit actor for changes made by this caller.
    pub fn actor(&self) -> String {
        match &self.credential {
            Credential::Session(_) => format!("user:{}", self.user_id),
            Credential::ApiKey { id, agent_type: None, .. } => format!("user:{} apikey:{id}", self.user_id),
            Credential::ApiKey { id, agent_type: Some(agent), .. } => {
                format!("agent:{agent} user:{} apikey:{id}", self.user_id)
            }
        }
    }

    /// The agent type of an agent's key; `None` for a person.
    pub fn agent_type(&self) -> Option<&str> {
        match &self.credential {
            Credential::ApiKey { agent_type, .. } => agent_type.as_deref(),
            Credential::Session(_) => None,
        }
    }

    /// An admin acting with admin powers (a key needs the admin scope).
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
            && match &self.credential {
                Credential::Session(_) => true,
                Credential::ApiKey { scopes, .. } => scopes.contains(&Scope::Admin),
            }
    }

    pub fn session_id(&self) -> Option<Uuid> {
        match self.credential {
            Credential::Session(id) => Some(id),
            Credential::ApiKey { .. } => None,
        }
    }

    /// Whose rows this caller sees: all of them for an administrator acting
    /// as one (a key needs the admin scope), else their own.
    pub fn visibility(&self) -> crate::db::Visibility {
        if self.is_admin() { crate::db::Visibility::All } else { crate::db::Visibility::Owner(self.user_id) }
    }

    /// Whether this caller may see rows owned by `owner` (`None`: by no
    /// user, which only an admin sees).
    pub fn can_see(&self, owner: impl Into<Option<Uuid>>) -> bool {
        self.visibility().sees(owner)
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized(
            "sign in first: send `Authorization: Bearer <token>` with a session token from POST /api/auth/login or an API key"
                .into(),
        )
    })?;
    let value =
        value.to_str().map_err(|_| ApiError::Unauthorized("the Authorization header is not valid text".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("use the Bearer scheme: `Authorization: Bearer <token>`".into()))?;
    Ok(token)
}

/// What the credential extractors and the sign-in handlers need from the
/// application, as one request extension: every layer a router adds is
/// cloned and run for every request, so three extensions were three layers.
#[derive(Clone)]
pub struct AccountsContext {
    pub scopes: RouteScopes,
    pub touches: Touches,
    pub hasher: super::Hasher,
}

/// The scope each route needs, keyed by method and path template (as axum
/// matches it, e.g. `/api/tasks/{id}`), read from the `bearer` security
/// requirement of every operation of the OpenAPI document. By method, then
/// template: a lookup borrows the request's template, allocating nothing.
#[derive(Debug, Clone, Default)]
pub struct RouteScopes(Arc<HashMap<Method, HashMap<String, Scope>>>);

impl RouteScopes {
    /// Reads every operation's declared scope. An operation that takes a
    /// bearer token but names no scope, or one that is not `read`, `write`
    /// or `admin`, is an error naming it.
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Result<Self, String> {
        let doc = serde_json::to_value(doc).map_err(|e| e.to_string())?;
        let mut scopes: HashMap<Method, HashMap<String, Scope>> = HashMap::new();
        let paths = doc.get("paths").and_then(|p| p.as_object()).into_iter().flatten();
        for (path, item) in paths {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else { continue };
                let requirements = operation.get("security").and_then(|s| s.as_array()).into_iter().flatten();
                let declared: Vec<&str> = requirements
                    .filter_map(|r| r.get("bearer")?.as_array())
                    .flatten()
                    .filter_map(|s| s.as_str())
                    .collect();
                let takes_bearer = operation.get("security").and_then(|s| s.as_array()).is_some_and(|r| !r.is_empty());
                if !takes_bearer {
                    continue;
                }
                let [name] = declared.as_slice() else {
                    return Err(format!(
                        "{method} {path} must declare exactly one scope (read, write or admin) in its \
                         security requirement, e.g. security((\"bearer\" = [\"read\"])); it declares {declared:?}"
                    ));
                };
                let scope =
                    Scope::parse(name).ok_or_else(|| format!("{method} {path} declares unknown scope {name:?}"))?;
                scopes.entry(method).or_default().insert(path.clone(), scope);
            }
        }
        Ok(RouteScopes(Arc::new(scopes)))
    }

    /// The scope `method` on the route template `path` needs (HEAD as GET).
    pub fn needed(&self, method: &Method, path: &str) -> Option<Scope> {
        let method = if method == Method::HEAD { &Method::GET } else { method };
        self.0.get(method).and_then(|paths| paths.get(path)).copied()
    }

    /// Every declared route: method, path template, scope.
    pub fn iter(&self) -> impl Iterator<Item = (&Method, &str, Scope)> {
        self.0.iter().flat_map(|(m, paths)| paths.iter().map(move |(p, s)| (m, p.as_str(), *s)))
    }
}

/// The scope the matched route declares. Undeclared is a server error
/// (logged): refusing is safer than guessing from the method.
fn needed_scope(parts: &Parts) -> Result<Scope, ApiError> {
    let path = parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str);
    let scopes = parts.extensions.get::<AccountsContext>().map(|c| &c.scopes);
    let needed = scopes.zip(path).and_then(|(s, p)| s.needed(&parts.method, p));
    needed.ok_or_else(|| {
        tracing::error!(method = %parts.method, path = ?path, "route declares no scope; refusing the request");
        ApiError::Internal("route declares no scope".into())
    })
}

/// The scopes a session holds: everything its user's role allows.
fn session_scopes(role: Role) -> &'static [Scope] {
    if role == Role::Admin { &[Scope::Read, Scope::Write, Scope::Admin] } else { &[Scope::Read, Scope::Write] }
}

/// A bearer token read from the request, hashed, with the scope its route
/// needs, but not yet looked up. [`Principal`] looks it up at once; a read
/// whose statements do not depend on who calls takes a `Bearer` instead and
/// sends the lookup in the same round trip as its read ([`crate::db_read_as!`]).
pub struct Bearer {
    hash: TokenHash,
    is_key: bool,
    needed: Scope,
    method: Method,
    route: Option<MatchedPath>,
    /// Only for an API key, whose first use records where it came from:
    /// a session's request does not pay for reading it.
    origin: Option<Origin>,
    touches: Touches,
    /// Already authenticated by an earlier extractor of this request.
    known: Option<Principal>,
}

impl FromRequestParts<AppState> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let hash = hash_token(token);
        let is_key = token.starts_with(API_KEY_PREFIX);
        let needed = needed_scope(parts)?;
        let origin = if is_key {
            match Origin::from_request_parts(parts, state).await {
                Ok(origin) => Some(origin),
                Err(never) => match never {},
            }
        } else {
            None
        };
        Ok(Bearer {
            hash,
            is_key,
            needed,
            method: parts.method.clone(),
            route: parts.extensions.get::<MatchedPath>().cloned(),
            origin,
            touches: parts.extensions.get::<AccountsContext>().map(|c| c.touches.clone()).unwrap_or_default(),
            known: parts.extensions.get::<Principal>().cloned(),
        })
    }
}

/// A credential's row as [`Bearer::lookup`] read it, with the caller's last
/// write position when read replicas asked for it.
pub type Found = Option<(CredentialRow, Option<PgLsn>)>;

impl Bearer {
    /// The caller, when an earlier extractor of the request already knows it.
    pub fn known(&self) -> Option<&Principal> {
        self.known.as_ref()
    }

    /// The credential's row. Always on the primary (no caller is known yet):
    /// a revocation counts at once. With `read_position` it also says where
    /// the caller's reads may go (`db::replicas`).
    pub async fn lookup(&self, c: &impl Queryable, read_position: bool) -> Result<Found, DbError> {
        if self.is_key {
            queries::api_key_by_hash(c, &self.hash, read_position).await
        } else {
            queries::session_by_token(c, &self.hash, read_position).await
        }
    }

    /// Looks the credential up on its own connection and checks it.
    pub async fn principal(self, state: &AppState) -> Result<Principal, ApiError> {
        if let Some(known) = self.known {
            return Ok(known);
        }
        // An idempotent read of bounded cost: on the connection shared by
        // such reads when there is one (and no replica needs the caller's
        // read position), then as any other, retried once on a fresh connection.
        let position = state.db.replicas().is_some();
        if !position && let Some(conn) = state.db.pipeline_conn().await {
            match self.lookup(&*conn, false).await {
                Ok(found) => return self.verify(found, state).await,
                Err(e) if !state.db.pipeline_failed(&conn, &e) => return Err(e.into()),
                Err(_) => {}
            }
        }
        let found = crate::db_read!(state.db, |c| async { self.lookup(c, position).await })?;
        self.verify(found, state).await
    }

    /// Checks what [`Bearer::lookup`] found: live, active, not expired or
    /// idle, and holding the route's scope. Notes the use (batched off the
    /// request path) and, for a key's first use, writes its event.
    pub async fn verify(self, found: Found, state: &AppState) -> Result<Principal, ApiError> {
        if let Some(known) = self.known {
            return Ok(known);
        }
        let now = Utc::now();
        let (found, read_after) = found.map_or((None, None), |(row, after)| (Some(row), after));
        let what = if self.is_key { "API key" } else { "session" };
        let row = found.ok_or_else(|| {
            ApiError::InvalidToken(format!("the {what} is not valid or was revoked; sign in again or use another key"))
        })?;
        if !row.user_active {
            return Err(ApiError::InvalidToken("this account is deactivated".into()));
        }
        if row.expires_at.is_some_and(|at| at <= now) {
            return Err(ApiError::InvalidToken(format!("the {what} has expired; sign in again or create a new key")));
        }
        let needed = self.needed;
        let route = self.route.as_ref().map_or("", MatchedPath::as_str);
        let principal = if self.is_key {
            let best = row.scopes.iter().max().copied();
            if best.is_none_or(|b| b < needed) {
                return Err(ApiError::Forbidden(format!(
                    "this API key's scopes ({}) do not allow {} {route}: it needs the `{}` scope",
                    row.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                    self.method,
                    needed.as_str()
                )));
            }
            if row.last_seen.is_none() {
                let origin = self.origin.unwrap_or_default();
                first_use(state, &origin, &self.method, route, row.user_id, row.id).await?;
            } else if row.last_seen.is_some_and(|at| now - at > TOUCH_EVERY) {
                self.touches.api_key(row.id);
            }
            Principal {
                user_id: row.user_id,
                role: row.role,
                credential: Credential::ApiKey { id: row.id, scopes: row.scopes, agent_type: row.agent_type },
            }
        } else {
            let idle =
                chrono::TimeDelta::from_std(state.config.http.session_idle_timeout).unwrap_or(chrono::TimeDelta::MAX);
            if row.last_seen.is_some_and(|at| now - at > idle) {
                return Err(ApiError::InvalidToken("the session expired after inactivity; sign in again".into()));
            }
            if row.last_seen.is_none_or(|at| now - at > TOUCH_EVERY) {
                self.touches.session(row.id);
            }
            if !session_scopes(row.role).contains(&needed) {
                return Err(ApiError::Forbidden("this route is for administrators".into()));
            }
            Principal { user_id: row.user_id, role: row.role, credential: Credential::Session(row.id) }
        };
        crate::db::replicas::note_caller(Some(principal.user_id), read_after);
        Ok(principal)
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let principal = Bearer::from_request_parts(parts, state).await?.principal(state).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// A key's first use: its `last_used_at` set and the `api_key_first_use`
/// event written together, once (of two first requests at the same moment,
/// the one whose update finds the column still empty writes the event).
async fn first_use(
    state: &AppState,
    origin: &Origin,
    method: &Method,
    route: &str,
    user_id: Uuid,
    key_id: Uuid,
) -> Result<(), ApiError> {
    let actor = format!("user:{user_id} apikey:{key_id}");
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&actor).await?;
    if queries::first_touch_api_key(&tx, key_id).await? {
        let activity = Activity {
            user_id: Some(user_id),
            actor: &actor,
            action: ActivityAction::ApiKeyFirstUse,
            origin,
            details: serde_json::json!({"api_key_id": key_id, "request": format!("{method} {route}")}),
        };
        activity::record(&tx, &activity).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The caller of a route that anyone may call but that answers a signed-in
/// caller more (the catalog shows its creator a non-public template): no
/// `Authorization` header is `None`; a header that is sent must be valid.
impl axum::extract::OptionalFromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, ApiError> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            // Anonymous: nothing of its own to read back.
            crate::db::replicas::note_caller(None, None);
            return Ok(None);
        }
        <Principal as FromRequestParts<AppState>>::from_request_parts(parts, state).await.map(Some)
    }
}

/// Idempotency keys belong to the user, whichever session or key sends them.
impl crate::http::idempotency::Caller for Principal {
    fn caller_id(&self) -> Uuid {
        self.user_id
    }
}

/// A caller with admin powers; others get 403.
#[derive(Debug, Clone)]
pub struct AdminPrincipal(pub Principal);

impl FromRequestParts<AppState> for AdminPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if principal.is_admin() {
            Ok(AdminPrincipal(principal))
        } else if principal.role == Role::Admin {
            Err(ApiError::Forbidden("this API key lacks the `admin` scope needed here".into()))
        } else {
            Err(ApiError::Forbidden("this route is for administrators".into()))
        }
    }
}

/// [`crate::db_read!`] for a caller not yet looked up: `$bearer`'s
/// credential lookup and the read `|c| body` go out together on one
/// connection (tokio-postgres pipelines statements polled at once), so an
/// authenticated read costs one round trip. The read's result is answered
/// only once the credential holds (a revoked one is refused as at once as
/// ever: both statements run now); its statements must therefore not depend
/// on who calls, and the handler checks access on what it read, with the
/// [`Principal`] this returns as `Ok((principal, value))`.
///
/// Both go on a connection shared with other requests' reads when there is
/// one (`db::pipeline`), so the read's statements must be of bounded cost;
/// one that breaks there or outlasts its short timeouts runs again, with the
/// lookup, on a pooled connection.
///
/// With read replicas the credential is looked up first, on the primary (it
/// says where the caller's reads may go), and the read follows.
#[macro_export]
macro_rules! db_read_as {
    ($state:expr, $bearer:expr, |$c:ident| $body:expr) => {{
        let state: &$crate::http::AppState = &$state;
        let bearer: $crate::accounts::Bearer = $bearer;
        if state.db.replicas().is_some() || bearer.known().is_some() {
            match bearer.principal(state).await {
                Ok(principal) => $crate::db_read!(state.db, |$c| $body)
                    .map(|value| (principal, value))
                    .map_err($crate::http::ApiError::from),
                Err(e) => Err(e),
            }
        } else {
            // First on a shared connection; what must run again goes to the pool.
            let shared = match state.db.pipeline_conn().await {
                Some(conn) => {
                    let $c = &*conn;
                    let (found, value) = ::tokio::join!(bearer.lookup($c, false), $body);
                    let again = |e: Option<&$crate::db::DbError>| e.is_some_and(|e| state.db.pipeline_failed(&conn, e));
                    if again(found.as_ref().err()) || again(value.as_ref().err()) {
                        None
                    } else {
                        Some(found.map(|found| (found, value)))
                    }
                }
                None => None,
            };
            let read = if let Some(read) = shared {
                read
            } else {
                $crate::db_read!(state.db, |$c| async {
                    let (found, value) = ::tokio::join!(bearer.lookup($c, false), $body);
                    let found = found?;
                    // A transient failure of the read retries both; any other
                    // error is answered only to a caller whose credential holds.
                    match value {
                        Err(e) if $crate::db::DbError::is_transient(&e) => Err(e),
                        value => Ok((found, value)),
                    }
                })
            };
            match read {
                Ok((found, value)) => match bearer.verify(found, state).await {
                    Ok(principal) => value.map(|value| (principal, value)).map_err($crate::http::ApiError::from),
                    Err(e) => Err(e),
                },
                Err(e) => Err($crate::http::ApiError::from(e)),
            }
        }
    }};
}
