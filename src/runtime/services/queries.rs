//! The SQL of services.

use serde_json::Value;
use uuid::Uuid;

use super::model::{SERVICE_COLUMNS, Service};
use crate::db::{DbError, FromRow, Queryable, Statement};
use crate::runtime::TimeKey;

pub struct NewService<'a> {
    pub project_id: Uuid,
    pub owner_id: Uuid,
    pub template_id: Option<Uuid>,
    pub name: &'a str,
    pub slug: &'a str,
    pub description: Option<&'a str>,
    pub service_type: &'a str,
    pub port: Option<i32>,
    pub health_check_url: Option<&'a str>,
    pub status: &'a str,
    pub deployment_config: &'a Value,
    pub environment_vars: &'a Value,
    pub resource_limits: &'a Value,
}

pub async fn insert_service(db: &impl Queryable, s: &NewService<'_>) -> Result<Service, DbError> {
    let sql = format!(
        "INSERT INTO devx.services AS s (project_id, owner_id, template_id, name, slug, description, service_type,
                                        port, health_check_url, status, deployment_config, environment_vars,
                                        resource_limits, deployed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                 CASE WHEN $10 = 'running' THEN now() END)
         RETURNING {SERVICE_COLUMNS}"
    );
    db.query_one_as(
        &sql,
        &[
            &s.project_id,
            &s.owner_id,
            &s.template_id,
            &s.name,
            &s.slug,
            &s.description,
            &s.service_type,
            &s.port,
            &s.health_check_url,
            &s.status,
            &s.deployment_config,
            &s.environment_vars,
            &s.resource_limits,
        ],
    )
    .await
}

/// A service and the owner who decides who may see it (beside the
/// service's own `owner_id`, hence not [`crate::db::row::WithOwner`]).
#[derive(FromRow)]
struct ServiceWithAccessOwner {
    #[from_row(flatten)]
    service: Service,
    access_owner_id: Uuid,
}

/// Moves a service's `updated_at` (and so its `ETag`) without changing
/// anything else: its variables changed. Bookkeeping to the audit trigger.
pub async fn touch_service(db: &impl Queryable, id: Uuid) -> Result<(), DbError> {
    db.execute("UPDATE devx.services SET updated_at = now() WHERE id = $1", &[&id]).await?;
    Ok(())
}

/// The service and the owner who decides who may see it (its project's
/// owner; its own for a standalone service). Services of deleted projects
/// are not found. With `lock`, the row is locked for the transaction.
pub async fn get_service(db: &impl Queryable, id: Uuid, lock: bool) -> Result<Option<(Service, Uuid)>, DbError> {
    let sql = format!(
        "SELECT {SERVICE_COLUMNS}, coalesce(p.owner_id, s.owner_id) AS access_owner_id
           FROM devx.services s LEFT JOIN devx.projects p ON p.id = s.project_id
          WHERE s.id = $1 AND (s.project_id IS NULL OR p.status <> 'deleted'){}",
        if lock { " FOR UPDATE OF s" } else { "" }
    );
    let found: Option<ServiceWithAccessOwner> = db.query_opt_as(&sql, &[&id]).await?;
    Ok(found.map(|r| (r.service, r.access_owner_id)))
}

/// A project's services, newest first; fetches `limit + 1` rows.
pub async fn list_project_services(
    db: &impl Queryable,
    project_id: Uuid,
    status: Option<&str>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<Service>, DbError> {
    let mut s = Statement::default();
    let project_id = s.bind(project_id);
    s.and(format!("s.project_id = {project_id}"));
    s.and_some(status, |status| format!("s.status = {status}"));
    s.newest_first(&format!("SELECT {SERVICE_COLUMNS} FROM devx.services s"), "s", after, limit);
    s.query_as(db).await
}

/// A change to a service: `None` leaves a field; `Some(None)` clears a
/// nullable one.
#[derive(Default)]
pub struct ServiceChange<'a> {
    pub name: Option<&'a str>,
    pub slug: Option<&'a str>,
    pub description: Option<Option<&'a str>>,
    pub service_type: Option<&'a str>,
    pub port: Option<Option<i32>>,
    pub health_check_url: Option<Option<&'a str>>,
    pub status: Option<&'a str>,
    pub deployment_config: Option<&'a Value>,
    pub environment_vars: Option<&'a Value>,
    pub resource_limits: Option<&'a Value>,
}

pub async fn update_service(db: &impl Queryable, id: Uuid, c: &ServiceChange<'_>) -> Result<Option<Service>, DbError> {
    let sql = format!(
        "UPDATE devx.services s
            SET name = coalesce($2, s.name),
                slug = coalesce($3, s.slug),
                description = CASE WHEN $4 THEN $5 ELSE s.description END,
                service_type = coalesce($6, s.service_type),
                port = CASE WHEN $7 THEN $8 ELSE s.port END,
                health_check_url = CASE WHEN $9 THEN $10 ELSE s.health_check_url END,
                status = coalesce($11, s.status),
                deployed_at = CASE WHEN $11 = 'running' AND s.status <> 'running' THEN now() ELSE s.deployed_at END,
                deployment_config = coalesce($12, s.deployment_config),
                environment_vars = coalesce($13, s.environment_vars),
                resource_limits = coalesce($14, s.resource_limits)
          WHERE s.id = $1
         RETURNING {SERVICE_COLUMNS}"
    );
    db.query_opt_as(
        &sql,
        &[
            &id,
            &c.name,
            &c.slug,
            &c.description.is_some(),
            &c.description.flatten(),
            &c.service_type,
            &c.port.is_some(),
            &c.port.flatten(),
            &c.health_check_url.is_some(),
            &c.health_check_url.flatten(),
            &c.status,
            &c.deployment_config,
            &c.environment_vars,
            &c.resource_limits,
        ],
    )
    .await
}

pub async fn delete_service(db: &impl Queryable, id: Uuid) -> Result<bool, DbError> {
    Ok(db.execute("DELETE FROM devx.services WHERE id = $1", &[&id]).await? > 0)
}
