//! File records as the API shows them, and their row mapping.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct FileRecord {
    pub id: Uuid,
    pub project_id: Uuid,
    pub container_id: Option<Uuid>,
    /// Relative to the project, `/`-separated.
    #[schema(example = "src/main.rs")]
    pub file_path: String,
    #[schema(example = "main.rs")]
    pub file_name: String,
    /// Bytes.
    pub file_size: Option<i64>,
    #[schema(example = "text/x-rust")]
    pub mime_type: Option<String>,
    pub is_deleted: bool,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

/// The columns a [`FileRecord`] is read from (the table is aliased `f`).
pub const FILE_COLUMNS: &str = "f.id, f.project_id, f.container_id, f.file_path, f.file_name, f.file_size, \
     f.mime_type, f.is_deleted, f.created_at, f.updated_at";
