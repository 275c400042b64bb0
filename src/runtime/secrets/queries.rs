//! The SQL of rotation and checking: sealed values in batches, in id order,
//! and a value re-sealed only if it is still what was read. Table and column
//! names come from [`super::SEALED_COLUMNS`], never from input.

use uuid::Uuid;

use super::{Sealed, SealedColumn};
use crate::db::{DbError, FromRow, Queryable};

/// One stored sealed value.
#[derive(FromRow)]
pub struct SealedValue {
    pub id: Uuid,
    pub key_id: String,
    pub bytes: Vec<u8>,
}

/// Up to `limit` values of `c` in rows whose id is after `after`, in id
/// order; `not_under`: only those sealed under another key; `lock`: locked
/// until the transaction ends.
pub async fn sealed_batch(
    db: &impl Queryable,
    c: &SealedColumn,
    after: Uuid,
    not_under: Option<&str>,
    limit: i64,
    lock: bool,
) -> Result<Vec<SealedValue>, DbError> {
    let SealedColumn { table, column, key_id_column } = c;
    let (condition, lock) = match (not_under, lock) {
        (Some(_), true) => (format!(" AND {key_id_column} <> $3"), " FOR UPDATE"),
        (Some(_), false) => (format!(" AND {key_id_column} <> $3"), ""),
        (None, true) => (String::new(), " FOR UPDATE"),
        (None, false) => (String::new(), ""),
    };
    let sql = format!(
        "SELECT id, {key_id_column} AS key_id, {column} AS bytes FROM devx.{table}
          WHERE {column} IS NOT NULL AND id > $1{condition} ORDER BY id LIMIT $2{lock}"
    );
    match not_under {
        Some(key_id) => db.query_as(&sql, &[&after, &limit, &key_id]).await,
        None => db.query_as(&sql, &[&after, &limit]).await,
    }
}

/// Replaces a value with `sealed` if it is still sealed under `was`; whether
/// it did.
pub async fn reseal(
    db: &impl Queryable,
    c: &SealedColumn,
    id: Uuid,
    was: &str,
    sealed: &Sealed,
) -> Result<bool, DbError> {
    let SealedColumn { table, column, key_id_column } = c;
    let sql = format!(
        "UPDATE devx.{table} SET {column} = $3, {key_id_column} = $4
          WHERE id = $1 AND {key_id_column} = $2 AND {column} IS NOT NULL"
    );
    Ok(db.execute(&sql, &[&id, &was, &sealed.bytes, &sealed.key_id]).await? == 1)
}
