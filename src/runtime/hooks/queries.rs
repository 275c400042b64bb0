//! The SQL of deploy tokens and webhook deliveries. Tokens arrive here
//! hashed and sealed, and leave that way.

use serde_json::Value;
use uuid::Uuid;

use super::model::{DeliveryStatus, DeployToken, Provider};
use crate::db::{DbError, FromRow, Queryable};
use crate::runtime::secrets::Sealed;

const TOKEN_COLUMNS: &str = "t.id, t.service_id, t.created_by, t.created_at, t.last_used_at";

pub async fn token(db: &impl Queryable, service_id: Uuid) -> Result<Option<DeployToken>, DbError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM devx.service_deploy_tokens t WHERE t.service_id = $1");
    db.query_opt_as(&sql, &[&service_id]).await
}

/// The id of a service's token row, locked; a new id when it has none.
pub async fn token_row_id(db: &impl Queryable, service_id: Uuid) -> Result<Uuid, DbError> {
    let found: Option<Uuid> = db
        .query_opt("SELECT id FROM devx.service_deploy_tokens WHERE service_id = $1 FOR UPDATE", &[&service_id])
        .await?
        .map(|row| crate::db::row::column(&row, "id"))
        .transpose()?;
    Ok(found.unwrap_or_else(Uuid::new_v4))
}

/// Creates a service's token, or replaces it (the row keeps its id, which
/// the sealed value is bound to).
pub async fn put_token(
    db: &impl Queryable,
    id: Uuid,
    service_id: Uuid,
    token_hash: &str,
    sealed: &Sealed,
    created_by: &str,
) -> Result<DeployToken, DbError> {
    let sql = format!(
        "INSERT INTO devx.service_deploy_tokens AS t (id, service_id, token_hash, token_sealed, token_sealed_key_id,
                                                      created_by)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (service_id) DO UPDATE
            SET token_hash = EXCLUDED.token_hash, token_sealed = EXCLUDED.token_sealed,
                token_sealed_key_id = EXCLUDED.token_sealed_key_id, created_by = EXCLUDED.created_by,
                created_at = now(), last_used_at = NULL
         RETURNING {TOKEN_COLUMNS}"
    );
    db.query_one_as(&sql, &[&id, &service_id, &token_hash, &sealed.bytes, &sealed.key_id, &created_by]).await
}

pub async fn delete_token(db: &impl Queryable, service_id: Uuid) -> Result<bool, DbError> {
    Ok(db.execute("DELETE FROM devx.service_deploy_tokens WHERE service_id = $1", &[&service_id]).await? > 0)
}

/// What checking a delivery needs: the token's hash and sealed copy, and
/// the service's project. Services of deleted projects have none.
#[derive(FromRow)]
pub struct TokenSecret {
    pub id: Uuid,
    pub token_hash: String,
    /// `None` only in rows written outside devx (sample data).
    pub token_sealed: Option<Vec<u8>>,
    pub token_sealed_key_id: Option<String>,
    pub project_id: Option<Uuid>,
}

pub async fn token_secret(db: &impl Queryable, service_id: Uuid) -> Result<Option<TokenSecret>, DbError> {
    db.query_opt_as(
        "SELECT t.id, t.token_hash, t.token_sealed, t.token_sealed_key_id, s.project_id
           FROM devx.service_deploy_tokens t
           JOIN devx.services s ON s.id = t.service_id
           LEFT JOIN devx.projects p ON p.id = s.project_id
          WHERE t.service_id = $1 AND (s.project_id IS NULL OR p.status <> 'deleted')",
        &[&service_id],
    )
    .await
}

pub async fn touch_token(db: &impl Queryable, id: Uuid) -> Result<(), DbError> {
    db.execute("UPDATE devx.service_deploy_tokens SET last_used_at = now() WHERE id = $1", &[&id]).await.map(drop)
}

pub struct NewDelivery<'a> {
    pub service_id: Uuid,
    pub provider: Provider,
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub status: DeliveryStatus,
    pub answer: &'a Value,
    pub deployment_id: Option<Uuid>,
}

/// Records a delivery; false when its id was recorded already (the
/// statement waits for a concurrent insert of the same id to commit or roll
/// back first).
pub async fn insert_delivery(db: &impl Queryable, d: &NewDelivery<'_>) -> Result<bool, DbError> {
    let n = db
        .execute(
            "INSERT INTO devx.webhook_deliveries (service_id, provider, delivery_id, event, status, answer,
                                                  deployment_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT ON CONSTRAINT webhook_deliveries_delivery_id_key DO NOTHING",
            &[&d.service_id, &d.provider, &d.delivery_id, &d.event, &d.status, &d.answer, &d.deployment_id],
        )
        .await?;
    Ok(n == 1)
}

/// The answer a delivery got.
pub async fn delivery_answer(
    db: &impl Queryable,
    service_id: Uuid,
    provider: Provider,
    delivery_id: &str,
) -> Result<Option<Value>, DbError> {
    let row = db
        .query_opt(
            "SELECT answer FROM devx.webhook_deliveries WHERE service_id = $1 AND provider = $2 AND delivery_id = $3",
            &[&service_id, &provider, &delivery_id],
        )
        .await?;
    row.map(|r| crate::db::row::column(&r, "answer")).transpose()
}
