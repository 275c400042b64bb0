//! Containers as the API shows them, their lifecycle, and their row mapping.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

crate::text_enum! {
    pub enum ContainerStatus {
        Created,
        Running,
        Stopped,
        Deleted,
    }
}

/// A lifecycle action and the statuses it may start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Delete,
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Delete => "delete",
        }
    }

    pub fn target(self) -> ContainerStatus {
        match self {
            Action::Start => ContainerStatus::Running,
            Action::Stop => ContainerStatus::Stopped,
            Action::Delete => ContainerStatus::Deleted,
        }
    }

    /// created -> running, stopped -> running; running -> stopped; any live
    /// status -> deleted. A deleted container is final.
    pub fn allowed_from(self) -> &'static [ContainerStatus] {
        use ContainerStatus::*;
        match self {
            Action::Start => &[Created, Stopped],
            Action::Stop => &[Running],
            Action::Delete => &[Created, Running, Stopped],
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Container {
    pub id: Uuid,
    /// The runtime's id for it (unique).
    pub container_id: String,
    /// The project it was registered for; `null` for a container made on
    /// its own (`POST /api/containers`), which belongs to `owner_id`.
    pub project_id: Option<Uuid>,
    pub owner_id: Uuid,
    pub name: String,
    pub status: ContainerStatus,
    pub image_name: Option<String>,
    /// No two running containers share one.
    pub assigned_port: Option<i32>,
    pub url: Option<String>,
    /// When it last started.
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it last stopped (or was deleted while running).
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub stopped_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub labels: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// Only in `GET /api/containers?active=true` (from `devx.active_containers`):
    /// the project living in it, else the one it was registered for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
}

impl crate::http::Versioned for Container {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

/// The columns a `ContainerRow` is read from (`c` is the container).
pub const CONTAINER_COLUMNS: &str = "c.id, c.container_id, c.project_id, c.owner_id, c.name, c.status, c.image_name, \
     c.assigned_port, c.url, c.started_at, c.stopped_at, c.labels, c.metadata, c.created_at, c.updated_at";

/// A container as stored: [`Container`] without the project name, which
/// only the list of active containers reads.
#[derive(crate::db::FromRow)]
pub(super) struct ContainerRow {
    id: Uuid,
    container_id: String,
    project_id: Option<Uuid>,
    owner_id: Uuid,
    name: String,
    status: ContainerStatus,
    image_name: Option<String>,
    assigned_port: Option<i32>,
    url: Option<String>,
    started_at: Option<DateTime<Utc>>,
    stopped_at: Option<DateTime<Utc>>,
    labels: Value,
    metadata: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ContainerRow {
    pub(super) fn with_project_name(self, project_name: Option<String>) -> Container {
        let ContainerRow {
            id,
            container_id,
            project_id,
            owner_id,
            name,
            status,
            image_name,
            assigned_port,
            url,
            started_at,
            stopped_at,
            labels,
            metadata,
            created_at,
            updated_at,
        } = self;
        Container {
            id,
            container_id,
            project_id,
            owner_id,
            name,
            status,
            image_name,
            assigned_port,
            url,
            started_at,
            stopped_at,
            labels,
            metadata,
            created_at,
            updated_at,
            project_name,
        }
    }
}

impl From<ContainerRow> for Container {
    fn from(row: ContainerRow) -> Container {
        row.with_project_name(None)
    }
}
