//! What the admin API shows: settings, audit trail entries, system
//! statistics; and their row mapping.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::diagnostics::introspect::TableStats;
use crate::http::json_schema::AnyJson;

/// One runtime setting (`devx.system_config`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct ConfigEntry {
    #[schema(example = "retention.chat_messages")]
    pub key: String,
    /// Any JSON; retention periods are interval strings such as `"6 months"`.
    #[schema(value_type = AnyJson, example = json!("6 months"))]
    pub value: Value,
    pub description: Option<String>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl crate::http::Versioned for ConfigEntry {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

/// The columns a [`ConfigEntry`] is read from (the table is aliased `c`).
pub const CONFIG_COLUMNS: &str = "c.key, c.value, c.description, c.updated_at";

crate::text_enum! {
    pub enum AuditAction {
        Insert,
        Update,
        Delete,
    }
}

/// One change to an audited table, written by the database's audit trigger.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    /// The table, schema-qualified: `devx.users`, `devx.system_config`.
    #[schema(example = "devx.projects")]
    pub entity_type: String,
    /// The changed row's key (a UUID, or the key of a setting).
    pub entity_id: String,
    #[schema(value_type = String, example = "update")]
    pub action: String,
    /// Who: `user:<id>`, `user:<id> apikey:<id>`, an agent's key
    /// `agent:<type> user:<id> apikey:<id>`, `system:<job>` (e.g.
    /// `system:reaper`), or `db:<role>` for changes made outside devx.
    #[schema(example = "user:7f1c0c6e-2f4e-4a8b-9a51-1c7b1d2e3f40")]
    pub actor: String,
    /// Before the change (updates: only the changed columns); secrets redacted.
    #[schema(value_type = Option<Object>)]
    pub old_values: Option<Value>,
    /// After the change (updates: only the changed columns); secrets redacted.
    #[schema(value_type = Option<Object>)]
    pub new_values: Option<Value>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// The columns an [`AuditEntry`] is read from (`a` is `devx.audit_logs` or
/// the `devx.recent_activity` view).
pub const AUDIT_COLUMNS: &str =
    "a.id, a.entity_type, a.entity_id, a.action, a.actor, a.old_values, a.new_values, a.created_at";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct UserCounts {
    /// Every account, closed ones included.
    pub total: i64,
    /// Not deactivated and not closed.
    pub active: i64,
    pub admins: i64,
    /// Closed, waiting for the retention period before they are purged.
    pub closed: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DatabaseSize {
    pub name: String,
    /// `pg_database_size`.
    pub size_bytes: i64,
    #[schema(example = "48.2 MB")]
    pub size: String,
}

/// The state of the system at a glance.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SystemStats {
    pub users: UserCounts,
    /// Every status, with 0 for those no row has.
    pub projects_by_status: BTreeMap<String, i64>,
    pub containers_by_status: BTreeMap<String, i64>,
    pub deployments_by_status: BTreeMap<String, i64>,
    pub tasks_by_status: BTreeMap<String, i64>,
    pub database: DatabaseSize,
    /// The largest tables (with indexes and TOAST), largest first; row
    /// counts are PostgreSQL's estimates.
    pub largest_tables: Vec<TableStats>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub generated_at: DateTime<Utc>,
}

/// A periodic job inside `devx serve` and its shared schedule
/// (`devx.periodic_jobs`): how often it runs, how many periods were run
/// (each by exactly one process, whatever the number of processes), and the
/// last run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobStatus {
    #[schema(example = "retention")]
    pub job: String,
    /// Whether the job runs now (`retention.enabled`; the reaper always
    /// does). False for a job this version of devx does not run.
    pub enabled: bool,
    /// Its interval now, from its setting (`retention.interval`,
    /// `agents.reaper_interval_seconds`), in seconds; null when it does not
    /// run.
    #[schema(example = 3600.0)]
    pub interval_seconds: Option<f64>,
    /// Periods run so far, across every process.
    pub runs: i64,
    /// When the last run started (null before the first).
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub last_started_at: Option<DateTime<Utc>>,
    /// When the last run finished; null while it runs (or if its process
    /// stopped during it).
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub last_finished_at: Option<DateTime<Utc>>,
    /// The process that started the last run, as `hostname:pid`.
    #[schema(example = "web-1:4242")]
    pub last_process: Option<String>,
    /// Why the last run failed or did nothing (e.g. a run that outlasted
    /// its interval held the job's lock); null when it succeeded.
    pub last_error: Option<String>,
    /// When the next period begins: the last start plus the interval (null
    /// before the first run, or when the job does not run).
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub next_due_at: Option<DateTime<Utc>>,
}

/// The periodic jobs, by name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobStatus>,
}
