//! Deployments as the API shows them, their status machine, and their row
//! mapping. The types that can hold a secret do not implement `Debug`, so a
//! stray `{:?}` cannot log one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use uuid::Uuid;

/// What a secret looks like wherever it is not revealed.
pub const MASK: &str = "****";

crate::text_enum! {
    pub enum DeploymentStatus {
        Pending,
        Building,
        Deploying,
        Running,
        Stopped,
        Failed,
    }
}

/// The one status a deployment is created in: a create may say `pending`,
/// and anything else is refused with how to move a deployment on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum NewDeploymentStatus {
    Pending,
}

impl<'de> Deserialize<'de> for NewDeploymentStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let status = String::deserialize(deserializer)?;
        if status == "pending" {
            Ok(NewDeploymentStatus::Pending)
        } else {
            Err(serde::de::Error::custom(format!(
                "a deployment starts as pending, not {status:?}; move it on with PATCH /api/deployments/{{id}}"
            )))
        }
    }
}

impl DeploymentStatus {
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
        Self::ALL.iter().copied().filter(|to| self.can_move_to(*to)).collect()
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
    #[schema(schema_with = masked_connection_info)]
    pub db_connection_info: Option<Value>,
    #[schema(schema_with = masked_environment_vars)]
    pub environment_vars: Option<Value>,
    pub status: DeploymentStatus,
    #[schema(example = "nodejs")]
    pub runtime_type: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl crate::http::Versioned for Deployment {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

/// Every JSON type: any value. (A schema without `type` says the same, but
/// the finished document is read back into utoipa's types, which need one.)
pub fn any_json() -> SchemaType {
    SchemaType::from_iter([Type::Object, Type::Array, Type::String, Type::Number, Type::Boolean, Type::Null])
}

/// Any JSON: a deployment's connection info as given, `"****"` where it is
/// masked, `null` when there is none.
fn masked_connection_info() -> Schema {
    ObjectBuilder::new()
        .schema_type(any_json())
        .description(Some("Secret: any JSON; `\"****\"` unless revealed, `null` when not set."))
        .into()
}

/// An object of variables, `"****"` where it is masked, `null` when there
/// is none.
fn masked_environment_vars() -> Schema {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Object))
        .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some([MASK])))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some("Secret: an object of variables; `\"****\"` unless revealed, `null` when not set."))
        .into()
}

/// The columns a `MaskedRow` is read from, with secrets reduced to
/// whether they are set (`d` is a deployment, `p` its project).
pub const DEPLOYMENT_COLUMNS: &str = "d.id, d.project_id, p.name AS project_name, p.owner_id, d.service_id, \
     d.app_sandbox_id, d.public_url, d.db_sandbox_id, d.status, d.runtime_type, d.created_at, d.updated_at, \
     d.db_connection_info IS NOT NULL AS has_connection_info, d.environment_vars IS NOT NULL AS has_environment_vars";

/// [`DEPLOYMENT_COLUMNS`] and the sealed secrets (a `SealedRow`).
pub const DEPLOYMENT_COLUMNS_SEALED: &str = "d.id, d.project_id, p.name AS project_name, p.owner_id, d.service_id, \
     d.app_sandbox_id, d.public_url, d.db_sandbox_id, d.status, d.runtime_type, d.created_at, d.updated_at, \
     d.db_connection_info IS NOT NULL AS has_connection_info, d.environment_vars IS NOT NULL AS has_environment_vars, \
     d.db_connection_info AS sealed_connection_info, d.environment_vars AS sealed_environment_vars";

/// A deployment as loaded: masked, with the sealed secrets when asked for.
pub struct DeploymentRow {
    pub deployment: Deployment,
    pub sealed_connection_info: Option<Vec<u8>>,
    pub sealed_environment_vars: Option<Vec<u8>>,
}

/// The stored deployment with its secrets reduced to whether they are set
/// ([`DEPLOYMENT_COLUMNS`]).
#[derive(crate::db::FromRow)]
pub(super) struct MaskedRow {
    id: Uuid,
    project_id: Uuid,
    project_name: String,
    owner_id: Uuid,
    service_id: Option<Uuid>,
    app_sandbox_id: Option<String>,
    public_url: Option<String>,
    db_sandbox_id: Option<String>,
    status: DeploymentStatus,
    runtime_type: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    has_connection_info: bool,
    has_environment_vars: bool,
}

/// [`MaskedRow`] and the sealed secrets ([`DEPLOYMENT_COLUMNS_SEALED`]).
#[derive(crate::db::FromRow)]
pub(super) struct SealedRow {
    #[from_row(flatten)]
    masked: MaskedRow,
    sealed_connection_info: Option<Vec<u8>>,
    sealed_environment_vars: Option<Vec<u8>>,
}

impl From<MaskedRow> for DeploymentRow {
    fn from(r: MaskedRow) -> DeploymentRow {
        let mask = |set: bool| set.then(|| Value::String(MASK.into()));
        DeploymentRow {
            deployment: Deployment {
                id: r.id,
                project_id: r.project_id,
                project_name: r.project_name,
                owner_id: r.owner_id,
                service_id: r.service_id,
                app_sandbox_id: r.app_sandbox_id,
                public_url: r.public_url,
                db_sandbox_id: r.db_sandbox_id,
                status: r.status,
                runtime_type: r.runtime_type,
                created_at: r.created_at,
                updated_at: r.updated_at,
                db_connection_info: mask(r.has_connection_info),
                environment_vars: mask(r.has_environment_vars),
            },
            sealed_connection_info: None,
            sealed_environment_vars: None,
        }
    }
}

impl From<SealedRow> for DeploymentRow {
    fn from(r: SealedRow) -> DeploymentRow {
        DeploymentRow {
            sealed_connection_info: r.sealed_connection_info,
            sealed_environment_vars: r.sealed_environment_vars,
            ..DeploymentRow::from(r.masked)
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
