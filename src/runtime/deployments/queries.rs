//! The SQL of deployments. Secrets arrive here sealed and leave sealed.

use crate::db::Visibility;
use uuid::Uuid;

use super::model::{
    DEPLOYMENT_COLUMNS, DEPLOYMENT_COLUMNS_SEALED, DeploymentRow, DeploymentStatus, MaskedRow, SealedRow,
};
use crate::db::{DbError, FromRow, Queryable, Statement};
use crate::runtime::TimeKey;

pub struct NewDeployment<'a> {
    /// Chosen before the insert: sealed values are bound to it.
    pub id: Uuid,
    pub project_id: Uuid,
    pub service_id: Option<Uuid>,
    pub app_sandbox_id: Option<&'a str>,
    pub public_url: Option<&'a str>,
    pub db_sandbox_id: Option<&'a str>,
    pub db_connection_info: Option<&'a [u8]>,
    pub environment_vars: Option<&'a [u8]>,
    pub runtime_type: Option<&'a str>,
}

pub async fn insert_deployment(db: &impl Queryable, n: &NewDeployment<'_>) -> Result<DeploymentRow, DbError> {
    let sql = format!(
        "WITH d AS (
            INSERT INTO devx.deployments (id, project_id, service_id, app_sandbox_id, public_url, db_sandbox_id,
                                          db_connection_info, environment_vars, runtime_type)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
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
                &n.db_connection_info,
                &n.environment_vars,
                &n.runtime_type,
            ],
        )
        .await?;
    Ok(row.into())
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
#[derive(Default)]
pub struct DeploymentChange<'a> {
    pub status: Option<&'a str>,
    pub app_sandbox_id: Option<Option<&'a str>>,
    pub public_url: Option<Option<&'a str>>,
    pub db_sandbox_id: Option<Option<&'a str>>,
    pub runtime_type: Option<Option<&'a str>>,
    pub db_connection_info: Option<Option<&'a [u8]>>,
    pub environment_vars: Option<Option<&'a [u8]>>,
}

pub async fn update_deployment(
    db: &impl Queryable,
    id: Uuid,
    c: &DeploymentChange<'_>,
) -> Result<Option<DeploymentRow>, DbError> {
    let sql = format!(
        "WITH d AS (
            UPDATE devx.deployments d
               SET status = coalesce($2, d.status),
                   app_sandbox_id = CASE WHEN $3 THEN $4 ELSE d.app_sandbox_id END,
                   public_url = CASE WHEN $5 THEN $6 ELSE d.public_url END,
                   db_sandbox_id = CASE WHEN $7 THEN $8 ELSE d.db_sandbox_id END,
                   runtime_type = CASE WHEN $9 THEN $10 ELSE d.runtime_type END,
                   db_connection_info = CASE WHEN $11 THEN $12 ELSE d.db_connection_info END,
                   environment_vars = CASE WHEN $13 THEN $14 ELSE d.environment_vars END
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
                &c.db_connection_info.flatten(),
                &c.environment_vars.is_some(),
                &c.environment_vars.flatten(),
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
