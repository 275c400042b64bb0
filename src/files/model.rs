//! File records as the API shows them, and their row mapping.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const FILE_COLUMNS: &str = "f.id, f.project_id, f.container_id, f.file_path, f.file_name, f.file_size, \
     f.mime_type, f.is_deleted, f.created_at, f.updated_at";

impl FileRecord {
    pub fn from_row(row: &Row) -> FileRecord {
        FileRecord {
            id: row.get(0),
            project_id: row.get(1),
            container_id: row.get(2),
            file_path: row.get(3),
            file_name: row.get(4),
            file_size: row.get(5),
            mime_type: row.get(6),
            is_deleted: row.get(7),
            created_at: row.get(8),
            updated_at: row.get(9),
        }
    }
}
