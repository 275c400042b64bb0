//! `devx db seed`: sample data in every table, for demos and the dashboard.
//! The data is one SQL script (`seed.sql`) with fixed ids and
//! `ON CONFLICT DO NOTHING` everywhere (the activity log, which has no key,
//! only while it holds no seed row), so loading it twice changes nothing;
//! it runs in one transaction after the built-in catalog, whose templates it
//! refers to by slug.

use crate::db::{DbError, PgTx, Queryable};

const SEED_SQL: &str = include_str!("seed.sql");

/// Whether the database holds no user data yet (the catalog and the settings
/// the migrations seed do not count).
pub async fn is_empty(db: &impl Queryable) -> Result<bool, DbError> {
    db.query_scalar("SELECT NOT EXISTS (SELECT 1 FROM devx.users) AND NOT EXISTS (SELECT 1 FROM devx.projects)", &[])
        .await
}

/// Loads the built-in catalog and the sample data in `tx`; returns the
/// number of built-in templates added.
pub async fn load(tx: &PgTx<'_>) -> Result<usize, DbError> {
    let added = crate::catalog::seed_builtin(tx).await?;
    tx.batch_execute(SEED_SQL).await?;
    Ok(added)
}
