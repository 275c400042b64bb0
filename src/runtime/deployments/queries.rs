//! The SQL of deployments. Secrets arrive here sealed and leave sealed.

pub mod logs;

pub use logs::{LOG_BYTES_MAX, LOG_BYTES_MIN, MAX_LOG_BYTES_KEY};

use crate::db::Visibility;
use uuid::Uuid;

use super::model::{
    DEPLOYMENT_COLUMNS, DEPLOYMENT_COLUMNS_SEALED, DeploymentRow, DeploymentStatus, DeploymentTrigger, MaskedRow,
    SealedRow,
};
use crate::db::{DbError, FromRow, Queryable, Statement};
use crate::runtime::TimeKey;
use crate::runtime::secrets::Sealed;

pub struct NewDeployment<'a> {
    /// Chosen before the insert: sealed values are bound to it.
    pub id: Uuid,
    pub project_id: Uuid,
    pub service_id: Option<Uuid>,
    pub app_sandbox_id: Option<&'a str>,
    pub public_url: Option<&'a str>,
    pub db_sandbox_id: Option<&'a str>,
    pub db_connection_info: Option<&'a Sealed>,
    pub environment_vars: Option<&'a Sealed>,
    pub runtime_type: Option<&'a str>,
    pub commit_sha: Option<&'a str>,
    pub commit_message: Option<&'a str>,
    pub branch: Option<&'a str>,
    pub trigger: DeploymentTrigger,
    pub triggered_by: &'a str,
    pub rollback_of: Option<Uuid>,
}

/// A configuration snapshot as stored: sealed for its row, and the sha256
/// hex of its canonical plaintext.
pub struct StoredSnapshot {
    pub sealed: Sealed,
    pub digest: String,
}

/// Inserts a deployment; it starts `queued` (see [`promote_queued`]).
pub async fn insert_deployment(
    db: &impl Queryable,
    n: &NewDeployment<'_>,
    snapshot: Option<&StoredSnapshot>,
) -> Result<DeploymentRow, DbError> {
    let sql = format!(
        "WITH d AS (
            INSERT INTO devx.deployments (id, project_id, service_id, app_sandbox_id, public_url, db_sandbox_id,
                                          db_connection_info, db_connection_info_key_id, environment_vars,
                                          environment_vars_key_id, runtime_type, commit_sha, commit_message,
                                          branch, trigger, triggered_by, rollback_of, snapshot_sealed,
                                          snapshot_key_id, snapshot_digest, status)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                    'queued')
            RETURNING *)
         SELECT {DEPLOYMENT_COLUMNS} FROM d JOIN devx.projects p ON p.id = d.project_id"
    );
    let row: MaskedRow = db
        .query_one_as(
            &sql,
            &[
                &n.id,
                &n.project_id,
                &n.service_id,
                &n.app_sandbox_id,
                &n.public_url,
                &n.db_sandbox_id,
                &n.db_connection_info.map(|s| &s.bytes),
                &n.db_connection_info.map(|s| &s.key_id),
                &n.environment_vars.map(|s| &s.bytes),
                &n.environment_vars.map(|s| &s.key_id),
                &n.runtime_type,
                &n.commit_sha,
                &n.commit_message,
                &n.branch,
                &n.trigger,
                &n.triggered_by,
                &n.rollback_of,
                &snapshot.map(|s| &s.sealed.bytes),
                &snapshot.map(|s| &s.sealed.key_id),
                &snapshot.map(|s| &s.digest),
            ],
        )
        .await?;
    Ok(row.into())
}

/// The advisory lock that serializes the writes that take or free a build
/// slot (transaction scope, so it works through PgBouncer in transaction
/// mode). Taken before any deployment row is locked, so it cannot deadlock
/// with a row lock, and held until the transaction ends: the statement
/// after it sees every slot taken before, so concurrent requests cannot
/// overshoot a limit.
pub async fn lock_build_slots(db: &impl Queryable) -> Result<(), DbError> {
    db.execute("SELECT pg_advisory_xact_lock($1)", &[&BUILD_SLOT_LOCK]).await.map(drop)
}

/// Key of [`lock_build_slots`]: "devxbild".
const BUILD_SLOT_LOCK: i64 = 0x6465_7678_6269_6c64;

/// Moves the oldest queued deployments (of live projects) to `building`
/// while there are build slots: at most `global` building in all and
/// `per_project` in one project. Run under [`lock_build_slots`]. Returns the
/// ids it moved.
pub async fn promote_queued(db: &impl Queryable, global: i64, per_project: i64) -> Result<Vec<Uuid>, DbError> {
    let rows = db
        .query(
            "WITH building AS (
                SELECT d.project_id, count(*) AS n
                  FROM devx.deployments d JOIN devx.projects p ON p.id = d.project_id
                 WHERE d.status = 'building' AND p.status <> 'deleted'
                 GROUP BY d.project_id
             ), queue AS (
                SELECT d.id, d.created_at,
                       coalesce(b.n, 0) + row_number() OVER (PARTITION BY d.project_id ORDER BY d.created_at, d.id)
                           AS nth
                  FROM devx.deployments d
                  JOIN devx.projects p ON p.id = d.project_id
                  LEFT JOIN building b ON b.project_id = d.project_id
                 WHERE d.status = 'queued' AND p.status <> 'deleted'
             ), chosen AS (
                SELECT id FROM queue WHERE nth <= $2::bigint
                 ORDER BY created_at, id
                 LIMIT greatest($1::bigint - (SELECT coalesce(sum(n), 0)::bigint FROM building), 0)
             )
             UPDATE devx.deployments d SET status = 'building', started_at = coalesce(d.started_at, now())
               FROM chosen WHERE d.id = chosen.id AND d.status = 'queued'
             RETURNING d.id",
            &[&global, &per_project],
        )
        .await?;
    rows.iter().map(|r| crate::db::row::column(r, "id")).collect()
}

/// How many deployments are building: in all, and in one project.
pub async fn building_counts(db: &impl Queryable, project_id: Uuid) -> Result<(i64, i64), DbError> {
    let row = db
        .query_one(
            "SELECT count(*) AS global, count(*) FILTER (WHERE d.project_id = $1) AS project
               FROM devx.deployments d JOIN devx.projects p ON p.id = d.project_id
              WHERE d.status = 'building' AND p.status <> 'deleted'",
            &[&project_id],
        )
        .await?;
    Ok((crate::db::row::column(&row, "global")?, crate::db::row::column(&row, "project")?))
}

/// The deployment with its project (not found if the project is deleted);
/// `sealed` also loads the sealed secrets; `lock` locks the row.
pub async fn get_deployment(
    db: &impl Queryable,
    id: Uuid,
    sealed: bool,
    lock: bool,
) -> Result<Option<DeploymentRow>, DbError> {
    let sql = format!(
        "SELECT {} FROM devx.deployments d JOIN devx.projects p ON p.id = d.project_id
          WHERE d.id = $1 AND p.status <> 'deleted'{}",
        if sealed { DEPLOYMENT_COLUMNS_SEALED } else { DEPLOYMENT_COLUMNS },
        if lock { " FOR UPDATE OF d" } else { "" }
    );
    Ok(if sealed {
        db.query_opt_as::<SealedRow>(&sql, &[&id]).await?.map(DeploymentRow::from)
    } else {
        db.query_opt_as::<MaskedRow>(&sql, &[&id]).await?.map(DeploymentRow::from)
    })
}

/// A project's deployments, newest first; fetches `limit + 1` rows.
pub async fn list_project_deployments(
    db: &impl Queryable,
    project_id: Uuid,
    status: Option<&str>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<DeploymentRow>, DbError> {
    let mut s = Statement::default();
    let project_id = s.bind(project_id);
    s.and(format!("d.project_id = {project_id}"));
    let rows: Vec<MaskedRow> = list_deployments(s, status, after, limit).query_as(db).await?;
    Ok(rows.into_iter().map(DeploymentRow::from).collect())
}

/// The newest deployment of a project.
pub async fn latest_deployment(db: &impl Queryable, project_id: Uuid) -> Result<Option<DeploymentRow>, DbError> {
    let sql = format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM devx.deployments d JOIN devx.projects p ON p.id = d.project_id
          WHERE d.project_id = $1 ORDER BY d.created_at DESC, d.id DESC LIMIT 1"
    );
    Ok(db.query_opt_as::<MaskedRow>(&sql, &[&project_id]).await?.map(DeploymentRow::from))
}

/// The deployments of `owner`'s live projects, newest first.
pub async fn list_visible_deployments(
    db: &impl Queryable,
    visibility: Visibility,
    status: Option<&str>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<DeploymentRow>, DbError> {
    let mut s = Statement::default();
    s.visible_to(visibility, "p.owner_id");
    s.and("p.status <> 'deleted'");
    let rows: Vec<MaskedRow> = list_deployments(s, status, after, limit).query_as(db).await?;
    Ok(rows.into_iter().map(DeploymentRow::from).collect())
}

/// Completes a deployment list whose own conditions are in `s`: the status
/// if given, the keyset, newest first, `limit + 1` rows.
fn list_deployments<'a>(
    mut s: Statement<'a>,
    status: Option<&'a str>,
    after: Option<TimeKey>,
    limit: i64,
) -> Statement<'a> {
    s.and_some(status, |status| format!("d.status = {status}"));
    let select =
        format!("SELECT {DEPLOYMENT_COLUMNS} FROM devx.deployments d JOIN devx.projects p ON p.id = d.project_id");
    s.newest_first(&select, "d", after, limit);
    s
}

/// How many deployments have one status.
#[derive(Debug, FromRow)]
pub struct StatusCount {
    pub status: DeploymentStatus,
    pub count: i64,
}

/// `(status, count)` over `owner`'s live projects.
pub async fn count_visible_deployments(
    db: &impl Queryable,
    visibility: Visibility,
) -> Result<Vec<StatusCount>, DbError> {
    let mut s = Statement::default();
    s.visible_to(visibility, "p.owner_id");
    s.and("p.status <> 'deleted'");
    s.sql = format!(
        "SELECT d.status, count(*) AS count FROM devx.deployments d JOIN devx.projects p ON p.id = d.project_id
          {} GROUP BY d.status",
        s.where_clause()
    );
    s.query_as(db).await
}

/// Whether `service_id` is a service of `project_id`.
pub async fn service_in_project(db: &impl Queryable, service_id: Uuid, project_id: Uuid) -> Result<bool, DbError> {
    let row = db
        .query_opt("SELECT 1 FROM devx.services WHERE id = $1 AND project_id = $2", &[&service_id, &project_id])
        .await?;
    Ok(row.is_some())
}

/// A change: `None` leaves a field; `Some(None)` clears a nullable one.
/// Secrets come sealed.
/// A status change also stamps `started_at` (the first time it is
/// building or further) and `finished_at` (the first time it is running or
/// final).
#[derive(Default)]
pub struct DeploymentChange<'a> {
    pub status: Option<&'a str>,
    pub app_sandbox_id: Option<Option<&'a str>>,
    pub public_url: Option<Option<&'a str>>,
    pub db_sandbox_id: Option<Option<&'a str>>,
    pub runtime_type: Option<Option<&'a str>>,
    pub db_connection_info: Option<Option<&'a Sealed>>,
    pub environment_vars: Option<Option<&'a Sealed>>,
    pub error_message: Option<Option<&'a str>>,
}

pub async fn update_deployment(
    db: &impl Queryable,
    id: Uuid,
    c: &DeploymentChange<'_>,
) -> Result<Option<DeploymentRow>, DbError> {
    let sql = format!(
        "WITH d AS (
            UPDATE devx.deployments d
               SET status = coalesce($2::text, d.status),
                   started_at = CASE WHEN $2::text IN ('building', 'deploying', 'running', 'stopped')
                                     THEN coalesce(d.started_at, now()) ELSE d.started_at END,
                   finished_at = CASE WHEN $2::text IN ('running', 'stopped', 'failed', 'cancelled')
                                      THEN coalesce(d.finished_at, now()) ELSE d.finished_at END,
                   app_sandbox_id = CASE WHEN $3 THEN $4 ELSE d.app_sandbox_id END,
                   public_url = CASE WHEN $5 THEN $6 ELSE d.public_url END,
                   db_sandbox_id = CASE WHEN $7 THEN $8 ELSE d.db_sandbox_id END,
                   runtime_type = CASE WHEN $9 THEN $10 ELSE d.runtime_type END,
                   db_connection_info = CASE WHEN $11 THEN $12 ELSE d.db_connection_info END,
                   db_connection_info_key_id = CASE WHEN $11 THEN $13 ELSE d.db_connection_info_key_id END,
                   environment_vars = CASE WHEN $14 THEN $15 ELSE d.environment_vars END,
                   environment_vars_key_id = CASE WHEN $14 THEN $16 ELSE d.environment_vars_key_id END,
                   error_message = CASE WHEN $17 THEN $18 ELSE d.error_message END
             WHERE d.id = $1
            RETURNING *)
         SELECT {DEPLOYMENT_COLUMNS} FROM d JOIN devx.projects p ON p.id = d.project_id"
    );
    let row: Option<MaskedRow> = db
        .query_opt_as(
            &sql,
            &[
                &id,
                &c.status,
                &c.app_sandbox_id.is_some(),
                &c.app_sandbox_id.flatten(),
                &c.public_url.is_some(),
                &c.public_url.flatten(),
                &c.db_sandbox_id.is_some(),
                &c.db_sandbox_id.flatten(),
                &c.runtime_type.is_some(),
                &c.runtime_type.flatten(),
                &c.db_connection_info.is_some(),
                &c.db_connection_info.flatten().map(|s| &s.bytes),
                &c.db_connection_info.flatten().map(|s| &s.key_id),
                &c.environment_vars.is_some(),
                &c.environment_vars.flatten().map(|s| &s.bytes),
                &c.environment_vars.flatten().map(|s| &s.key_id),
                &c.error_message.is_some(),
                &c.error_message.flatten(),
            ],
        )
        .await?;
    Ok(row.map(DeploymentRow::from))
}

/// Records that a deployment of the project (and of the service, if any)
/// just went live: on the project, its code context, and the service.
pub async fn mark_deployed(db: &impl Queryable, project_id: Uuid, service_id: Option<Uuid>) -> Result<(), DbError> {
    db.execute("UPDATE devx.projects SET last_deployed_at = now() WHERE id = $1", &[&project_id]).await?;
    db.execute("UPDATE devx.project_contexts SET last_deployed_at = now() WHERE project_id = $1", &[&project_id])
        .await?;
    if let Some(service_id) = service_id {
        db.execute("UPDATE devx.services SET deployed_at = now() WHERE id = $1", &[&service_id]).await?;
    }
    Ok(())
}

pub async fn delete_deployment(db: &impl Queryable, id: Uuid) -> Result<bool, DbError> {
    Ok(db.execute("DELETE FROM devx.deployments WHERE id = $1", &[&id]).await? > 0)
}

/// The setting: how many deployments may build at once in all.
pub const MAX_BUILDS_KEY: &str = "deploy.max_concurrent_builds";
/// The setting: how many deployments of one project may build at once.
pub const MAX_BUILDS_PER_PROJECT_KEY: &str = "deploy.max_concurrent_builds_per_project";
/// [`MAX_BUILDS_KEY`] when unset.
pub const MAX_BUILDS_DEFAULT: i64 = 10;
/// The largest value either setting takes.
pub const MAX_BUILDS_LIMIT: i64 = 10_000;

/// The build slots: in all (default [`MAX_BUILDS_DEFAULT`]) and per project
/// (no limit unless set). A stored value out of range reads as unset.
pub async fn build_limits(db: &impl Queryable) -> Result<(i64, i64), DbError> {
    let rows = db
        .query(
            "SELECT key, value FROM devx.system_config WHERE key = ANY($1)",
            &[&[MAX_BUILDS_KEY, MAX_BUILDS_PER_PROJECT_KEY].as_slice()],
        )
        .await?;
    let (mut global, mut per_project) = (MAX_BUILDS_DEFAULT, i64::MAX);
    for row in &rows {
        let key: String = crate::db::row::column(row, "key")?;
        let value: serde_json::Value = crate::db::row::column(row, "value")?;
        let Some(n) = value.as_i64().filter(|n| (1..=MAX_BUILDS_LIMIT).contains(n)) else { continue };
        if key == MAX_BUILDS_KEY {
            global = n;
        } else {
            per_project = n;
        }
    }
    Ok((global, per_project))
}

/// What a configuration snapshot records of a service.
#[derive(FromRow)]
pub struct ServiceSettings {
    pub project_id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub service_type: String,
    pub port: Option<i32>,
    pub health_check_url: Option<String>,
    pub deployment_config: serde_json::Value,
    pub template_id: Option<Uuid>,
    pub resource_limits: serde_json::Value,
}

pub async fn service_settings(db: &impl Queryable, service_id: Uuid) -> Result<Option<ServiceSettings>, DbError> {
    db.query_opt_as(
        "SELECT project_id, name, slug, service_type, port, health_check_url, deployment_config, template_id,
                resource_limits
           FROM devx.services WHERE id = $1",
        &[&service_id],
    )
    .await
}

/// A deployment's snapshot columns, and what finds its predecessor.
#[derive(FromRow)]
pub struct SnapshotRow {
    pub id: Uuid,
    pub service_id: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub snapshot_sealed: Option<Vec<u8>>,
    pub snapshot_key_id: Option<String>,
    pub snapshot_digest: Option<String>,
}

impl SnapshotRow {
    /// The sealed snapshot, if it is stored (the key id is set with it: a
    /// CHECK says so).
    pub fn sealed(&self) -> Option<Sealed> {
        let bytes = self.snapshot_sealed.clone()?;
        Some(Sealed { key_id: self.snapshot_key_id.clone().unwrap_or_default(), bytes })
    }
}

const SNAPSHOT_COLUMNS: &str = "id, service_id, created_at, snapshot_sealed, snapshot_key_id, snapshot_digest";

pub async fn snapshot(db: &impl Queryable, id: Uuid) -> Result<Option<SnapshotRow>, DbError> {
    let sql = format!("SELECT {SNAPSHOT_COLUMNS} FROM devx.deployments WHERE id = $1");
    db.query_opt_as(&sql, &[&id]).await
}

/// The newest deployment of the service older than `(created_at, id)`
/// whose snapshot is still stored.
pub async fn previous_snapshot(
    db: &impl Queryable,
    service_id: Uuid,
    created_at: chrono::DateTime<chrono::Utc>,
    id: Uuid,
) -> Result<Option<SnapshotRow>, DbError> {
    let sql = format!(
        "SELECT {SNAPSHOT_COLUMNS} FROM devx.deployments
          WHERE service_id = $1 AND snapshot_digest IS NOT NULL AND snapshot_sealed IS NOT NULL
            AND (created_at, id) < ($2, $3)
          ORDER BY created_at DESC, id DESC LIMIT 1"
    );
    db.query_opt_as(&sql, &[&service_id, &created_at, &id]).await
}

/// The setting: configuration snapshots kept per service.
pub const KEEP_SNAPSHOTS_KEY: &str = "deploy.keep_snapshots";
pub const KEEP_SNAPSHOTS_DEFAULT: i64 = 10;
pub const KEEP_SNAPSHOTS_MAX: i64 = 10_000;

/// Clears the sealed snapshot (keeping its digest) of every service's
/// deployments beyond the newest `keep` that have one stored, except
/// running ones. Returns how many it pruned.
pub async fn prune_snapshots(db: &impl Queryable) -> Result<u64, DbError> {
    db.execute(
        "WITH keep AS (
            SELECT coalesce((SELECT CASE WHEN jsonb_typeof(value) = 'number'
                                          AND (value::text)::numeric BETWEEN 1 AND $2::bigint
                                         THEN (value::text)::numeric::bigint END
                               FROM devx.system_config WHERE key = $1), $3::bigint) AS n
         ), ranked AS (
            SELECT id, status,
                   row_number() OVER (PARTITION BY service_id ORDER BY created_at DESC, id DESC) AS nth
              FROM devx.deployments
             WHERE service_id IS NOT NULL AND snapshot_sealed IS NOT NULL
         )
         UPDATE devx.deployments d SET snapshot_sealed = NULL, snapshot_key_id = NULL
           FROM ranked, keep
          WHERE d.id = ranked.id AND ranked.nth > keep.n AND ranked.status <> 'running'",
        &[&KEEP_SNAPSHOTS_KEY, &KEEP_SNAPSHOTS_MAX, &KEEP_SNAPSHOTS_DEFAULT],
    )
    .await
}
