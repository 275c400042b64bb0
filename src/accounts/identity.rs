//! Who is calling: the `Authorization: Bearer` extractor (a session token or
//! an API key, looked up by its SHA-256), and the role and scope checks.
//! Accounts own sessions and keys, so identity lives here; every other
//! capability takes a [`Principal`] or an [`AdminPrincipal`] as an extractor.
//!
//! Scopes are enforced here, once, from the HTTP method: a read-only key may
//! `GET`, anything else needs `write`; admin routes take [`AdminPrincipal`],
//! which needs the admin role and, for a key, the `admin` scope. A handler
//! cannot forget the check.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use chrono::Utc;
use uuid::Uuid;

use super::model::{Role, Scope};
use super::queries;
use super::secrets::{API_KEY_PREFIX, hash_token};
use crate::http::{ApiError, AppState};

/// `last_activity` / `last_used_at` are written at most this often per
/// credential, so that authenticating is a read on almost every request.
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Session(Uuid),
    ApiKey { id: Uuid, scopes: Vec<Scope> },
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
            Credential::ApiKey { id, .. } => format!("user:{} apikey:{id}", self.user_id),
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

    /// Whether this caller may see rows owned by `owner`.
    pub fn can_see(&self, owner: Uuid) -> bool {
        self.visibility().sees(owner)
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
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

fn needed_scope(method: &Method) -> Scope {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) { Scope::Read } else { Scope::Write }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let token = bearer(parts)?;
        let hash = hash_token(token);
        let now = Utc::now();
        let is_key = token.starts_with(API_KEY_PREFIX);
        // An idempotent read, retried once on a fresh connection like any
        // other: every authenticated request takes this path.
        let found = crate::db_read!(state.db, |c| async {
            if is_key { queries::api_key_by_hash(c, &hash).await } else { queries::session_by_token(c, &hash).await }
        })?;
        let what = if is_key { "API key" } else { "session" };
        let row = found.ok_or_else(|| {
            ApiError::InvalidToken(format!("the {what} is not valid or was revoked; sign in again or use another key"))
        })?;
        if !row.user_active {
            return Err(ApiError::InvalidToken("this account is deactivated".into()));
        }
        if row.expires_at.is_some_and(|at| at <= now) {
            return Err(ApiError::InvalidToken(format!("the {what} has expired; sign in again or create a new key")));
        }
        let principal = if is_key {
            let needed = needed_scope(&parts.method);
            let best = row.scopes.iter().max().copied();
            if best.is_none_or(|b| b < needed) {
                return Err(ApiError::Forbidden(format!(
                    "this API key's scopes ({}) do not allow {}: it needs the `{}` scope",
                    row.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                    parts.method,
                    needed.as_str()
                )));
            }
            if row.last_seen.is_none_or(|at| now - at > TOUCH_EVERY) {
                queries::touch_api_key(&state.db.client().await?, row.id).await?;
            }
            Principal {
                user_id: row.user_id,
                role: row.role,
                credential: Credential::ApiKey { id: row.id, scopes: row.scopes },
            }
        } else {
            let idle =
                chrono::TimeDelta::from_std(state.config.http.session_idle_timeout).unwrap_or(chrono::TimeDelta::MAX);
            if row.last_seen.is_some_and(|at| now - at > idle) {
                return Err(ApiError::InvalidToken("the session expired after inactivity; sign in again".into()));
            }
            if row.last_seen.is_none_or(|at| now - at > TOUCH_EVERY) {
                queries::touch_session(&state.db.client().await?, row.id).await?;
            }
            Principal { user_id: row.user_id, role: row.role, credential: Credential::Session(row.id) }
        };
        parts.extensions.insert(principal.clone());
        Ok(principal)
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
