//! The SQL of administration: settings, the audit trail, recent activity and
//! system statistics. Small functions taking `&impl Queryable`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::model::{
    AUDIT_COLUMNS, AuditAction, AuditEntry, CONFIG_COLUMNS, ConfigEntry, DatabaseSize, SystemStats, UserCounts,
};
use crate::db::{DbError, FromRow, Queryable, Statement};
use crate::diagnostics::introspect::{self, human_bytes};
use crate::runtime::deployments::model::DeploymentStatus;

/// Settings in key order, after `after`; fetches `limit + 1` (see `Page::from_rows`).
pub async fn list_config(db: &impl Queryable, after: Option<&str>, limit: i64) -> Result<Vec<ConfigEntry>, DbError> {
    let mut s = Statement::default();
    s.and_some(after, |after| format!("c.key > {after}"));
    let limit = s.bind(limit + 1);
    s.sql =
        format!("SELECT {CONFIG_COLUMNS} FROM devx.system_config c {} ORDER BY c.key LIMIT {limit}", s.where_clause());
    s.query_as(db).await
}

pub async fn config_exists(db: &impl Queryable, key: &str) -> Result<bool, DbError> {
    Ok(db.query_opt("SELECT 1 FROM devx.system_config WHERE key = $1", &[&key]).await?.is_some())
}

/// One setting; with `lock`, its row stays locked `FOR UPDATE` for the rest
/// of the transaction.
pub async fn get_config(db: &impl Queryable, key: &str, lock: bool) -> Result<Option<ConfigEntry>, DbError> {
    let sql = format!(
        "SELECT {CONFIG_COLUMNS} FROM devx.system_config c WHERE c.key = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    db.query_opt_as(&sql, &[&key]).await
}

/// Sets a setting, creating it if needed. `description` replaces the stored
/// one when given; a new row without one gets `default_description`.
/// Returns the row and whether it was created.
pub async fn upsert_config(
    db: &impl Queryable,
    key: &str,
    value: &Value,
    description: Option<&str>,
    default_description: Option<&str>,
) -> Result<(ConfigEntry, bool), DbError> {
    let sql = format!(
        "INSERT INTO devx.system_config AS c (key, value, description)
         VALUES ($1, $2, coalesce($3, $4))
         ON CONFLICT (key) DO UPDATE
            SET value = EXCLUDED.value, description = coalesce($3, c.description)
         RETURNING {CONFIG_COLUMNS}, (c.xmax = 0) AS created"
    );
    let row: Upserted = db.query_one_as(&sql, &[&key, &value, &description, &default_description]).await?;
    Ok((row.entry, row.created))
}

/// A setting as [`upsert_config`] returns it, and whether the row is new.
#[derive(FromRow)]
struct Upserted {
    #[from_row(flatten)]
    entry: ConfigEntry,
    created: bool,
}

pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<AuditAction>,
    /// `created_at >= since`
    pub since: Option<DateTime<Utc>>,
    /// `created_at < until`
    pub until: Option<DateTime<Utc>>,
    /// Keyset: (created_at, id) of the last row seen, newest first.
    pub after: Option<(DateTime<Utc>, i64)>,
    pub limit: i64,
}

/// The audit trail, newest first; fetches `limit + 1` rows.
///
/// Only the filters given become conditions (the trail is the largest table,
/// and each combination gets a plan of its own that uses the matching index
/// rather than one generic plan for all).
pub async fn list_audit(db: &impl Queryable, f: &AuditFilter) -> Result<Vec<AuditEntry>, DbError> {
    let mut s = Statement::default();
    s.and_some(f.entity_type.as_deref(), |v| format!("a.entity_type = {v}"));
    s.and_some(f.entity_id.as_deref(), |v| format!("a.entity_id = {v}"));
    s.and_some(f.actor.as_deref(), |v| format!("a.actor = {v}"));
    s.and_some(f.action.map(AuditAction::as_str), |v| format!("a.action = {v}"));
    s.and_some(f.since, |v| format!("a.created_at >= {v}"));
    s.and_some(f.until, |v| format!("a.created_at < {v}"));
    s.newest_first(&format!("SELECT {AUDIT_COLUMNS} FROM devx.audit_logs a"), "a", f.after, f.limit);
    s.query_as(db).await
}

/// The `devx.recent_activity` view (the last 7 days of the trail), newest
/// first, keyset on (created_at, id); fetches `limit + 1` rows.
pub async fn recent_activity(
    db: &impl Queryable,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Vec<AuditEntry>, DbError> {
    let mut s = Statement::default();
    s.newest_first(&format!("SELECT {AUDIT_COLUMNS} FROM devx.recent_activity a"), "a", after, limit);
    s.query_as(db).await
}

/// Rows per status of a table, every status in `statuses` present (0 when
/// no row has it). `table` is a fixed name, never input.
async fn status_counts(
    db: &impl Queryable,
    table: &'static str,
    statuses: &[&str],
) -> Result<BTreeMap<String, i64>, DbError> {
    let mut counts: BTreeMap<String, i64> = statuses.iter().map(|s| (s.to_string(), 0)).collect();
    let sql = format!("SELECT status, count(*) AS count FROM {table} GROUP BY status");
    for row in db.query_as::<StatusCount>(&sql, &[]).await? {
        counts.insert(row.status, row.count);
    }
    Ok(counts)
}

#[derive(FromRow)]
struct StatusCount {
    status: String,
    count: i64,
}

#[derive(FromRow)]
struct DatabaseRow {
    name: String,
    size_bytes: i64,
    generated_at: DateTime<Utc>,
}

/// How many of the largest tables the statistics list.
const LARGEST_TABLES: usize = 10;

pub async fn system_stats(db: &impl Queryable) -> Result<SystemStats, DbError> {
    let users: UserCounts = db
        .query_one_as(
            "SELECT count(*) AS total,
                    count(*) FILTER (WHERE is_active AND deleted_at IS NULL) AS active,
                    count(*) FILTER (WHERE role = 'admin' AND is_active AND deleted_at IS NULL) AS admins,
                    count(*) FILTER (WHERE deleted_at IS NOT NULL) AS closed
               FROM devx.users",
            &[],
        )
        .await?;
    let projects_by_status = status_counts(db, "devx.projects", &["active", "archived", "deleted"]).await?;
    let containers_by_status =
        status_counts(db, "devx.containers", &["created", "running", "stopped", "deleted"]).await?;
    let deployment_statuses: Vec<&str> = DeploymentStatus::ALL.iter().map(|s| s.as_str()).collect();
    let deployments_by_status = status_counts(db, "devx.deployments", &deployment_statuses).await?;
    let tasks_by_status =
        status_counts(db, "devx.tasks", &["pending", "in_progress", "completed", "failed", "cancelled"]).await?;
    let row: DatabaseRow = db
        .query_one_as(
            "SELECT current_database() AS name, pg_database_size(current_database()) AS size_bytes,
                    now() AS generated_at",
            &[],
        )
        .await?;
    let database = DatabaseSize { name: row.name, size_bytes: row.size_bytes, size: human_bytes(row.size_bytes) };
    let generated_at = row.generated_at;
    let mut largest_tables = introspect::table_stats(db, false).await?;
    largest_tables.truncate(LARGEST_TABLES);
    Ok(SystemStats {
        users,
        projects_by_status,
        containers_by_status,
        deployments_by_status,
        tasks_by_status,
        database,
        largest_tables,
        generated_at,
    })
}
