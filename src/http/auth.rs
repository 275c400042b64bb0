//! Who is calling: the `Authorization: Bearer` extractor (a session token or
//! an API key), scope and role checks, the client address, and the limiter of
//! failed sign-ins.
//!
//! Scopes are enforced here, once, from the HTTP method: a read-only key may
//! `GET`, anything else needs `write`; admin routes take [`AdminPrincipal`],
//! which needs the admin role and, for a key, the `admin` scope. A handler
//! cannot forget the check.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use chrono::Utc;
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use crate::accounts::model::{Role, Scope};
use crate::accounts::queries;
use crate::accounts::secrets::{API_KEY_PREFIX, hash_token};

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

    /// Whether this caller may see rows owned by `owner`.
    pub fn can_see(&self, owner: Uuid) -> bool {
        owner == self.user_id || self.is_admin()
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
        let client = state.db.client().await?;
        let found = if is_key {
            queries::api_key_by_hash(&client, &hash).await?
        } else {
            queries::session_by_token(&client, &hash).await?
        };
        let what = if is_key { "API key" } else { "session" };
        let row = found.ok_or_else(|| {
            ApiError::Unauthorized(format!("the {what} is not valid or was revoked; sign in again or use another key"))
        })?;
        if !row.user_active {
            return Err(ApiError::Unauthorized("this account is deactivated".into()));
        }
        if row.expires_at.is_some_and(|at| at <= now) {
            return Err(ApiError::Unauthorized(format!("the {what} has expired; sign in again or create a new key")));
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
                queries::touch_api_key(&client, row.id).await?;
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
                return Err(ApiError::Unauthorized("the session expired after inactivity; sign in again".into()));
            }
            if row.last_seen.is_none_or(|at| now - at > TOUCH_EVERY) {
                queries::touch_session(&client, row.id).await?;
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

/// The peer address of the connection (devx does not trust forwarding
/// headers: put the real client address in front via the proxy's own logs).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// The `User-Agent` header, if any, cut to a sane length.
pub fn user_agent(parts_headers: &axum::http::HeaderMap) -> Option<String> {
    parts_headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().filter(|c| *c != '\0').take(512).collect())
}

/// Counts failed sign-ins per key (an email, an address) in a sliding window.
/// Kept in memory: each replica limits on its own, which bounds guessing at
/// replicas x limit per window.
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Keys tracked at most; past this, the oldest windows are dropped first.
const LIMITER_KEYS: usize = 100_000;

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        LoginLimiter { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    /// `Err(seconds to wait)` when any key has used up its failures.
    pub fn check(&self, keys: &[String]) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = 0u64;
        for key in keys {
            if let Some(times) = map.get_mut(key) {
                while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                    times.pop_front();
                }
                if times.len() >= self.max_failures as usize {
                    let oldest = times.front().copied().unwrap_or(now);
                    let left = self.window.saturating_sub(now.duration_since(oldest));
                    wait = wait.max(left.as_secs().max(1));
                }
            }
        }
        if wait > 0 { Err(wait) } else { Ok(()) }
    }

    pub fn record_failure(&self, keys: &[String]) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= LIMITER_KEYS {
            let window = self.window;
            map.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        for key in keys {
            let times = map.entry(key.clone()).or_default();
            times.push_back(now);
            while times.len() > self.max_failures as usize {
                times.pop_front();
            }
        }
    }

    pub fn clear(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_blocks_after_the_allowed_failures() {
        let limiter = LoginLimiter::new(3, Duration::from_secs(60));
        let keys = vec!["email:a@example.com".to_string(), "ip:127.0.0.1".to_string()];
        for _ in 0..3 {
            assert!(limiter.check(&keys).is_ok());
            limiter.record_failure(&keys);
        }
        let wait = limiter.check(&keys).unwrap_err();
        assert!((1..=60).contains(&wait));
        limiter.clear("email:a@example.com");
        assert!(limiter.check(&keys).is_err(), "the address is still limited");
        assert!(limiter.check(&["email:a@example.com".to_string()]).is_ok());
    }

    #[test]
    fn failures_age_out_of_the_window() {
        let limiter = LoginLimiter::new(1, Duration::from_millis(20));
        let keys = vec!["ip:10.0.0.1".to_string()];
        limiter.record_failure(&keys);
        assert!(limiter.check(&keys).is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(limiter.check(&keys).is_ok());
    }
}
