//! The SQL of containers.

use crate::db::Visibility;
use serde_json::Value;
use uuid::Uuid;

use super::model::{Action, CONTAINER_COLUMNS, Container, ContainerRow};
use crate::db::{DbError, FromRow, Queryable, Statement};
use crate::runtime::TimeKey;

pub struct NewContainer<'a> {
    /// `None`: a container of its own, owned by `owner_id`.
    pub project_id: Option<Uuid>,
    pub owner_id: Uuid,
    pub container_id: &'a str,
    pub name: &'a str,
    pub image_name: Option<&'a str>,
    pub assigned_port: Option<i32>,
    pub url: Option<&'a str>,
    pub labels: &'a Value,
    pub metadata: &'a Value,
}

pub async fn insert_container(db: &impl Queryable, c: &NewContainer<'_>) -> Result<Container, DbError> {
    let sql = format!(
        "INSERT INTO devx.containers AS c (project_id, owner_id, container_id, name, image_name, assigned_port, url,
                                          labels, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING {CONTAINER_COLUMNS}"
    );
    let row: ContainerRow = db
        .query_one_as(
            &sql,
            &[
                &c.project_id,
                &c.owner_id,
                &c.container_id,
                &c.name,
                &c.image_name,
                &c.assigned_port,
                &c.url,
                &c.labels,
                &c.metadata,
            ],
        )
        .await?;
    Ok(row.into())
}

/// A container and the owner who decides who sees it: its project's owner
/// (who may differ from the container's own `owner_id`), or for a container
/// without a project its own.
#[derive(FromRow)]
struct ContainerWithProjectOwner {
    #[from_row(flatten)]
    row: ContainerRow,
    project_owner_id: Uuid,
}

/// The container and the owner who sees it (not found if its project is
/// deleted).
pub async fn get_container(db: &impl Queryable, id: Uuid, lock: bool) -> Result<Option<(Container, Uuid)>, DbError> {
    let sql = format!(
        "SELECT {CONTAINER_COLUMNS}, coalesce(p.owner_id, c.owner_id) AS project_owner_id
           FROM devx.containers c LEFT JOIN devx.projects p ON p.id = c.project_id
          WHERE c.id = $1 AND (c.project_id IS NULL OR p.status <> 'deleted'){}",
        if lock { " FOR UPDATE OF c" } else { "" }
    );
    let found: Option<ContainerWithProjectOwner> = db.query_opt_as(&sql, &[&id]).await?;
    Ok(found.map(|r| (r.row.into(), r.project_owner_id)))
}

/// Whether `id` is a container of `project_id` (any status): registered for
/// it, or the container the project lives in.
pub async fn belongs_to_project(db: &impl Queryable, id: Uuid, project_id: Uuid) -> Result<bool, DbError> {
    let row = db
        .query_opt(
            "SELECT 1 FROM devx.containers c
              WHERE c.id = $1
                AND (c.project_id = $2
                     OR EXISTS (SELECT 1 FROM devx.projects p WHERE p.id = $2 AND p.container_id = c.id))",
            &[&id, &project_id],
        )
        .await?;
    Ok(row.is_some())
}

/// A project's containers, newest first; with no `status`, all but deleted
/// ones. Fetches `limit + 1` rows.
pub async fn list_project_containers(
    db: &impl Queryable,
    project_id: Uuid,
    status: Option<&str>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<Container>, DbError> {
    let mut s = Statement::default();
    let project_id = s.bind(project_id);
    s.and(format!("c.project_id = {project_id}"));
    let rows: Vec<ContainerRow> = list_containers(s, "devx.containers c", status, after, limit).query_as(db).await?;
    Ok(rows.into_iter().map(Container::from).collect())
}

/// The containers the caller sees (`visibility`), of live projects or of
/// none, newest first; with no `status`, all but deleted ones.
pub async fn list_visible_containers(
    db: &impl Queryable,
    visibility: Visibility,
    status: Option<&str>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<Container>, DbError> {
    let mut s = Statement::default();
    s.visible_to(visibility, "c.owner_id");
    s.and("(c.project_id IS NULL OR p.status <> 'deleted')");
    let from = "devx.containers c LEFT JOIN devx.projects p ON p.id = c.project_id";
    let rows: Vec<ContainerRow> = list_containers(s, from, status, after, limit).query_as(db).await?;
    Ok(rows.into_iter().map(Container::from).collect())
}

/// Completes a container list whose own conditions are in `s`: the status
/// (all but deleted ones without one), the keyset, newest first, `limit + 1`.
fn list_containers<'a>(
    mut s: Statement<'a>,
    from: &str,
    status: Option<&'a str>,
    after: Option<TimeKey>,
    limit: i64,
) -> Statement<'a> {
    match status {
        Some(status) => {
            let status = s.bind(status);
            s.and(format!("c.status = {status}"));
        }
        None => s.and("c.status <> 'deleted'"),
    }
    s.newest_first(&format!("SELECT {CONTAINER_COLUMNS} FROM {from}"), "c", after, limit);
    s
}

/// A container with its project's name, as the active list shows it.
#[derive(FromRow)]
struct ActiveContainer {
    #[from_row(flatten)]
    row: ContainerRow,
    project_name: Option<String>,
}

/// The active containers the caller sees, as the `devx.active_containers`
/// view defines them (created or running), with their project's name,
/// newest first; `status` narrows them to one of the two.
pub async fn list_active_containers(
    db: &impl Queryable,
    visibility: Visibility,
    status: Option<&str>,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<Container>, DbError> {
    let mut s = Statement::default();
    s.visible_to(visibility, "a.user_id");
    s.and("(c.project_id IS NULL OR p.status <> 'deleted')");
    s.and_some(status, |status| format!("a.status = {status}"));
    let select = format!(
        "SELECT {CONTAINER_COLUMNS}, a.project_name
           FROM devx.active_containers a
           JOIN devx.containers c ON c.id = a.id
           LEFT JOIN devx.projects p ON p.id = c.project_id"
    );
    s.newest_first(&select, "a", after, limit);
    let rows: Vec<ActiveContainer> = s.query_as(db).await?;
    Ok(rows.into_iter().map(|r| r.row.with_project_name(r.project_name)).collect())
}

/// Applies `action` if the container is still in a status it may start from
/// (a conditional update: of two concurrent transitions, one wins and the
/// other finds nothing). `None`: the status was not one of those.
pub async fn transition(db: &impl Queryable, id: Uuid, action: Action) -> Result<Option<Container>, DbError> {
    let sql = format!(
        "UPDATE devx.containers c
            SET status = $2,
                started_at = CASE WHEN $2 = 'running' THEN now() ELSE c.started_at END,
                stopped_at = CASE WHEN $2 = 'stopped' OR ($2 = 'deleted' AND c.status = 'running') THEN now()
                                  ELSE c.stopped_at END
          WHERE c.id = $1 AND c.status = ANY($3)
         RETURNING {CONTAINER_COLUMNS}"
    );
    let from: Vec<&str> = action.allowed_from().iter().map(|s| s.as_str()).collect();
    let row: Option<ContainerRow> = db.query_opt_as(&sql, &[&id, &action.target().as_str(), &from]).await?;
    Ok(row.map(Container::from))
}

#[derive(Default)]
pub struct ContainerChange<'a> {
    pub name: Option<&'a str>,
    pub image_name: Option<Option<&'a str>>,
    pub assigned_port: Option<Option<i32>>,
    pub url: Option<Option<&'a str>>,
    pub labels: Option<&'a Value>,
    pub metadata: Option<&'a Value>,
}

/// Changes a container that is not deleted; `None` if it is (or is gone).
pub async fn update_container(
    db: &impl Queryable,
    id: Uuid,
    ch: &ContainerChange<'_>,
) -> Result<Option<Container>, DbError> {
    let sql = format!(
        "UPDATE devx.containers c
            SET name = coalesce($2, c.name),
                image_name = CASE WHEN $3 THEN $4 ELSE c.image_name END,
                assigned_port = CASE WHEN $5 THEN $6 ELSE c.assigned_port END,
                url = CASE WHEN $7 THEN $8 ELSE c.url END,
                labels = coalesce($9, c.labels),
                metadata = coalesce($10, c.metadata)
          WHERE c.id = $1 AND c.status <> 'deleted'
         RETURNING {CONTAINER_COLUMNS}"
    );
    let row: Option<ContainerRow> = db
        .query_opt_as(
            &sql,
            &[
                &id,
                &ch.name,
                &ch.image_name.is_some(),
                &ch.image_name.flatten(),
                &ch.assigned_port.is_some(),
                &ch.assigned_port.flatten(),
                &ch.url.is_some(),
                &ch.url.flatten(),
                &ch.labels,
                &ch.metadata,
            ],
        )
        .await?;
    Ok(row.map(Container::from))
}
