//! The settings devx itself reads, and how a new value for a setting is
//! checked before it is stored. Settings devx does not know may be added
//! (for tools around it), with a description; the `retention.` namespace is
//! closed, so that a misspelt period is refused instead of silently unused.

use serde_json::Value;

use crate::agents::settings as agents;
use crate::http::validate::Validator;
use crate::retention;
use crate::runtime::deployments::queries as deployments;
use crate::runtime::previews::queries as previews;

/// What a known setting's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A positive PostgreSQL interval as a JSON string (`"6 months"`); the
    /// database decides whether it is one.
    Period,
    /// A JSON integer in `min..=max`.
    Integer {
        min: i64,
        max: i64,
    },
    Bool,
    /// A JSON object from agent types to integers in `1..=max`.
    AgentTypeLimits {
        max: i64,
    },
    /// One of these JSON strings.
    OneOf(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct KnownSetting {
    pub key: &'static str,
    pub kind: Kind,
    /// Given to the row when it is created without one.
    pub description: &'static str,
}

pub const KNOWN: &[KnownSetting] = &[
    KnownSetting { key: "retention.chat_messages", kind: Kind::Period, description: "How long chat messages are kept" },
    KnownSetting {
        key: "retention.container_metadata",
        kind: Kind::Period,
        description: "How long records of stopped or deleted containers are kept",
    },
    KnownSetting {
        key: "retention.file_records",
        kind: Kind::Period,
        description: "How long records of deleted files are kept",
    },
    KnownSetting {
        key: "retention.user_data",
        kind: Kind::Period,
        description: "How long user data is kept (closed accounts are purged after this)",
    },
    KnownSetting {
        key: "retention.execution_logs",
        kind: Kind::Period,
        description: "How long task execution log lines are kept",
    },
    KnownSetting {
        key: "retention.deployment_logs",
        kind: Kind::Period,
        description: "How long deployment log lines are kept",
    },
    KnownSetting {
        key: "retention.activity_logs",
        kind: Kind::Period,
        description: "How long activity log rows (sign-ins, failures, lockouts...) are kept",
    },
    KnownSetting {
        key: "retention.error_logs",
        kind: Kind::Period,
        description: "How long error logs are kept, resolved or not",
    },
    KnownSetting { key: "retention.audit_logs", kind: Kind::Period, description: "How long audit trail rows are kept" },
    KnownSetting {
        key: "retention.sign_in_throttle",
        kind: Kind::Period,
        description: "How long failed sign-in counters are kept after the last failure",
    },
    KnownSetting {
        key: "retention.idempotency_keys",
        kind: Kind::Period,
        description: "How long idempotency keys and their stored answers are kept",
    },
    KnownSetting {
        key: "retention.webhook_deliveries",
        kind: Kind::Period,
        description: "How long deploy webhook deliveries (and their replay answers) are kept",
    },
    KnownSetting {
        key: retention::BATCH_SIZE_KEY,
        kind: Kind::Integer { min: 1, max: retention::MAX_BATCH_SIZE },
        description: "Rows deleted per retention batch",
    },
    KnownSetting {
        key: retention::INTERVAL_KEY,
        kind: Kind::Period,
        description: "How often the retention job inside devx serve runs",
    },
    KnownSetting {
        key: retention::ENABLED_KEY,
        kind: Kind::Bool,
        description: "Whether devx serve runs the retention job (devx retention run works either way)",
    },
    KnownSetting {
        key: retention::PARTITIONS_AHEAD_KEY,
        kind: Kind::Integer { min: 0, max: retention::MAX_PARTITIONS_AHEAD },
        description: "Partitions of each history table the retention run creates ahead of the current one (2 when unset)",
    },
    KnownSetting {
        key: retention::PARTITION_GRACE_KEY,
        kind: Kind::Period,
        description: "How long after its whole range expired a history partition is dropped (1 day when unset)",
    },
    KnownSetting {
        key: "retention.partition_interval.audit_logs",
        kind: Kind::OneOf(PARTITION_INTERVALS),
        description: "How long each partition of the audit trail covers: month (when unset) or day",
    },
    KnownSetting {
        key: "retention.partition_interval.execution_logs",
        kind: Kind::OneOf(PARTITION_INTERVALS),
        description: "How long each partition of execution log lines covers: month (when unset) or day",
    },
    KnownSetting {
        key: "retention.partition_interval.deployment_log_lines",
        kind: Kind::OneOf(PARTITION_INTERVALS),
        description: "How long each partition of deployment log lines covers: month (when unset) or day",
    },
    KnownSetting {
        key: "retention.partition_interval.activity_logs",
        kind: Kind::OneOf(PARTITION_INTERVALS),
        description: "How long each partition of the activity log covers: month (when unset) or day",
    },
    KnownSetting {
        key: "retention.partition_interval.error_logs",
        kind: Kind::OneOf(PARTITION_INTERVALS),
        description: "How long each partition of error logs covers: month (when unset) or day",
    },
    KnownSetting {
        key: "agents.max_concurrent_executions",
        kind: Kind::Integer { min: 1, max: 10_000 },
        description: "Task executions that may run at the same time",
    },
    KnownSetting {
        key: agents::PER_PROJECT_KEY,
        kind: Kind::Integer { min: 1, max: agents::LIMIT_MAX },
        description: "Task executions that may run at the same time in one project (no limit when unset)",
    },
    KnownSetting {
        key: agents::PER_AGENT_TYPE_KEY,
        kind: Kind::AgentTypeLimits { max: agents::LIMIT_MAX },
        description: "Task executions that may run at the same time per agent type, e.g. {\"claude-code\": 4}",
    },
    KnownSetting {
        key: "agents.execution_timeout_seconds",
        kind: Kind::Integer { min: 1, max: 31_536_000 },
        description: "A running task execution older than this is failed as timed out by the reaper",
    },
    KnownSetting {
        key: agents::LEASE_KEY,
        kind: Kind::Integer { min: agents::LEASE_MIN as i64, max: agents::LEASE_MAX as i64 },
        description: "Seconds an execution's lease lasts when its task sets none; heartbeats and log appends renew it",
    },
    KnownSetting {
        key: agents::MAX_ATTEMPTS_KEY,
        kind: Kind::Integer { min: agents::ATTEMPTS_MIN as i64, max: agents::ATTEMPTS_MAX as i64 },
        description: "Attempts a new task gets when it sets none",
    },
    KnownSetting {
        key: agents::BACKOFF_BASE_KEY,
        kind: Kind::Integer { min: 0, max: 86_400 },
        description: "Seconds a task waits after its first failed attempt; doubled after each further one",
    },
    KnownSetting {
        key: agents::BACKOFF_MAX_KEY,
        kind: Kind::Integer { min: 0, max: 604_800 },
        description: "The longest wait between a task's attempts, in seconds",
    },
    KnownSetting {
        key: agents::MAX_LOG_BYTES_KEY,
        kind: Kind::Integer { min: agents::LOG_BYTES_MIN, max: agents::LOG_BYTES_MAX },
        description: "Bytes of log messages one task execution may append; past it appends are refused (413)",
    },
    KnownSetting {
        key: agents::REAPER_INTERVAL_KEY,
        kind: Kind::Integer { min: 1, max: 3600 },
        description: "How often devx serve looks for executions whose lease expired or that ran too long",
    },
    KnownSetting {
        key: deployments::MAX_BUILDS_KEY,
        kind: Kind::Integer { min: 1, max: deployments::MAX_BUILDS_LIMIT },
        description: "Deployments that may build at the same time (10 when unset); the others wait as queued",
    },
    KnownSetting {
        key: deployments::MAX_BUILDS_PER_PROJECT_KEY,
        kind: Kind::Integer { min: 1, max: deployments::MAX_BUILDS_LIMIT },
        description: "Deployments of one project that may build at the same time (no limit when unset)",
    },
    KnownSetting {
        key: deployments::MAX_LOG_BYTES_KEY,
        kind: Kind::Integer { min: deployments::LOG_BYTES_MIN, max: deployments::LOG_BYTES_MAX },
        description: "Bytes of log text one deployment may hold (16 MiB when unset); past it appends are refused (413)",
    },
    KnownSetting {
        key: deployments::KEEP_SNAPSHOTS_KEY,
        kind: Kind::Integer { min: 1, max: deployments::KEEP_SNAPSHOTS_MAX },
        description: "Configuration snapshots kept per service (10 when unset); retention prunes older ones, never a running deployment's",
    },
    KnownSetting {
        key: previews::PER_SERVICE_KEY,
        kind: Kind::Integer { min: 1, max: previews::PER_SERVICE_MAX },
        description: "Live pull-request previews per service (5 when unset); opening one more expires the oldest",
    },
    KnownSetting {
        key: previews::TTL_HOURS_KEY,
        kind: Kind::Integer { min: 1, max: previews::TTL_HOURS_MAX },
        description: "Hours a pull-request preview lives after its last deployment (168 when unset)",
    },
    KnownSetting {
        key: "errors.max_recovery_attempts",
        kind: Kind::Integer { min: 0, max: 100 },
        description: "Automatic recovery attempts before an error needs a person",
    },
];

/// What `retention.partition_interval.<table>` may be (what
/// `devx.history_tables()` reads).
pub const PARTITION_INTERVALS: &[&str] = &["month", "day"];

/// A namespace in which only the known keys exist.
const CLOSED_NAMESPACES: &[&str] = &["retention."];

pub const KEY_MAX_LEN: usize = 200;
/// Serialized size of a setting's value.
pub const VALUE_MAX_BYTES: usize = 64 * 1024;
pub const DESCRIPTION_MAX_LEN: usize = 1000;

pub fn known(key: &str) -> Option<&'static KnownSetting> {
    KNOWN.iter().find(|k| k.key == key)
}

/// Checks the key's form (the database's `system_config_key_check`) and,
/// in a closed namespace, that devx knows it.
pub fn check_key(v: &mut Validator, key: &str) {
    let well_formed = key.len() <= KEY_MAX_LEN
        && !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    if !well_formed {
        return v.error(
            "key",
            format!(
                "must be dot-separated words of lowercase letters, digits and underscores, at most {KEY_MAX_LEN} characters (e.g. retention.chat_messages)"
            ),
        );
    }
    if known(key).is_none()
        && let Some(ns) = CLOSED_NAMESPACES.iter().find(|ns| key.starts_with(**ns))
    {
        let names: Vec<&str> = KNOWN.iter().filter(|k| k.key.starts_with(ns)).map(|k| k.key).collect();
        v.error("key", format!("is not a setting devx knows; the {ns}* settings are {}", names.join(", ")));
    }
}

/// Checks a value against what its setting needs. Returns the text of a
/// period, which the caller still has to have PostgreSQL read (see
/// `retention::queries::cutoff`).
pub fn check_value<'a>(v: &mut Validator, key: &str, value: &'a Value) -> Option<&'a str> {
    let Some(setting) = known(key) else {
        if value.is_null() {
            v.error("value", "must not be null");
        } else {
            v.json_value("value", value, VALUE_MAX_BYTES);
        }
        return None;
    };
    match setting.kind {
        Kind::Period => match value.as_str() {
            Some(text) if !text.trim().is_empty() && text.len() <= 100 && !text.contains('\0') => Some(text),
            _ => {
                v.error("value", "must be a period as a string, e.g. \"6 months\", \"90 days\" or \"1 year\"");
                None
            }
        },
        Kind::Integer { min, max } => {
            match value.as_i64() {
                Some(n) if (min..=max).contains(&n) => {}
                _ => v.error("value", format!("must be an integer from {min} to {max}")),
            }
            None
        }
        Kind::Bool => {
            v.check(value.is_boolean(), "value", "must be true or false");
            None
        }
        Kind::AgentTypeLimits { max } => {
            let ok = value.as_object().is_some_and(|limits| {
                limits.iter().all(|(agent_type, limit)| {
                    crate::agents::is_agent_type(agent_type) && limit.as_i64().is_some_and(|n| (1..=max).contains(&n))
                })
            });
            v.check(
                ok,
                "value",
                format!("must be an object from agent types to integers from 1 to {max}, e.g. {{\"claude-code\": 4}}"),
            );
            None
        }
        Kind::OneOf(choices) => {
            let ok = value.as_str().is_some_and(|s| choices.contains(&s));
            let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
            v.check(ok, "value", format!("must be one of {}", quoted.join(", ")));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::http::ApiError;

    fn fields(v: Validator) -> Vec<String> {
        match v.finish() {
            Ok(()) => Vec::new(),
            Err(ApiError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn every_retention_period_is_a_known_setting() {
        for rule in retention::RULES {
            assert_eq!(known(rule.setting).map(|k| k.kind), Some(Kind::Period), "{}", rule.setting);
        }
    }

    #[test]
    fn every_history_table_has_a_partition_interval_setting() {
        for table in retention::HISTORY_TABLES {
            let key = retention::partition_interval_key(table);
            assert_eq!(known(&key).map(|k| k.kind), Some(Kind::OneOf(PARTITION_INTERVALS)), "{key}");
        }
    }

    #[test]
    fn keys_are_checked_for_form_and_closed_namespaces() {
        for good in ["retention.chat_messages", "ui.theme", "a", "feature_x.rollout_2"] {
            let mut v = Validator::new();
            check_key(&mut v, good);
            assert!(fields(v).is_empty(), "{good}");
        }
        for bad in ["", "Retention.x", "a..b", ".a", "a.", "a-b", "retention.chat_mesages"] {
            let mut v = Validator::new();
            check_key(&mut v, bad);
            assert_eq!(fields(v), ["key"], "{bad}");
        }
    }

    #[test]
    fn values_are_checked_per_kind() {
        let cases = [
            ("retention.batch_size", json!(500), true),
            ("retention.batch_size", json!(-1), false),
            ("retention.batch_size", json!(0), false),
            ("retention.batch_size", json!(100_001), false),
            ("retention.batch_size", json!("10"), false),
            ("retention.batch_size", json!(1.5), false),
            ("retention.enabled", json!(false), true),
            ("retention.enabled", json!("yes"), false),
            ("retention.chat_messages", json!("3 months"), true),
            ("retention.chat_messages", json!(90), false),
            ("retention.chat_messages", json!(""), false),
            ("some.tool_setting", json!({"any": ["json"]}), true),
            ("some.tool_setting", json!(null), false),
            ("agents.max_concurrent_executions_per_agent_type", json!({"claude-code": 4}), true),
            ("agents.max_concurrent_executions_per_agent_type", json!({}), true),
            ("agents.max_concurrent_executions_per_agent_type", json!({"Claude": 4}), false),
            ("agents.max_concurrent_executions_per_agent_type", json!({"claude-code": 0}), false),
            ("agents.max_concurrent_executions_per_agent_type", json!([4]), false),
            ("agents.retry_backoff_base_seconds", json!(0), true),
            ("retention.partition_interval.audit_logs", json!("day"), true),
            ("retention.partition_interval.audit_logs", json!("week"), false),
            ("retention.partition_interval.audit_logs", json!(1), false),
            ("retention.partitions_ahead", json!(0), true),
            ("retention.partitions_ahead", json!(-1), false),
            ("retention.partition_grace", json!("2 days"), true),
        ];
        for (key, value, ok) in cases {
            let mut v = Validator::new();
            check_value(&mut v, key, &value);
            assert_eq!(fields(v).is_empty(), ok, "{key} = {value}");
        }
    }
}
