//! The ledger: `devx_meta.schema_migrations`, one row per applied migration
//! with the SQL that ran (so that a migration whose file is gone can still
//! be reverted, and a changed file can be compared with what ran).

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

use crate::db::row::{decode_all, single};
use crate::db::{DbError, FromRow, Queryable};

pub const LEDGER_TABLE: &str = "devx_meta.schema_migrations";

const CREATE: &str = "
CREATE SCHEMA IF NOT EXISTS devx_meta;
CREATE TABLE IF NOT EXISTS devx_meta.schema_migrations (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    checksum     text NOT NULL,
    up_sql       text NOT NULL,
    down_sql     text,
    applied_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    applied_by   text NOT NULL DEFAULT current_user,
    execution_ms bigint
);
COMMENT ON TABLE devx_meta.schema_migrations IS
    'Migrations devx applied (devx migrate history). execution_ms is null for stamped ones.';
";

const EXISTS: &str = "SELECT to_regclass('devx_meta.schema_migrations') IS NOT NULL";

/// Newest last, in the order they were applied.
const SELECT: &str = "SELECT id, name, checksum, applied_at, applied_by, execution_ms, down_sql, up_sql
                        FROM devx_meta.schema_migrations ORDER BY applied_at, id";

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AppliedMigration {
    pub id: String,
    pub name: String,
    pub checksum: String,
    pub applied_at: DateTime<Utc>,
    pub applied_by: String,
    /// `None` when it was stamped (recorded without running).
    pub execution_ms: Option<i64>,
    /// The down script stored when it was applied.
    pub down_sql: Option<String>,
    /// The SQL that ran (what a later edit of the file is compared with).
    pub up_sql: Option<String>,
}

impl AppliedMigration {
    pub fn stamped(&self) -> bool {
        self.execution_ms.is_none()
    }
}

/// Creates the ledger if missing (call under the migration lock).
pub async fn ensure(client: &impl GenericClient) -> Result<(), DbError> {
    Ok(client.batch_execute(CREATE).await?)
}

pub async fn exists(client: &impl GenericClient) -> Result<bool, DbError> {
    single(&client.query_one(EXISTS, &[]).await?)
}

/// Every row, oldest first; empty when the ledger does not exist yet.
pub async fn read(client: &impl GenericClient) -> Result<Vec<AppliedMigration>, DbError> {
    if !exists(client).await? {
        return Ok(Vec::new());
    }
    decode_all(&client.query(SELECT, &[]).await?)
}

/// [`read`] through the instrumented pool path (the admin API).
pub async fn read_pooled(db: &impl Queryable) -> Result<Vec<AppliedMigration>, DbError> {
    let exists: bool = db.query_scalar(EXISTS, &[]).await?;
    if !exists {
        return Ok(Vec::new());
    }
    db.query_as(SELECT, &[]).await
}

/// What is recorded for a migration.
pub struct Record<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub checksum: &'a str,
    pub up_sql: &'a str,
    pub down_sql: Option<&'a str>,
    pub applied_by: &'a str,
    pub execution_ms: Option<i64>,
}

pub async fn insert(client: &impl GenericClient, r: &Record<'_>) -> Result<(), DbError> {
    client
        .execute(
            "INSERT INTO devx_meta.schema_migrations (id, name, checksum, up_sql, down_sql, applied_by, execution_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&r.id, &r.name, &r.checksum, &r.up_sql, &r.down_sql, &r.applied_by, &r.execution_ms],
        )
        .await?;
    Ok(())
}

pub async fn delete(client: &impl GenericClient, id: &str) -> Result<u64, DbError> {
    Ok(client.execute("DELETE FROM devx_meta.schema_migrations WHERE id = $1", &[&id]).await?)
}

/// Applied ids through the instrumented pool path (health checks).
pub async fn applied_ids(db: &impl Queryable) -> Result<Vec<String>, DbError> {
    let exists: bool = db.query_scalar(EXISTS, &[]).await?;
    if !exists {
        return Ok(Vec::new());
    }
    db.query("SELECT id FROM devx_meta.schema_migrations", &[]).await?.iter().map(single).collect()
}
