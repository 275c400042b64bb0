//! Services as the API shows them, and their row mapping.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

crate::text_enum! {
    pub enum ServiceStatus {
        Inactive,
        Pending,
        Building,
        Deploying,
        Running,
        Stopped,
        Failed,
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
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
    /// The service's own (non-preview) environment variables by name,
    /// secret ones as `"****"` (see `/api/services/{id}/env`).
    #[schema(value_type = Object)]
    pub environment_vars: Value,
    #[schema(value_type = Object)]
    pub resource_limits: Value,
    /// When the service last became `running`.
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub deployed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl crate::http::Versioned for Service {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

/// The columns a [`Service`] is read from (`s` is the service).
pub const SERVICE_COLUMNS: &str = "s.id, s.project_id, s.owner_id, s.template_id, s.name, s.slug, s.description, \
     s.service_type, s.port, s.health_check_url, s.status, s.deployment_config, s.environment_vars, \
     s.resource_limits, s.deployed_at, s.created_at, s.updated_at";
