//! The SQL of file records.

use uuid::Uuid;

use super::model::{FILE_COLUMNS, FileRecord};
use crate::db::row::WithOwner;
use crate::db::{DbError, Queryable, Statement};

pub struct NewFile<'a> {
    pub project_id: Uuid,
    pub container_id: Option<Uuid>,
    pub file_path: &'a str,
    pub file_name: &'a str,
    pub file_size: Option<i64>,
    pub mime_type: Option<&'a str>,
}

/// Serializes writers of one path of one project until the transaction ends,
/// so that two concurrent posts of a path replace one another in turn
/// instead of one failing on the unique live path.
pub async fn lock_path(db: &impl Queryable, project_id: Uuid, path: &str) -> Result<(), DbError> {
    db.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('devx.file_storage:' || $1::uuid::text || ':' || $2, 0))",
        &[&project_id, &path],
    )
    .await?;
    Ok(())
}

/// Marks the live record at a path deleted; its id if there was one.
pub async fn retire_path(db: &impl Queryable, project_id: Uuid, path: &str) -> Result<Option<Uuid>, DbError> {
    db.query_scalar_opt(
        "UPDATE devx.file_storage SET is_deleted = true
          WHERE project_id = $1 AND file_path = $2 AND NOT is_deleted
         RETURNING id",
        &[&project_id, &path],
    )
    .await
}

pub async fn insert_file(db: &impl Queryable, f: &NewFile<'_>) -> Result<FileRecord, DbError> {
    let sql = format!(
        "INSERT INTO devx.file_storage AS f (project_id, container_id, file_path, file_name, file_size, mime_type)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING {FILE_COLUMNS}"
    );
    db.query_one_as(&sql, &[&f.project_id, &f.container_id, &f.file_path, &f.file_name, &f.file_size, &f.mime_type])
        .await
}

/// The live record and its project's owner (not found if deleted, or if the
/// project is). With `lock`, the row is locked for the transaction.
pub async fn get_file(db: &impl Queryable, id: Uuid, lock: bool) -> Result<Option<(FileRecord, Uuid)>, DbError> {
    let sql = format!(
        "SELECT {FILE_COLUMNS}, p.owner_id
           FROM devx.file_storage f JOIN devx.projects p ON p.id = f.project_id
          WHERE f.id = $1 AND NOT f.is_deleted AND p.status <> 'deleted'{}",
        if lock { " FOR UPDATE OF f" } else { "" }
    );
    Ok(db.query_opt_as::<WithOwner<FileRecord>>(&sql, &[&id]).await?.map(|r| (r.row, r.owner_id)))
}

pub async fn delete_file(db: &impl Queryable, id: Uuid) -> Result<(), DbError> {
    db.execute("UPDATE devx.file_storage SET is_deleted = true WHERE id = $1", &[&id]).await?;
    Ok(())
}

pub struct FileFilter<'a> {
    pub project_id: Uuid,
    /// Paths starting with this (plain text, no wildcards).
    pub path_prefix: Option<&'a str>,
    pub mime_type: Option<&'a str>,
    /// Keyset: the last path seen.
    pub after: Option<&'a str>,
    pub limit: i64,
}

/// A project's live records by path; fetches `limit + 1` rows. Walks the
/// unique live-path index `(project_id, file_path) WHERE NOT is_deleted`.
pub async fn list_files(db: &impl Queryable, f: &FileFilter<'_>) -> Result<Vec<FileRecord>, DbError> {
    let mut s = Statement::default();
    let project_id = s.bind(f.project_id);
    s.and(format!("f.project_id = {project_id} AND NOT f.is_deleted"));
    s.and_some(f.path_prefix, |prefix| format!("starts_with(f.file_path, {prefix})"));
    s.and_some(f.mime_type, |mime| format!("f.mime_type = {mime}"));
    s.and_some(f.after, |after| format!("f.file_path > {after}"));
    let limit = s.bind(f.limit + 1);
    s.sql = format!(
        "SELECT {FILE_COLUMNS} FROM devx.file_storage f {} ORDER BY f.file_path LIMIT {limit}",
        s.where_clause()
    );
    s.query_as(db).await
}
