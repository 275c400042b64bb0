//! The activity log (`devx.activity_logs`): application events that change
//! no row of their own, which the audit trail therefore cannot show: a
//! sign-in, a sign-out, a failed sign-in, a lockout, an API key's first use,
//! a generation started. The code path that does the event writes it, in
//! the event's own transaction where there is one (a failed sign-in has
//! none: it is written with the failure count, though the sign-in is
//! refused). Append-only (an UPDATE is refused by a trigger), pruned by
//! retention; admins read it with `GET /api/admin/activity-logs`.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::db::{DbError, Queryable, Statement};
use crate::http::AppState;
use crate::http::client::{ClientIp, user_agent};

crate::text_enum! {
    /// What happened.
    pub enum ActivityAction {
        /// A session was opened (sign-in, or registration).
        SignIn,
        /// A session was ended by its user.
        SignOut,
        /// A sign-in was refused: wrong email or password.
        SignInFailed,
        /// Failures locked an account or a client address for a while.
        Lockout,
        /// An API key authenticated a request for the first time.
        ApiKeyFirstUse,
        /// A generation was recorded as started.
        GenerationStarted,
    }
}

/// One event, as admins read it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct ActivityEntry {
    pub id: i64,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// The account concerned; none for a failed sign-in with an unknown
    /// email, or a lockout of a client address.
    pub user_id: Option<Uuid>,
    /// `user:<id>`, `user:<id> apikey:<id>`, or `anonymous`.
    #[schema(example = "user:7f1c0c6e-2f4e-4a8b-9a51-1c7b1d2e3f40")]
    pub actor: String,
    pub action: ActivityAction,
    /// The client's address (see `DEVX_TRUSTED_PROXIES`).
    #[schema(value_type = Option<String>, example = "203.0.113.7")]
    pub ip_address: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// What else is known: the session or key id, the email tried, the
    /// lockout's end, the generation's id and type.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// The columns an [`ActivityEntry`] is read from (the table is aliased `l`).
const COLUMNS: &str = "l.id, l.created_at, l.user_id, l.actor, l.action, l.ip_address, l.user_agent, l.details";

/// Where a request came from: its client address and user agent.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        Ok(Origin { ip, user_agent: user_agent(&parts.headers) })
    }
}

/// The actor of an event no account is known for.
pub const ANONYMOUS: &str = "anonymous";

/// One event to write.
pub struct Activity<'a> {
    pub user_id: Option<Uuid>,
    pub actor: &'a str,
    pub action: ActivityAction,
    pub origin: &'a Origin,
    pub details: Value,
}

/// Appends one event.
pub async fn record(db: &impl Queryable, a: &Activity<'_>) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO devx.activity_logs (user_id, actor, action, ip_address, user_agent, details)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&a.user_id, &a.actor, &a.action, &a.origin.ip, &a.origin.user_agent, &a.details],
    )
    .await?;
    Ok(())
}

pub struct ActivityFilter {
    pub user_id: Option<Uuid>,
    pub action: Option<ActivityAction>,
    /// `created_at >= since`
    pub since: Option<DateTime<Utc>>,
    /// Keyset: (created_at, id) of the last row seen, newest first.
    pub after: Option<(DateTime<Utc>, i64)>,
    pub limit: i64,
}

/// Newest first; fetches `limit + 1` rows (see `Page::from_rows`).
pub async fn list(db: &impl Queryable, f: &ActivityFilter) -> Result<Vec<ActivityEntry>, DbError> {
    let mut s = Statement::default();
    s.and_some(f.user_id, |v| format!("l.user_id = {v}"));
    s.and_some(f.action, |v| format!("l.action = {v}"));
    s.and_some(f.since, |v| format!("l.created_at >= {v}"));
    s.newest_first(&format!("SELECT {COLUMNS} FROM devx.activity_logs l"), "l", f.after, f.limit);
    s.query_as(db).await
}
