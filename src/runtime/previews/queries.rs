//! The SQL of previews.

use uuid::Uuid;

use super::model::{PREVIEW_COLUMNS, Preview};
use crate::db::{DbError, Queryable, Statement};
use crate::runtime::TimeKey;

/// The setting: live previews per service.
pub const PER_SERVICE_KEY: &str = "deploy.previews_per_service";
pub const PER_SERVICE_DEFAULT: i64 = 5;
pub const PER_SERVICE_MAX: i64 = 1000;
/// The setting: hours a preview lives after its last deployment.
pub const TTL_HOURS_KEY: &str = "deploy.preview_ttl_hours";
pub const TTL_HOURS_DEFAULT: i64 = 168;
pub const TTL_HOURS_MAX: i64 = 8760;

/// `(previews per service, ttl hours)`, the defaults where a setting is
/// missing or out of range.
pub async fn settings(db: &impl Queryable) -> Result<(i64, i64), DbError> {
    let rows = db
        .query(
            "SELECT key, value FROM devx.system_config WHERE key = ANY($1)",
            &[&[PER_SERVICE_KEY, TTL_HOURS_KEY].as_slice()],
        )
        .await?;
    let (mut cap, mut ttl) = (PER_SERVICE_DEFAULT, TTL_HOURS_DEFAULT);
    for row in &rows {
        let key: String = crate::db::row::column(row, "key")?;
        let value: serde_json::Value = crate::db::row::column(row, "value")?;
        match key.as_str() {
            PER_SERVICE_KEY => {
                if let Some(n) = value.as_i64().filter(|n| (1..=PER_SERVICE_MAX).contains(n)) {
                    cap = n;
                }
            }
            _ => {
                if let Some(n) = value.as_i64().filter(|n| (1..=TTL_HOURS_MAX).contains(n)) {
                    ttl = n;
                }
            }
        }
    }
    Ok((cap, ttl))
}

/// Serializes the preview writes of one service until the transaction ends,
/// so two pull requests opened at once cannot both take the last place.
/// Taken after the build-slot lock, never before.
pub async fn lock_service(db: &impl Queryable, service_id: Uuid) -> Result<(), DbError> {
    let key = format!("devx.previews:{service_id}");
    db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))", &[&key]).await.map(drop)
}

/// The live preview of a pull request, locked.
pub async fn live(db: &impl Queryable, service_id: Uuid, pr_number: i32) -> Result<Option<Preview>, DbError> {
    let sql = format!(
        "SELECT {PREVIEW_COLUMNS} FROM devx.preview_deployments v
          WHERE v.service_id = $1 AND v.pr_number = $2 AND v.status = 'live' FOR UPDATE"
    );
    db.query_opt_as(&sql, &[&service_id, &pr_number]).await
}

pub struct PreviewDeploy<'a> {
    pub service_id: Uuid,
    pub pr_number: i32,
    pub pr_url: Option<&'a str>,
    pub branch: &'a str,
    pub head_sha: &'a str,
    pub deployment_id: Uuid,
    pub ttl_hours: i64,
}

pub async fn insert(db: &impl Queryable, p: &PreviewDeploy<'_>) -> Result<Preview, DbError> {
    let sql = format!(
        "INSERT INTO devx.preview_deployments AS v (service_id, pr_number, pr_url, branch, head_sha, deployment_id,
                                                    expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(hours => $7::int))
         RETURNING {PREVIEW_COLUMNS}"
    );
    let ttl = i32::try_from(p.ttl_hours).unwrap_or(i32::MAX);
    db.query_one_as(&sql, &[&p.service_id, &p.pr_number, &p.pr_url, &p.branch, &p.head_sha, &p.deployment_id, &ttl])
        .await
}

/// A live preview deployed again: its new head and deployment, and a new
/// expiry.
pub async fn redeploy(db: &impl Queryable, id: Uuid, p: &PreviewDeploy<'_>) -> Result<Preview, DbError> {
    let sql = format!(
        "UPDATE devx.preview_deployments v
            SET pr_url = coalesce($2, v.pr_url), branch = $3, head_sha = $4, deployment_id = $5,
                expires_at = now() + make_interval(hours => $6::int)
          WHERE v.id = $1
         RETURNING {PREVIEW_COLUMNS}"
    );
    let ttl = i32::try_from(p.ttl_hours).unwrap_or(i32::MAX);
    db.query_one_as(&sql, &[&id, &p.pr_url, &p.branch, &p.head_sha, &p.deployment_id, &ttl]).await
}

pub async fn live_count(db: &impl Queryable, service_id: Uuid) -> Result<i64, DbError> {
    db.query_scalar(
        "SELECT count(*) FROM devx.preview_deployments WHERE service_id = $1 AND status = 'live'",
        &[&service_id],
    )
    .await
}

/// Expires the `n` oldest live previews of a service; the ones it expired.
pub async fn expire_oldest(db: &impl Queryable, service_id: Uuid, n: i64) -> Result<Vec<Preview>, DbError> {
    let sql = format!(
        "UPDATE devx.preview_deployments v SET status = 'expired'
          WHERE v.id IN (SELECT id FROM devx.preview_deployments
                          WHERE service_id = $1 AND status = 'live'
                          ORDER BY created_at, id LIMIT $2)
         RETURNING {PREVIEW_COLUMNS}"
    );
    db.query_as(&sql, &[&service_id, &n]).await
}

/// Closes the live preview of a pull request; the preview, if there was one.
pub async fn close(db: &impl Queryable, service_id: Uuid, pr_number: i32) -> Result<Option<Preview>, DbError> {
    let sql = format!(
        "UPDATE devx.preview_deployments v SET status = 'closed'
          WHERE v.service_id = $1 AND v.pr_number = $2 AND v.status = 'live'
         RETURNING {PREVIEW_COLUMNS}"
    );
    db.query_opt_as(&sql, &[&service_id, &pr_number]).await
}

/// Marks every live preview past its `expires_at` expired; the previews.
pub async fn expire_due(db: &impl Queryable) -> Result<Vec<Preview>, DbError> {
    let sql = format!(
        "UPDATE devx.preview_deployments v SET status = 'expired'
          WHERE v.status = 'live' AND v.expires_at < now()
         RETURNING {PREVIEW_COLUMNS}"
    );
    db.query_as(&sql, &[]).await
}

/// A service's previews, newest first; fetches `limit + 1` rows.
pub async fn list(
    db: &impl Queryable,
    service_id: Uuid,
    status: Option<&str>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<Preview>, DbError> {
    let mut s = Statement::default();
    let service_id = s.bind(service_id);
    s.and(format!("v.service_id = {service_id}"));
    s.and_some(status, |status| format!("v.status = {status}"));
    // A preview's own url, else where its deployment is served once the
    // runtime reports it (the deployment's public_url).
    let columns = PREVIEW_COLUMNS.replace("v.url,", "coalesce(v.url, d.public_url) AS url,");
    let select = format!(
        "SELECT {columns} FROM devx.preview_deployments v LEFT JOIN devx.deployments d ON d.id = v.deployment_id"
    );
    s.newest_first(&select, "v", after, limit);
    s.query_as(db).await
}
