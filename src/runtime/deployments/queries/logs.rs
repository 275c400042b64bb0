//! Deploy log lines: an append-only table keyed by (deployment, seq).
//!
//! Appending a batch costs the same whatever the log's length: a
//! transaction-scoped advisory lock on the deployment (so batches of one
//! deployment commit in seq order, and a reader never sees seq n+1 before
//! seq n), one read of the last line by the primary key (its seq, and the
//! log's bytes so far in `bytes_through`), and one multi-row `INSERT` from
//! arrays. The deployments row is not touched, so an append adds nothing to
//! its audit trail.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{DbError, Queryable};
use crate::runtime::deployments::model::{DeployLogLine, DeploymentStatus};

/// The setting: bytes of log text one deployment may hold.
pub const MAX_LOG_BYTES_KEY: &str = "deploy.max_log_bytes";
/// [`MAX_LOG_BYTES_KEY`] when unset (or out of range): 16 MiB.
pub const LOG_BYTES_DEFAULT: i64 = 16 << 20;
/// The bounds of [`MAX_LOG_BYTES_KEY`]: 1 KiB to 1 GiB.
pub const LOG_BYTES_MIN: i64 = 1024;
pub const LOG_BYTES_MAX: i64 = 1 << 30;

/// The cap of one deployment's log, in bytes of text.
pub async fn max_log_bytes(db: &impl Queryable) -> Result<i64, DbError> {
    let value: Option<serde_json::Value> =
        db.query_scalar_opt("SELECT value FROM devx.system_config WHERE key = $1", &[&MAX_LOG_BYTES_KEY]).await?;
    Ok(value
        .and_then(|v| v.as_i64())
        .filter(|n| (LOG_BYTES_MIN..=LOG_BYTES_MAX).contains(n))
        .unwrap_or(LOG_BYTES_DEFAULT))
}

/// Takes the deployment's append lock until the transaction ends.
pub async fn lock_log(db: &impl Queryable, deployment_id: Uuid) -> Result<(), DbError> {
    db.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('devx.deployment_log_lines:' || $1::uuid::text, 0))",
        &[&deployment_id],
    )
    .await?;
    Ok(())
}

/// The seq of the deployment's last line and its log's bytes so far (0, 0
/// for an empty log).
pub async fn log_end(db: &impl Queryable, deployment_id: Uuid) -> Result<(i64, i64), DbError> {
    let row = db
        .query_opt(
            "SELECT seq, bytes_through FROM devx.deployment_log_lines
              WHERE deployment_id = $1 ORDER BY seq DESC LIMIT 1",
            &[&deployment_id],
        )
        .await?;
    match row {
        None => Ok((0, 0)),
        Some(r) => Ok((crate::db::row::column(&r, "seq")?, crate::db::row::column(&r, "bytes_through")?)),
    }
}

/// Lines to insert, as parallel arrays (a missing time means now).
pub struct NewDeployLines<'a> {
    pub streams: &'a [&'a str],
    pub texts: &'a [&'a str],
    pub times: &'a [Option<DateTime<Utc>>],
}

/// Inserts the lines as seqs `first_seq`, `first_seq + 1`, ... after a log
/// of `bytes_before` bytes.
pub async fn insert_lines(
    db: &impl Queryable,
    deployment_id: Uuid,
    first_seq: i64,
    bytes_before: i64,
    lines: &NewDeployLines<'_>,
) -> Result<u64, DbError> {
    db.execute(
        "INSERT INTO devx.deployment_log_lines (deployment_id, seq, stream, time, text, bytes_through)
         SELECT $1, $2 + l.ord - 1, l.stream, coalesce(l.time, now()), l.text,
                $3 + sum(octet_length(l.text)) OVER (ORDER BY l.ord)
           FROM unnest($4::text[], $5::text[], $6::timestamptz[]) WITH ORDINALITY AS l(stream, text, time, ord)",
        &[&deployment_id, &first_seq, &bytes_before, &lines.streams, &lines.texts, &lines.times],
    )
    .await
}

/// Up to `limit` lines after `after`, in seq order.
pub async fn tail(
    db: &impl Queryable,
    deployment_id: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<DeployLogLine>, DbError> {
    db.query_as(
        "SELECT seq, stream, time, text FROM devx.deployment_log_lines
          WHERE deployment_id = $1 AND seq > $2
          ORDER BY seq
          LIMIT $3",
        &[&deployment_id, &after, &limit],
    )
    .await
}

/// A deployment's status and the seq of its last line (`None` if it is gone).
pub async fn progress(db: &impl Queryable, deployment_id: Uuid) -> Result<Option<(DeploymentStatus, i64)>, DbError> {
    let row = db
        .query_opt(
            "SELECT d.status,
                    coalesce((SELECT l.seq FROM devx.deployment_log_lines l WHERE l.deployment_id = d.id
                               ORDER BY l.seq DESC LIMIT 1), 0) AS last_seq
               FROM devx.deployments d WHERE d.id = $1",
            &[&deployment_id],
        )
        .await?;
    row.map(|r| Ok((crate::db::row::column(&r, "status")?, crate::db::row::column(&r, "last_seq")?))).transpose()
}
