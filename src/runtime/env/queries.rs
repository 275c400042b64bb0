//! The SQL of environment variables. The owner's column comes from
//! [`Owner`], never from input.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Flags, Owner};
use crate::db::{DbError, FromRow, Queryable};
use crate::runtime::secrets::Sealed;

/// A stored variable, its value still sealed.
#[derive(FromRow)]
pub struct EnvRow {
    pub id: Uuid,
    pub key: String,
    pub value_sealed: Vec<u8>,
    pub value_key_id: String,
    pub is_secret: bool,
    pub is_buildtime: bool,
    pub is_runtime: bool,
    pub is_preview: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<String>,
}

const COLUMNS: &str = "id, key, value_sealed, value_key_id, is_secret, is_buildtime, is_runtime, is_preview, \
     created_at, updated_at, updated_by";

/// An owner's variables by key, the non-preview one first.
pub async fn list(db: &impl Queryable, owner: Owner) -> Result<Vec<EnvRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM devx.env_vars WHERE {} = $1 ORDER BY key, is_preview", owner.column());
    db.query_as(&sql, &[&owner.id()]).await
}

/// The variables of several services, with the service each belongs to.
#[derive(FromRow)]
pub struct ServiceEnvRow {
    pub service_id: Uuid,
    #[from_row(flatten)]
    pub row: EnvRow,
}

pub async fn list_services(db: &impl Queryable, ids: &[Uuid]) -> Result<Vec<ServiceEnvRow>, DbError> {
    let sql = format!(
        "SELECT service_id, {COLUMNS} FROM devx.env_vars WHERE service_id = ANY($1) AND NOT is_preview ORDER BY key"
    );
    db.query_as(&sql, &[&ids]).await
}

pub async fn get(db: &impl Queryable, owner: Owner, key: &str, preview: bool) -> Result<Option<EnvRow>, DbError> {
    let sql =
        format!("SELECT {COLUMNS} FROM devx.env_vars WHERE {} = $1 AND key = $2 AND is_preview = $3", owner.column());
    db.query_opt_as(&sql, &[&owner.id(), &key, &preview]).await
}

pub async fn find_id(db: &impl Queryable, owner: Owner, key: &str, preview: bool) -> Result<Option<Uuid>, DbError> {
    let sql = format!(
        "SELECT id FROM devx.env_vars WHERE {} = $1 AND key = $2 AND is_preview = $3 FOR UPDATE",
        owner.column()
    );
    db.query_scalar_opt(&sql, &[&owner.id(), &key, &preview]).await
}

#[allow(clippy::too_many_arguments)]
pub async fn insert(
    db: &impl Queryable,
    id: Uuid,
    owner: Owner,
    key: &str,
    sealed: &Sealed,
    f: Flags,
    preview: bool,
    actor: &str,
) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO devx.env_vars (id, {}, key, value_sealed, value_key_id, is_secret, is_buildtime, is_runtime,
                                    is_preview, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        owner.column()
    );
    db.execute(
        &sql,
        &[
            &id,
            &owner.id(),
            &key,
            &sealed.bytes,
            &sealed.key_id,
            &f.is_secret,
            &f.is_buildtime,
            &f.is_runtime,
            &preview,
            &actor,
        ],
    )
    .await?;
    Ok(())
}

pub async fn update(db: &impl Queryable, id: Uuid, sealed: &Sealed, f: Flags, actor: &str) -> Result<(), DbError> {
    db.execute(
        "UPDATE devx.env_vars
            SET value_sealed = $2, value_key_id = $3, is_secret = $4, is_buildtime = $5, is_runtime = $6,
                updated_by = $7
          WHERE id = $1",
        &[&id, &sealed.bytes, &sealed.key_id, &f.is_secret, &f.is_buildtime, &f.is_runtime, &actor],
    )
    .await?;
    Ok(())
}

pub async fn delete(db: &impl Queryable, owner: Owner, key: &str, preview: bool) -> Result<bool, DbError> {
    let sql = format!("DELETE FROM devx.env_vars WHERE {} = $1 AND key = $2 AND is_preview = $3", owner.column());
    Ok(db.execute(&sql, &[&owner.id(), &key, &preview]).await? > 0)
}

/// A service's legacy plaintext variables, locked.
#[derive(FromRow)]
pub struct LegacyRow {
    pub id: Uuid,
    pub environment_vars: serde_json::Value,
}

pub async fn legacy_services(db: &impl Queryable) -> Result<Vec<LegacyRow>, DbError> {
    db.query_as(
        "SELECT id, environment_vars FROM devx.services WHERE environment_vars <> '{}'::jsonb ORDER BY id FOR UPDATE",
        &[],
    )
    .await
}

/// What is left of a service's legacy object after its keys moved.
pub async fn set_legacy(db: &impl Queryable, id: Uuid, left: &serde_json::Value) -> Result<(), DbError> {
    db.execute("UPDATE devx.services SET environment_vars = $2 WHERE id = $1", &[&id, left]).await?;
    Ok(())
}

/// Serialises legacy moves (serve starts and rotations) for the transaction.
pub async fn lock_legacy(db: &impl Queryable) -> Result<(), DbError> {
    db.execute("SELECT pg_advisory_xact_lock(hashtext('devx.env_vars.legacy'))", &[]).await?;
    Ok(())
}
