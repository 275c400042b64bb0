//! Deployments as the API shows them, their status machine, and their row
//! mapping. The types that can hold a secret do not implement `Debug`, so a
//! stray `{:?}` cannot log one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

/// What a secret looks like wherever it is not revealed.
pub const MASK: &str = "****";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    Pending,
    Building,
    Deploying,
    Running,
    Stopped,
    Failed,
}

impl DeploymentStatus {
    pub const ALL: [DeploymentStatus; 6] = [
        DeploymentStatus::Pending,
        DeploymentStatus::Building,
        DeploymentStatus::Deploying,
        DeploymentStatus::Running,
        DeploymentStatus::Stopped,
        DeploymentStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Pending => "pending",
            DeploymentStatus::Building => "building",
            DeploymentStatus::Deploying => "deploying",
            DeploymentStatus::Running => "running",
            DeploymentStatus::Stopped => "stopped",
            DeploymentStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(self, DeploymentStatus::Stopped | DeploymentStatus::Failed)
    }

    /// Position on the forward path; `failed` is off it.
    fn step(self) -> Option<u8> {
        match self {
            DeploymentStatus::Pending => Some(0),
            DeploymentStatus::Building => Some(1),
            DeploymentStatus::Deploying => Some(2),
            DeploymentStatus::Running => Some(3),
            DeploymentStatus::Stopped => Some(4),
            DeploymentStatus::Failed => None,
        }
    }

    /// Whether a deployment in `self` may move to `to`: forward along the
    /// path (skipping steps is fine), or to `failed` from any status that is
    /// not final.
    pub fn can_move_to(self, to: DeploymentStatus) -> bool {
        if self.is_final() || self == to {
            return false;
        }
        match (self.step(), to.step()) {
            (_, None) => true,
            (Some(from), Some(to)) => to > from,
            (None, Some(_)) => false,
        }
    }

    pub fn next(self) -> Vec<DeploymentStatus> {
        Self::ALL.into_iter().filter(|to| self.can_move_to(*to)).collect()
    }
}

/// A deployment. `db_connection_info` and `environment_vars` are the stored
/// values only in `GET /api/deployments/{id}`; everywhere else they are
/// `"****"` when set and `null` when not.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct Deployment {
    pub id: Uuid,
    pub project_id: Uuid,
    pub project_name: String,
    /// The project's owner.
    pub owner_id: Uuid,
    pub service_id: Option<Uuid>,
    pub app_sandbox_id: Option<String>,
    pub public_url: Option<String>,
    pub db_sandbox_id: Option<String>,
    /// Secret: any JSON; `"****"` unless revealed.
    #[schema(value_type = Option<Object>)]
    pub db_connection_info: Option<Value>,
    /// Secret: an object of variables; `"****"` unless revealed.
    #[schema(value_type = Option<Object>)]
    pub environment_vars: Option<Value>,
    pub status: DeploymentStatus,
    #[schema(example = "nodejs")]
    pub runtime_type: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns `DeploymentRow::from_row` reads, in order, with secrets
/// reduced to whether they are set (`d` is a deployment, `p` its project).
pub const DEPLOYMENT_COLUMNS: &str = "d.id, d.project_id, p.name, p.owner_id, d.service_id, d.app_sandbox_id, \
     d.public_url, d.db_sandbox_id, d.status, d.runtime_type, d.created_at, d.updated_at, \
     d.db_connection_info IS NOT NULL, d.environment_vars IS NOT NULL";

/// [`DEPLOYMENT_COLUMNS`] and the sealed secrets.
pub const DEPLOYMENT_COLUMNS_SEALED: &str = "d.id, d.project_id, p.name, p.owner_id, d.service_id, d.app_sandbox_id, \
     d.public_url, d.db_sandbox_id, d.status, d.runtime_type, d.created_at, d.updated_at, \
     d.db_connection_info IS NOT NULL, d.environment_vars IS NOT NULL, d.db_connection_info, d.environment_vars";

/// A deployment as loaded: masked, with the sealed secrets when asked for.
pub struct DeploymentRow {
    pub deployment: Deployment,
    pub sealed_connection_info: Option<Vec<u8>>,
    pub sealed_environment_vars: Option<Vec<u8>>,
}

impl DeploymentRow {
    pub fn from_row(row: &Row) -> DeploymentRow {
        let mask = |set: bool| set.then(|| Value::String(MASK.into()));
        let sealed = row.len() > 14;
        DeploymentRow {
            deployment: Deployment {
                id: row.get(0),
                project_id: row.get(1),
                project_name: row.get(2),
                owner_id: row.get(3),
                service_id: row.get(4),
                app_sandbox_id: row.get(5),
                public_url: row.get(6),
                db_sandbox_id: row.get(7),
                status: DeploymentStatus::parse(row.get(8)).unwrap_or(DeploymentStatus::Failed),
                runtime_type: row.get(9),
                created_at: row.get(10),
                updated_at: row.get(11),
                db_connection_info: mask(row.get(12)),
                environment_vars: mask(row.get(13)),
            },
            sealed_connection_info: if sealed { row.get(14) } else { None },
            sealed_environment_vars: if sealed { row.get(15) } else { None },
        }
    }
}

/// The caller's deployments by status: the total, and a count for every
/// status (`by_status.running`: how many of theirs run now).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeploymentSummary {
    pub total: i64,
    /// Every status, with 0 where there are none.
    pub by_status: BTreeMap<String, i64>,
}

#[cfg(test)]
mod tests {
    use super::DeploymentStatus::{self, *};

    #[test]
    fn the_status_machine_moves_forward_or_fails() {
        assert!(Pending.can_move_to(Building));
        assert!(Pending.can_move_to(Running), "steps may be skipped");
        assert!(Deploying.can_move_to(Running));
        assert!(Running.can_move_to(Stopped));
        assert!(Running.can_move_to(Failed));
        assert!(!Running.can_move_to(Building), "never backwards");
        assert!(!Stopped.can_move_to(Running), "stopped is final");
        assert!(!Failed.can_move_to(Pending), "failed is final");
        assert!(!Stopped.can_move_to(Failed));
        assert!(!Pending.can_move_to(Pending));
        assert_eq!(Deploying.next(), [Running, Stopped, Failed]);
        assert!(Failed.next().is_empty());
        assert_eq!(DeploymentStatus::parse("running"), Some(Running));
    }
}
