//! The SQL of accounts: users, sessions and API keys. Small functions taking
//! `&impl Queryable` (a connection or a transaction) so that handlers compose
//! several into one transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{API_KEY_COLUMNS, ApiKey, CredentialRow, PlanType, Role, Scope, SessionInfo, USER_COLUMNS, User};
use super::secrets::TokenHash;
use crate::db::{DbError, FromRow, Queryable, Statement, escape_like};
use tokio_postgres::types::PgLsn;

pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub role: Role,
    pub plan_type: PlanType,
}

pub async fn insert_user(db: &impl Queryable, user: &NewUser<'_>) -> Result<User, DbError> {
    let sql = format!(
        "INSERT INTO devx.users AS u (id, email, name, password_hash, role, plan_type)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING {USER_COLUMNS}"
    );
    db.query_one_as(&sql, &[&user.id, &user.email, &user.name, &user.password_hash, &user.role, &user.plan_type]).await
}

pub async fn get_user(db: &impl Queryable, id: Uuid) -> Result<Option<User>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM devx.users u WHERE u.id = $1");
    db.query_opt_as(&sql, &[&id]).await
}

/// A user and the password hash read beside it.
#[derive(FromRow)]
struct Login {
    #[from_row(flatten)]
    user: User,
    password_hash: Option<String>,
}

/// The user and password hash for a sign-in attempt (matched without case).
pub async fn find_login(db: &impl Queryable, email: &str) -> Result<Option<(User, Option<String>)>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS}, u.password_hash FROM devx.users u WHERE lower(u.email) = lower($1)");
    Ok(db.query_opt_as::<Login>(&sql, &[&email]).await?.map(|l| (l.user, l.password_hash)))
}

/// The account's email and password hash (for a password change).
pub async fn login_secret(db: &impl Queryable, user_id: Uuid) -> Result<(String, Option<String>), DbError> {
    #[derive(FromRow)]
    struct Secret {
        email: String,
        password_hash: Option<String>,
    }
    let row: Secret = db.query_one_as("SELECT email, password_hash FROM devx.users WHERE id = $1", &[&user_id]).await?;
    Ok((row.email, row.password_hash))
}

/// Stamps a sign-in; the time stored.
pub async fn record_login(db: &impl Queryable, user_id: Uuid) -> Result<DateTime<Utc>, DbError> {
    db.query_scalar("UPDATE devx.users SET last_login = now() WHERE id = $1 RETURNING last_login", &[&user_id]).await
}

/// Changes the fields given (`None` leaves a field as it is; `Some(None)` clears it).
pub async fn update_profile(
    db: &impl Queryable,
    user_id: Uuid,
    name: Option<Option<&str>>,
    avatar_url: Option<Option<&str>>,
) -> Result<Option<User>, DbError> {
    let sql = format!(
        "UPDATE devx.users u
            SET name = CASE WHEN $2 THEN $3 ELSE u.name END,
                avatar_url = CASE WHEN $4 THEN $5 ELSE u.avatar_url END
          WHERE u.id = $1
         RETURNING {USER_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&user_id, &name.is_some(), &name.flatten(), &avatar_url.is_some(), &avatar_url.flatten()])
        .await
}

/// Replaces the password hash if it is still `old` (an imported bcrypt hash
/// upgraded at sign-in; a concurrent change wins).
pub async fn replace_password_hash(db: &impl Queryable, user_id: Uuid, old: &str, new: &str) -> Result<(), DbError> {
    db.execute(
        "UPDATE devx.users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
        &[&user_id, &old, &new],
    )
    .await?;
    Ok(())
}

pub async fn set_password_hash(db: &impl Queryable, user_id: Uuid, hash: &str) -> Result<(), DbError> {
    db.execute("UPDATE devx.users SET password_hash = $2 WHERE id = $1", &[&user_id, &hash]).await?;
    Ok(())
}

/// Closes an account: it can no longer sign in; retention purges it later.
pub async fn close_account(db: &impl Queryable, user_id: Uuid) -> Result<(), DbError> {
    db.execute(
        "UPDATE devx.users SET is_active = false, deleted_at = coalesce(deleted_at, now()) WHERE id = $1",
        &[&user_id],
    )
    .await?;
    Ok(())
}

pub struct AdminUserChange {
    pub role: Option<Role>,
    pub plan_type: Option<String>,
    pub is_active: Option<bool>,
}

pub async fn admin_update_user(
    db: &impl Queryable,
    id: Uuid,
    change: &AdminUserChange,
) -> Result<Option<User>, DbError> {
    let sql = format!(
        "UPDATE devx.users u
            SET role = coalesce($2, u.role),
                plan_type = coalesce($3, u.plan_type),
                is_active = coalesce($4, u.is_active)
          WHERE u.id = $1
         RETURNING {USER_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&id, &change.role.map(Role::as_str), &change.plan_type, &change.is_active]).await
}

/// The user, row-locked until the transaction ends.
pub async fn lock_user(db: &impl Queryable, id: Uuid) -> Result<Option<User>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM devx.users u WHERE u.id = $1 FOR UPDATE");
    db.query_opt_as(&sql, &[&id]).await
}

/// Serializes changes that could remove an administrator.
pub async fn lock_admin_roles(db: &impl Queryable) -> Result<(), DbError> {
    db.execute("SELECT pg_advisory_xact_lock(hashtext('devx.admin-roles'))", &[]).await?;
    Ok(())
}

/// Active admins other than `except`: an admin may not remove the last one.
pub async fn other_active_admins(db: &impl Queryable, except: Uuid) -> Result<i64, DbError> {
    db.query_scalar("SELECT count(*) FROM devx.users WHERE role = 'admin' AND is_active AND id <> $1", &[&except]).await
}

pub struct UserFilter {
    pub role: Option<Role>,
    pub plan_type: Option<String>,
    pub is_active: Option<bool>,
    /// Substring of the email, any case.
    pub q: Option<String>,
    /// Keyset: (created_at, id) of the last row seen, newest first.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Newest first; fetches `limit + 1` rows (see `Page::from_rows`).
pub async fn list_users(db: &impl Queryable, f: &UserFilter) -> Result<Vec<User>, DbError> {
    let mut s = Statement::default();
    s.and_some(f.role.map(Role::as_str), |role| format!("u.role = {role}"));
    s.and_some(f.plan_type.as_deref(), |plan| format!("u.plan_type = {plan}"));
    s.and_some(f.is_active, |active| format!("u.is_active = {active}"));
    s.and_some(f.q.as_deref().map(escape_like), |q| format!("u.email ILIKE '%' || {q}::text || '%'"));
    s.newest_first(&format!("SELECT {USER_COLUMNS} FROM devx.users u"), "u", f.after, f.limit);
    s.query_as(db).await
}

pub struct NewSession<'a> {
    pub user_id: Uuid,
    pub token_hash: &'a TokenHash,
    pub expires_at: DateTime<Utc>,
    pub ip_address: Option<std::net::IpAddr>,
    pub user_agent: Option<&'a str>,
}

pub async fn insert_session(db: &impl Queryable, s: &NewSession<'_>) -> Result<Uuid, DbError> {
    db.query_scalar(
        "INSERT INTO devx.sessions (user_id, token_hash, expires_at, ip_address, user_agent)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[&s.user_id, &s.token_hash.as_slice(), &s.expires_at, &s.ip_address, &s.user_agent],
    )
    .await
}

/// A session as [`session_by_token`] reads it (a session has no scopes).
#[derive(FromRow)]
struct SessionCredential {
    id: Uuid,
    user_id: Uuid,
    role: Role,
    user_active: bool,
    expires_at: DateTime<Utc>,
    last_seen: DateTime<Utc>,
}

/// The statement of [`session_by_token`]; `(position)` adds the user's
/// last write position still in its window (`devx.read_positions`), so that
/// with read replicas choosing one for the request's reads costs no round trip.
macro_rules! session_select {
    () => {
        session_select!(@ "")
    };
    (position) => {
        session_select!(@ ",
                    (SELECT p.lsn FROM devx.read_positions p WHERE p.user_id = s.user_id AND p.expires_at > now())
                      AS read_after")
    };
    (@ $extra:literal) => {
        concat!(
            "SELECT s.id, s.user_id, u.role, u.is_active AS user_active, s.expires_at, s.last_activity AS last_seen",
            $extra,
            "
               FROM devx.sessions s JOIN devx.users u ON u.id = s.user_id
              WHERE s.token_hash = $1 AND s.is_active AND s.revoked_at IS NULL"
        )
    };
}

/// The live session behind a token hash, with its user, and with
/// `read_position` the user's last write position still in its window.
pub async fn session_by_token(
    db: &impl Queryable,
    hash: &TokenHash,
    read_position: bool,
) -> Result<Option<(CredentialRow, Option<PgLsn>)>, DbError> {
    let sql = if read_position { session_select!(position) } else { session_select!() };
    let Some(row) = db.query_opt(sql, &[&hash.as_slice()]).await? else { return Ok(None) };
    let s: SessionCredential = crate::db::row::decode(&row)?;
    let after = if read_position { crate::db::column(&row, "read_after")? } else { None };
    Ok(Some((
        CredentialRow {
            id: s.id,
            user_id: s.user_id,
            role: s.role,
            user_active: s.user_active,
            expires_at: Some(s.expires_at),
            last_seen: Some(s.last_seen),
            scopes: Vec::new(),
            agent_type: None,
        },
        after,
    )))
}

/// Marks sessions as used now (`accounts::touch` batches them).
pub async fn touch_sessions(db: &impl Queryable, ids: &[Uuid]) -> Result<(), DbError> {
    db.execute("UPDATE devx.sessions SET last_activity = now() WHERE id = ANY($1)", &[&ids]).await?;
    Ok(())
}

/// Ends one live session of the user; false when the user has none with that id.
pub async fn revoke_session(db: &impl Queryable, user_id: Uuid, id: Uuid) -> Result<bool, DbError> {
    let ended = db
        .execute(
            "UPDATE devx.sessions SET is_active = false, revoked_at = now()
              WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            &[&id, &user_id],
        )
        .await?;
    Ok(ended > 0)
}

/// A user's live sessions (not ended, not expired), newest first, keyset on
/// (created_at, id); `current` is marked.
pub async fn list_sessions(
    db: &impl Queryable,
    user_id: Uuid,
    current: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<SessionInfo>, DbError> {
    let mut s = Statement::default();
    let current = s.bind(current.unwrap_or(Uuid::nil()));
    let user_id = s.bind(user_id);
    s.and(format!("s.user_id = {user_id} AND s.revoked_at IS NULL AND s.is_active AND s.expires_at > now()"));
    let select = format!(
        "SELECT s.id, s.created_at, s.last_activity, s.expires_at, s.ip_address, s.user_agent,
                (s.id = {current}) AS current
           FROM devx.sessions s"
    );
    s.newest_first(&select, "s", after, limit);
    s.query_as(db).await
}

/// Revokes every live session of a user except `keep`.
pub async fn revoke_sessions_of(db: &impl Queryable, user_id: Uuid, keep: Option<Uuid>) -> Result<u64, DbError> {
    let mut s = Statement::default();
    let user_id = s.bind(user_id);
    s.and(format!("user_id = {user_id} AND revoked_at IS NULL"));
    s.and_some(keep, |keep| format!("id <> {keep}"));
    s.sql = format!("UPDATE devx.sessions SET is_active = false, revoked_at = now() {}", s.where_clause());
    s.execute(db).await
}

pub struct NewApiKey<'a> {
    pub user_id: Uuid,
    pub name: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a TokenHash,
    pub scopes: &'a [Scope],
    pub expires_at: Option<DateTime<Utc>>,
    /// An agent's key: the agent type it claims for.
    pub agent_type: Option<&'a str>,
}

pub async fn insert_api_key(db: &impl Queryable, k: &NewApiKey<'_>) -> Result<ApiKey, DbError> {
    let sql = format!(
        "INSERT INTO devx.api_keys AS k (user_id, name, prefix, key_hash, scopes, expires_at, agent_type)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {API_KEY_COLUMNS}"
    );
    db.query_one_as(
        &sql,
        &[&k.user_id, &k.name, &k.prefix, &k.key_hash.as_slice(), &k.scopes, &k.expires_at, &k.agent_type],
    )
    .await
}

/// A user's keys, newest first, keyset on (created_at, id).
pub async fn list_api_keys(
    db: &impl Queryable,
    user_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ApiKey>, DbError> {
    let mut s = Statement::default();
    let user_id = s.bind(user_id);
    s.and(format!("k.user_id = {user_id} AND k.revoked_at IS NULL"));
    s.newest_first(&format!("SELECT {API_KEY_COLUMNS} FROM devx.api_keys k"), "k", after, limit);
    s.query_as(db).await
}

/// One of the user's keys. A revoked key is gone from the user's view (its
/// row stays, for the audit trail).
pub async fn get_api_key(db: &impl Queryable, user_id: Uuid, id: Uuid) -> Result<Option<ApiKey>, DbError> {
    let sql = format!(
        "SELECT {API_KEY_COLUMNS} FROM devx.api_keys k WHERE k.id = $1 AND k.user_id = $2 AND k.revoked_at IS NULL"
    );
    db.query_opt_as(&sql, &[&id, &user_id]).await
}

/// Revokes one of the user's keys; false when the user has no such key
/// (or it was revoked already).
pub async fn revoke_api_key(db: &impl Queryable, user_id: Uuid, id: Uuid) -> Result<bool, DbError> {
    let row = db
        .query_opt(
            "UPDATE devx.api_keys SET revoked_at = now()
              WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id",
            &[&id, &user_id],
        )
        .await?;
    Ok(row.is_some())
}

pub async fn revoke_api_keys_of(db: &impl Queryable, user_id: Uuid) -> Result<u64, DbError> {
    db.execute("UPDATE devx.api_keys SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", &[&user_id])
        .await
}

/// The statement of [`api_key_by_hash`]; `(position)` as in [`session_select`].
macro_rules! api_key_select {
    () => {
        api_key_select!(@ "")
    };
    (position) => {
        api_key_select!(@ ",
                (SELECT p.lsn FROM devx.read_positions p WHERE p.user_id = k.user_id AND p.expires_at > now())
                  AS read_after")
    };
    (@ $extra:literal) => {
        concat!(
            "SELECT k.id, k.user_id, u.role, u.is_active AS user_active, k.expires_at, k.last_used_at AS last_seen,
                k.scopes, k.agent_type",
            $extra,
            "
           FROM devx.api_keys k JOIN devx.users u ON u.id = k.user_id
          WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
        )
    };
}

/// The unrevoked key behind a key hash, with its user, and with
/// `read_position` the user's last write position still in its window.
pub async fn api_key_by_hash(
    db: &impl Queryable,
    hash: &TokenHash,
    read_position: bool,
) -> Result<Option<(CredentialRow, Option<PgLsn>)>, DbError> {
    let sql = if read_position { api_key_select!(position) } else { api_key_select!() };
    let Some(row) = db.query_opt(sql, &[&hash.as_slice()]).await? else { return Ok(None) };
    let key: CredentialRow = crate::db::row::decode(&row)?;
    let after = if read_position { crate::db::column(&row, "read_after")? } else { None };
    Ok(Some((key, after)))
}

/// Sets `last_used_at` if the key was never used; whether it did.
pub async fn first_touch_api_key(db: &impl Queryable, id: Uuid) -> Result<bool, DbError> {
    let n = db
        .execute("UPDATE devx.api_keys SET last_used_at = now() WHERE id = $1 AND last_used_at IS NULL", &[&id])
        .await?;
    Ok(n > 0)
}

/// Marks API keys as used now (`accounts::touch` batches them).
pub async fn touch_api_keys(db: &impl Queryable, ids: &[Uuid]) -> Result<(), DbError> {
    db.execute("UPDATE devx.api_keys SET last_used_at = now() WHERE id = ANY($1)", &[&ids]).await?;
    Ok(())
}
