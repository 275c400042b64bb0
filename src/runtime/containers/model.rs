//! Containers as the API shows them, their lifecycle, and their row mapping.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    Created,
    Running,
    Stopped,
    Deleted,
}

impl ContainerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Stopped => "stopped",
            ContainerStatus::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => ContainerStatus::Created,
            "running" => ContainerStatus::Running,
            "stopped" => ContainerStatus::Stopped,
            "deleted" => ContainerStatus::Deleted,
            _ => return None,
        })
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
    pub project_id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub status: ContainerStatus,
    pub image_name: Option<String>,
    /// No two running containers share one.
    pub assigned_port: Option<i32>,
    pub url: Option<String>,
    /// When it last started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it last stopped (or was deleted while running).
    pub stopped_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub labels: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Only in `GET /api/containers?active=true` (from `devx.active_containers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
}

/// The columns `Container::from_row` reads, in order.
pub const CONTAINER_COLUMNS: &str = "c.id, c.container_id, c.project_id, c.owner_id, c.name, c.status, c.image_name, \
     c.assigned_port, c.url, c.started_at, c.stopped_at, c.labels, c.metadata, c.created_at, c.updated_at";

impl Container {
    pub fn from_row(row: &Row) -> Container {
        Container {
            id: row.get(0),
            container_id: row.get(1),
            project_id: row.get(2),
            owner_id: row.get(3),
            name: row.get(4),
            status: ContainerStatus::parse(row.get(5)).unwrap_or(ContainerStatus::Deleted),
            image_name: row.get(6),
            assigned_port: row.get(7),
            url: row.get(8),
            started_at: row.get(9),
            stopped_at: row.get(10),
            labels: row.get(11),
            metadata: row.get(12),
            created_at: row.get(13),
            updated_at: row.get(14),
            project_name: None,
        }
    }
}
