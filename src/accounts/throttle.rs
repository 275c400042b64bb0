//! Sign-in throttling, kept in PostgreSQL (`devx.sign_in_throttle`) so that
//! every devx process shares the counts and a restart does not clear them.
//!
//! Three kinds of key, each with its own limit within `DEVX_LOGIN_WINDOW`:
//! - `account:<email>`: failed sign-ins (and wrong current passwords when
//!   changing one) for one account, known or not, so that an unknown email
//!   behaves like a known one. `DEVX_LOGIN_MAX_FAILURES` (5) of them lock
//!   the account for `DEVX_LOGIN_LOCKOUT` (1 minute), doubling with each
//!   lockout in a row up to an hour; the answer is 429 with `Retry-After`.
//! - `address:<ip>`: failed sign-ins from one client address, with a much
//!   higher limit (`DEVX_LOGIN_MAX_FAILURES_PER_ADDRESS`, 100), so an attack
//!   on one account locks that account, never its neighbours behind the
//!   same NAT or proxy, while one address still cannot try passwords
//!   against every account without end.
//! - `register:<ip>`: registrations from one address
//!   (`DEVX_REGISTER_MAX_PER_ADDRESS`, 20), since a registration says
//!   whether an email has an account (409): that answer is what a sign-up
//!   form needs, and its use for enumeration is bounded here.
//!
//! A lockout starting, and an unlock (`devx users unlock --email`), are
//! written to the audit trail by triggers, and a lockout starting also to the
//! activity log (`lockout`, with the key and its end); retention prunes quiet
//! counters.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::activity::{self, Activity, ActivityAction, Origin};
use crate::config::HttpConfig;
use crate::db::{DbError, Queryable};
use crate::http::ApiError;

/// Lockouts never last longer than this, however many came before.
const MAX_LOCKOUT: Duration = Duration::from_secs(3600);

/// One throttled key and its limit.
#[derive(Debug, Clone)]
pub struct Key {
    key: String,
    limit: u32,
}

#[derive(crate::db::FromRow)]
struct Counted {
    /// This failure reached the limit: the count starts over, locked.
    locked: bool,
    locked_until: Option<DateTime<Utc>>,
}

impl Key {
    pub fn account(email: &str, http: &HttpConfig) -> Key {
        Key { key: format!("account:{}", email.trim().to_lowercase()), limit: http.login_max_failures }
    }

    pub fn address(ip: IpAddr, http: &HttpConfig) -> Key {
        Key { key: format!("address:{ip}"), limit: http.login_max_failures_per_address }
    }

    pub fn registration(ip: IpAddr, http: &HttpConfig) -> Key {
        Key { key: format!("register:{ip}"), limit: http.register_max_per_address }
    }
}

/// 429 with the seconds left, if any of `keys` is locked now.
pub async fn check(db: &impl Queryable, keys: &[Key], what: &str) -> Result<(), ApiError> {
    let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
    let until: Option<DateTime<Utc>> = db
        .query_scalar(
            "SELECT max(locked_until) FROM devx.sign_in_throttle WHERE key = ANY($1) AND locked_until > now()",
            &[&names],
        )
        .await?;
    match until {
        None => Ok(()),
        Some(until) => {
            let retry_after_secs = u64::try_from((until - Utc::now()).num_seconds()).unwrap_or(0).max(1);
            Err(ApiError::TooManyRequests {
                detail: format!("too many {what}; try again in {retry_after_secs} seconds"),
                retry_after_secs,
            })
        }
    }
}

/// Counts one failure against each key. A key that reaches its limit within
/// the window is locked (the count starts over), for a period that doubles
/// with each lockout in a row; a window that passed without failures forgets
/// both the count and the lockouts. A lockout that starts is written to the
/// activity log, with `user_id` when the key is an account's.
pub async fn record_failure(
    db: &impl Queryable,
    keys: &[Key],
    http: &HttpConfig,
    origin: &Origin,
    user_id: Option<Uuid>,
) -> Result<(), DbError> {
    let window = interval(http.login_window);
    let base = interval(http.login_lockout);
    let max = interval(MAX_LOCKOUT.max(http.login_lockout));
    // On conflict, `t` is the stored row: `stale` says its count belongs to
    // a window that has passed, `locks` that this failure reaches the limit.
    let stale = "t.last_failure_at < now() - $3::text::interval";
    let count = format!("(CASE WHEN {stale} THEN 0 ELSE t.failures END + 1)");
    let lockouts = format!("(CASE WHEN {stale} THEN 0 ELSE t.lockouts END)");
    let locks = format!("{count} >= $2");
    let sql = format!(
        "INSERT INTO devx.sign_in_throttle AS t (key, failures, lockouts, locked_until)
         VALUES ($1, CASE WHEN $2 <= 1 THEN 0 ELSE 1 END, CASE WHEN $2 <= 1 THEN 1 ELSE 0 END,
                 CASE WHEN $2 <= 1 THEN now() + $4::text::interval END)
         ON CONFLICT (key) DO UPDATE SET
             failures = CASE WHEN {locks} THEN 0 ELSE {count} END,
             lockouts = CASE WHEN {locks} THEN {lockouts} + 1 ELSE {lockouts} END,
             locked_until = CASE WHEN {locks}
                                 THEN now() + least($4::text::interval * power(2, {lockouts}), $5::text::interval)
                                 ELSE t.locked_until END,
             window_started_at = CASE WHEN {stale} THEN now() ELSE t.window_started_at END,
             last_failure_at = now()
         RETURNING t.failures = 0 AS locked, t.locked_until"
    );
    for key in keys {
        let limit = i32::try_from(key.limit).unwrap_or(i32::MAX);
        let counted: Counted = db.query_one_as(&sql, &[&key.key, &limit, &window, &base, &max]).await?;
        if counted.locked {
            let user_id = user_id.filter(|_| key.key.starts_with("account:"));
            let actor = user_id.map_or_else(|| activity::ANONYMOUS.to_string(), |id| format!("user:{id}"));
            let details = serde_json::json!({"key": key.key, "locked_until": counted.locked_until});
            activity::record(
                db,
                &Activity { user_id, actor: &actor, action: ActivityAction::Lockout, origin, details },
            )
            .await?;
        }
    }
    Ok(())
}

/// Forgets the failures of `key` (a successful sign-in clears its account's
/// count; an address keeps its own). Returns whether there was a row.
pub async fn clear(db: &impl Queryable, key: &Key) -> Result<bool, DbError> {
    Ok(db.execute("DELETE FROM devx.sign_in_throttle WHERE key = $1", &[&key.key]).await? > 0)
}

/// An interval literal PostgreSQL reads: whole milliseconds.
fn interval(d: Duration) -> String {
    format!("{} milliseconds", d.as_millis())
}
