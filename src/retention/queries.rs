//! The SQL of retention: the settings, the cutoff of a period, counting and
//! deleting one bounded batch of aged rows, and the lock that keeps two runs
//! (two replicas, or `serve` and the CLI) from doing the same work at once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Rule;
use crate::db::{DbError, FromRow, Queryable};

/// Every `retention.*` setting, key -> JSON value.
pub async fn settings(db: &impl Queryable) -> Result<HashMap<String, Value>, DbError> {
    let rows: Vec<Setting> =
        db.query_as("SELECT key, value FROM devx.system_config WHERE key LIKE 'retention.%'", &[]).await?;
    Ok(rows.into_iter().map(|s| (s.key, s.value)).collect())
}

#[derive(FromRow)]
struct Setting {
    key: String,
    value: Value,
}

#[derive(FromRow)]
struct Cutoff {
    cutoff: DateTime<Utc>,
    positive: bool,
}

/// What a period means now: `Some((now() - period, period > 0))`, or `None`
/// when PostgreSQL does not read `period` as an interval (or the cutoff
/// would fall outside the timestamp range).
pub async fn cutoff(db: &impl Queryable, period: &str) -> Result<Option<(DateTime<Utc>, bool)>, DbError> {
    let sql = "SELECT now() - ($1::text)::interval AS cutoff, ($1::text)::interval > interval '0' AS positive";
    match db.query_one_as::<Cutoff>(sql, &[&period]).await {
        Ok(row) => Ok(Some((row.cutoff, row.positive))),
        Err(DbError::InvalidValue(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An interval in seconds (a month counts 30 days), or `None` when
/// PostgreSQL does not read `text` as an interval.
pub async fn interval_seconds(db: &impl Queryable, text: &str) -> Result<Option<f64>, DbError> {
    match db.query_scalar("SELECT extract(epoch FROM ($1::text)::interval)::float8", &[&text]).await {
        Ok(seconds) => Ok(Some(seconds)),
        Err(DbError::InvalidValue(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Rows of `table` (the rule's, or its DEFAULT partition) older than `cutoff`.
pub async fn count_aged(db: &impl Queryable, table: &str, rule: &Rule, cutoff: DateTime<Utc>) -> Result<u64, DbError> {
    let sql = format!("SELECT count(*) FROM {table} WHERE {}", rule.condition);
    let n: i64 = db.query_scalar(&sql, &[&cutoff]).await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Deletes at most `limit` rows of `table` (the rule's, or its DEFAULT
/// partition) older than `cutoff`.
///
/// The rows are picked oldest first by `ctid` (a TID scan, whatever the
/// primary key) and the condition is checked again on delete, so a row
/// changed since it was picked (a container started again) is left alone.
pub async fn delete_batch(
    db: &impl Queryable,
    table: &str,
    rule: &Rule,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> Result<u64, DbError> {
    let condition = rule.condition;
    let order = rule.oldest_first.map(|column| format!("ORDER BY {column}")).unwrap_or_default();
    let sql = format!(
        "DELETE FROM {table}
          WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {condition} {order} LIMIT $2))
            AND {condition}"
    );
    db.execute(&sql, &[&cutoff, &limit]).await
}

/// Bounds how long one batch waits for a row lock held by someone else.
pub async fn set_lock_timeout(db: &impl Queryable) -> Result<(), DbError> {
    db.execute("SELECT set_config('lock_timeout', '5s', true)", &[]).await?;
    Ok(())
}

/// Takes the session lock of retention runs; false when another session holds it.
pub async fn try_lock(db: &impl Queryable) -> Result<bool, DbError> {
    db.query_scalar("SELECT pg_try_advisory_lock(hashtext('devx.retention'))", &[]).await
}

/// The same lock held until the end of `db`'s transaction (unnamed mode).
pub async fn try_xact_lock(db: &impl Queryable) -> Result<bool, DbError> {
    db.query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('devx.retention'))", &[]).await
}

pub async fn unlock(db: &impl Queryable) -> Result<(), DbError> {
    db.execute("SELECT pg_advisory_unlock(hashtext('devx.retention'))", &[]).await?;
    Ok(())
}

/// One audit row for what a run deleted from a table: append-only tables
/// have no row-level trail, so this is their record of the deletion (and,
/// for audited tables, the summary beside the per-row rows).
pub async fn record_deletion(
    db: &impl Queryable,
    rule: &Rule,
    period: &str,
    cutoff: DateTime<Utc>,
    rows: u64,
    partitions: &[String],
) -> Result<(), DbError> {
    let mut summary = serde_json::json!({
        "retention": rule.name,
        "rows": rows,
        "period": period,
        "cutoff": cutoff,
    });
    if !partitions.is_empty() {
        summary["partitions_dropped"] = serde_json::json!(partitions);
    }
    db.execute(
        "INSERT INTO devx.audit_logs (entity_type, entity_id, action, old_values, new_values, actor)
         VALUES ($1, '*', 'delete', NULL, $2, $3)",
        &[&rule.table, &summary, &super::ACTOR],
    )
    .await?;
    Ok(())
}

/// Creates the history tables' partitions for the current period and
/// `ahead` more (`devx.create_history_partitions`, idempotent); returns how
/// many it created.
pub async fn create_partitions(db: &impl Queryable, ahead: i32) -> Result<i32, DbError> {
    db.query_scalar("SELECT devx.create_history_partitions($1)", &[&ahead]).await
}

/// The partitions of `table` whose whole range ended at least `grace`
/// before `cutoff`, oldest first (the DEFAULT partition never is one).
pub async fn expired_partitions(
    db: &impl Queryable,
    table: &str,
    cutoff: DateTime<Utc>,
    grace: &str,
) -> Result<Vec<String>, DbError> {
    let rows: Vec<Partition> = db
        .query_as(
            "SELECT partition_name FROM devx.history_partition_bounds($1::text::regclass)
              WHERE range_end <= $2::timestamptz - $3::text::interval
              ORDER BY range_start",
            &[&table, &cutoff, &grace],
        )
        .await?;
    Ok(rows.into_iter().map(|p| p.partition_name).collect())
}

#[derive(FromRow)]
struct Partition {
    partition_name: String,
}

/// Detaches one partition from `table` (`devx.audit_logs`) and drops it
/// (`devx.drop_history_partition`, which owns the tables when `serve` does
/// not; a plain DETACH, see there), in the caller's transaction, whose
/// `lock_timeout` bounds the wait for the parent's lock.
pub async fn drop_partition(db: &impl Queryable, table: &str, partition: &str) -> Result<(), DbError> {
    let table = table.strip_prefix("devx.").unwrap_or(table);
    db.execute("SELECT devx.drop_history_partition($1, $2)", &[&table, &partition]).await?;
    Ok(())
}
