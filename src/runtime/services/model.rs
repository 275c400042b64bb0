//! Services as the API shows them, and their row mapping.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    Inactive,
    Pending,
    Building,
    Deploying,
    Running,
    Stopped,
    Failed,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Inactive => "inactive",
            ServiceStatus::Pending => "pending",
            ServiceStatus::Building => "building",
            ServiceStatus::Deploying => "deploying",
            ServiceStatus::Running => "running",
            ServiceStatus::Stopped => "stopped",
            ServiceStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "inactive" => ServiceStatus::Inactive,
            "pending" => ServiceStatus::Pending,
            "building" => ServiceStatus::Building,
            "deploying" => ServiceStatus::Deploying,
            "running" => ServiceStatus::Running,
            "stopped" => ServiceStatus::Stopped,
            "failed" => ServiceStatus::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Service {
    pub id: Uuid,
    /// `null` for a standalone service.
    pub project_id: Option<Uuid>,
    pub owner_id: Uuid,
    pub template_id: Option<Uuid>,
    pub name: String,
    /// Unique across devx; lowercase letters, digits and single dashes.
    pub slug: String,
    pub description: Option<String>,
    #[schema(example = "api")]
    pub service_type: String,
    pub port: Option<i32>,
    pub health_check_url: Option<String>,
    pub status: ServiceStatus,
    #[schema(value_type = Object)]
    pub deployment_config: Value,
    #[schema(value_type = Object)]
    pub environment_vars: Value,
    #[schema(value_type = Object)]
    pub resource_limits: Value,
    /// When the service last became `running`.
    pub deployed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns `Service::from_row` reads, in order.
pub const SERVICE_COLUMNS: &str = "s.id, s.project_id, s.owner_id, s.template_id, s.name, s.slug, s.description, \
     s.service_type, s.port, s.health_check_url, s.status, s.deployment_config, s.environment_vars, \
     s.resource_limits, s.deployed_at, s.created_at, s.updated_at";

impl Service {
    pub fn from_row(row: &Row) -> Service {
        Service {
            id: row.get(0),
            project_id: row.get(1),
            owner_id: row.get(2),
            template_id: row.get(3),
            name: row.get(4),
            slug: row.get(5),
            description: row.get(6),
            service_type: row.get(7),
            port: row.get(8),
            health_check_url: row.get(9),
            status: ServiceStatus::parse(row.get(10)).unwrap_or(ServiceStatus::Inactive),
            deployment_config: row.get(11),
            environment_vars: row.get(12),
            resource_limits: row.get(13),
            deployed_at: row.get(14),
            created_at: row.get(15),
            updated_at: row.get(16),
        }
    }
}
