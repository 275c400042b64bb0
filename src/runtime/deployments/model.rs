//! Deployments as the API shows them, their status machine, and their row
//! mapping. The types that can hold a secret do not implement `Debug`, so a
//! stray `{:?}` cannot log one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use uuid::Uuid;

use crate::config::SecretKeys;
use crate::runtime::secrets::Sealed;

/// What a secret looks like wherever it is not revealed.
pub const MASK: &str = "****";

crate::text_enum! {
    pub enum DeploymentStatus {
        /// Waiting for a build slot. `pending`, its former name, is read as
        /// `queued`.
        #[serde(alias = "pending")]
        Queued,
        Building,
        Deploying,
        Running,
        Stopped,
        Failed,
        Cancelled,
    }
}

crate::text_enum! {
    /// What started a deployment.
    pub enum DeploymentTrigger {
        /// A person, signed in.
        Manual,
        /// An API key (a person's or an agent's).
        Api,
        Webhook,
        PullRequest,
        Rollback,
        Redeploy,
    }
}

/// The one status a deployment is created in: a create may say `queued`
/// (or `pending`, its former name), and anything else is refused with how
/// to move a deployment on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum NewDeploymentStatus {
    Queued,
    Pending,
}

impl<'de> Deserialize<'de> for NewDeploymentStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let status = String::deserialize(deserializer)?;
        match status.as_str() {
            "queued" => Ok(NewDeploymentStatus::Queued),
            "pending" => Ok(NewDeploymentStatus::Pending),
            _ => Err(serde::de::Error::custom(format!(
                "a deployment starts as queued, not {status:?}; it moves to building when a build slot is free, \
                 and on with PATCH /api/deployments/{{id}}"
            ))),
        }
    }
}

impl DeploymentStatus {
    pub fn is_final(self) -> bool {
        matches!(self, DeploymentStatus::Stopped | DeploymentStatus::Failed | DeploymentStatus::Cancelled)
    }

    /// Whether it may be cancelled: it has not gone live yet.
    pub fn can_cancel(self) -> bool {
        matches!(self, DeploymentStatus::Queued | DeploymentStatus::Building | DeploymentStatus::Deploying)
    }

    /// Whether it may be deployed again.
    pub fn can_redeploy(self) -> bool {
        matches!(self, DeploymentStatus::Stopped | DeploymentStatus::Failed)
    }

    /// Position on the forward path; `failed` and `cancelled` are off it.
    fn step(self) -> Option<u8> {
        match self {
            DeploymentStatus::Queued => Some(0),
            DeploymentStatus::Building => Some(1),
            DeploymentStatus::Deploying => Some(2),
            DeploymentStatus::Running => Some(3),
            DeploymentStatus::Stopped => Some(4),
            DeploymentStatus::Failed | DeploymentStatus::Cancelled => None,
        }
    }

    /// Whether a deployment in `self` may move to `to`: forward along the
    /// path (skipping steps is fine, except that a queued deployment moves
    /// only to `building`, when it gets a build slot), to `failed` from any
    /// status that is not final, or to `cancelled` before it runs.
    pub fn can_move_to(self, to: DeploymentStatus) -> bool {
        if self.is_final() || self == to {
            return false;
        }
        match to {
            DeploymentStatus::Failed => return true,
            DeploymentStatus::Cancelled => return self.can_cancel(),
            _ => {}
        }
        match (self, self.step(), to.step()) {
            (DeploymentStatus::Queued, _, _) => to == DeploymentStatus::Building,
            (_, Some(from), Some(to)) => to > from,
            _ => false,
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
    #[schema(example = "3f786850e387550fdab836ed7e6dc881de23001b")]
    pub commit_sha: Option<String>,
    pub commit_message: Option<String>,
    #[schema(example = "main")]
    pub branch: Option<String>,
    pub trigger: DeploymentTrigger,
    /// Who created it, as the audit trail names actors: `user:<id>`,
    /// `user:<id> apikey:<id>`, `agent:<type> user:<id> apikey:<id>`.
    #[schema(example = "user:6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b")]
    pub triggered_by: String,
    /// When it got a build slot (moved to `building`, or past it).
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub started_at: Option<DateTime<Utc>>,
    /// When its rollout ended: it went `running`, or `stopped`, `failed` or
    /// `cancelled` before that.
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub finished_at: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
    /// For a rollback: the deployment it restores.
    pub rollback_of: Option<Uuid>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl crate::http::Versioned for Deployment {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

/// One deployment as `GET /api/deployments/{id}` answers it: its secrets
/// in full and its configuration snapshot (only here, not in lists).
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct DeploymentDetail {
    #[serde(flatten)]
    pub deployment: Deployment,
    /// `stored`; `none`: no snapshot (not a service's deployment, made
    /// before snapshots, or without `DEVX_SECRET_KEY`); `pruned` by
    /// retention (the digest stays).
    pub snapshot_state: super::snapshot::SnapshotState,
    /// What it was queued with: `service`, `source`, `env` (each variable's
    /// `value`, `"****"` for a secret, and its `secret`, `buildtime`,
    /// `runtime` flags), `resources`. `null` unless stored.
    #[schema(value_type = Option<Object>)]
    pub snapshot: Option<Value>,
    /// The sha256 hex of the snapshot's canonical JSON (kept when pruned).
    pub snapshot_digest: Option<String>,
    /// Changes from the previous deployment of the same service whose
    /// snapshot is stored; `null` when there is none (or no snapshot here).
    pub snapshot_diff: Option<Vec<super::snapshot::SnapshotChange>>,
}

impl crate::http::Versioned for DeploymentDetail {
    fn etag(&self) -> crate::http::ETag {
        self.deployment.etag()
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
     d.app_sandbox_id, d.public_url, d.db_sandbox_id, d.status, d.runtime_type, d.commit_sha, d.commit_message, \
     d.branch, d.trigger, d.triggered_by, d.started_at, d.finished_at, d.error_message, d.rollback_of, \
     d.created_at, d.updated_at, \
     d.db_connection_info IS NOT NULL AS has_connection_info, d.environment_vars IS NOT NULL AS has_environment_vars";

/// [`DEPLOYMENT_COLUMNS`] and the sealed secrets with their key ids (a
/// `SealedRow`).
pub const DEPLOYMENT_COLUMNS_SEALED: &str = "d.id, d.project_id, p.name AS project_name, p.owner_id, d.service_id, \
     d.app_sandbox_id, d.public_url, d.db_sandbox_id, d.status, d.runtime_type, d.commit_sha, d.commit_message, \
     d.branch, d.trigger, d.triggered_by, d.started_at, d.finished_at, d.error_message, d.rollback_of, \
     d.created_at, d.updated_at, \
     d.db_connection_info IS NOT NULL AS has_connection_info, d.environment_vars IS NOT NULL AS has_environment_vars, \
     d.db_connection_info AS sealed_connection_info, d.db_connection_info_key_id AS connection_info_key_id, \
     d.environment_vars AS sealed_environment_vars, d.environment_vars_key_id AS environment_vars_key_id";

/// A deployment as loaded: masked, with the sealed secrets when asked for.
pub struct DeploymentRow {
    pub deployment: Deployment,
    pub sealed_connection_info: Option<Sealed>,
    pub sealed_environment_vars: Option<Sealed>,
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
    commit_sha: Option<String>,
    commit_message: Option<String>,
    branch: Option<String>,
    trigger: DeploymentTrigger,
    triggered_by: String,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    error_message: Option<String>,
    rollback_of: Option<Uuid>,
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
    connection_info_key_id: Option<String>,
    sealed_environment_vars: Option<Vec<u8>>,
    environment_vars_key_id: Option<String>,
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
                commit_sha: r.commit_sha,
                commit_message: r.commit_message,
                branch: r.branch,
                trigger: r.trigger,
                triggered_by: r.triggered_by,
                started_at: r.started_at,
                finished_at: r.finished_at,
                error_message: r.error_message,
                rollback_of: r.rollback_of,
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
        // The key id is set exactly when the value is (a CHECK says so).
        let sealed = |bytes: Option<Vec<u8>>, key_id: Option<String>| {
            bytes.map(|bytes| Sealed { key_id: key_id.unwrap_or_else(|| SecretKeys::DEFAULT_ID.into()), bytes })
        };
        DeploymentRow {
            sealed_connection_info: sealed(r.sealed_connection_info, r.connection_info_key_id),
            sealed_environment_vars: sealed(r.sealed_environment_vars, r.environment_vars_key_id),
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

crate::text_enum! {
    #[derive(Default)]
    /// Which output a deploy log line came from: the build's or the app's
    /// `stdout` and `stderr`, or `system` (devx's or the builder's own).
    pub enum LogStream {
        #[default]
        Stdout,
        Stderr,
        System,
    }
}

/// One line of a deployment's log, its secret values masked.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct DeployLogLine {
    /// 1, 2, 3... in append order, without gaps.
    pub seq: i64,
    #[schema(value_type = LogStream)]
    pub stream: String,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub time: DateTime<Utc>,
    /// The text as stored: every value of the deployment's secrets (of 4
    /// characters or more) replaced by `****`.
    pub text: String,
}

impl crate::http::logs::Seq for DeployLogLine {
    fn seq(&self) -> i64 {
        self.seq
    }
}

/// Where an appended batch of deploy log lines landed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppendedDeployLogs {
    pub first_seq: i64,
    pub last_seq: i64,
    pub count: i64,
}

/// The values a deploy log line must not show: every string (or number)
/// in `environment_vars` and the `password` of `db_connection_info`, of at
/// least [`MIN_SECRET_CHARS`] characters, longest first (so that a value
/// containing another is masked whole).
pub fn secret_values(environment_vars: Option<&Value>, connection_info: Option<&Value>) -> Vec<String> {
    fn leaves(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|i| leaves(i, out)),
            Value::Object(map) => map.values().for_each(|i| leaves(i, out)),
            Value::Bool(_) | Value::Null => {}
        }
    }
    let mut out = Vec::new();
    if let Some(env) = environment_vars {
        leaves(env, &mut out);
    }
    if let Some(password) = connection_info.and_then(|c| c.get("password")) {
        leaves(password, &mut out);
    }
    normalize_secrets(out)
}

/// Values of at least [`MIN_SECRET_CHARS`] characters, longest first,
/// without repeats: the order [`mask_secrets`] needs.
pub fn normalize_secrets(mut out: Vec<String>) -> Vec<String> {
    out.retain(|s| s.chars().count() >= MIN_SECRET_CHARS);
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// Secret values shorter than this are not masked (they would mask
/// ordinary words).
pub const MIN_SECRET_CHARS: usize = 4;

/// `text` with every one of `secrets` replaced by [`MASK`].
pub fn mask_secrets(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_lines_mask_every_secret_value_of_four_characters_or_more() {
        let env = serde_json::json!({"API_TOKEN": "tok-123456", "PORT": 8080, "SHORT": "abc", "INNER": "tok-12"});
        let conn = serde_json::json!({"host": "db.local", "password": "hunter22"});
        let secrets = super::secret_values(Some(&env), Some(&conn));
        // Longest first: the longer value is masked whole, not around its prefix.
        assert_eq!(secrets, ["tok-123456", "hunter22", "tok-12", "8080"]);
        let masked = super::mask_secrets("token tok-123456 pw hunter22 on 8080 (abc) at db.local", &secrets);
        assert_eq!(masked, "token **** pw **** on **** (abc) at db.local");
    }

    use super::DeploymentStatus::{self, *};

    #[test]
    fn the_status_machine_moves_forward_or_fails() {
        assert!(Queued.can_move_to(Building), "when it gets a slot");
        assert!(!Queued.can_move_to(Running), "a queued deployment waits for its build slot");
        assert!(Building.can_move_to(Running), "steps may be skipped");
        assert!(Deploying.can_move_to(Running));
        assert!(Running.can_move_to(Stopped));
        assert!(Running.can_move_to(Failed));
        assert!(!Running.can_move_to(Building), "never backwards");
        assert!(!Stopped.can_move_to(Running), "stopped is final");
        assert!(!Failed.can_move_to(Queued), "failed is final");
        assert!(!Stopped.can_move_to(Failed));
        assert!(!Queued.can_move_to(Queued));
        assert_eq!(Deploying.next(), [Running, Stopped, Failed, Cancelled]);
        assert_eq!(Queued.next(), [Building, Failed, Cancelled]);
        assert!(Failed.next().is_empty());
        assert_eq!(DeploymentStatus::parse("running"), Some(Running));
    }

    #[test]
    fn only_a_deployment_that_has_not_gone_live_can_be_cancelled() {
        let cancellable: Vec<_> = DeploymentStatus::ALL.iter().copied().filter(|s| s.can_move_to(Cancelled)).collect();
        assert_eq!(cancellable, [Queued, Building, Deploying]);
        assert!(Cancelled.is_final() && Cancelled.next().is_empty());
        let redeployable: Vec<_> = DeploymentStatus::ALL.iter().copied().filter(|s| s.can_redeploy()).collect();
        assert_eq!(redeployable, [Stopped, Failed]);
    }
}
