//! The `agents.*` settings as the runtime reads them (one query, every key),
//! with their defaults, and the pure rules they feed: the lease of an
//! execution and the backoff before a failed task's next attempt.
//!
//! A stored value the admin API would refuse (written by hand in SQL) reads
//! as the default, so a bad row cannot stop claims or the reaper.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::db::{DbError, Queryable};

pub const MAX_CONCURRENT_KEY: &str = "agents.max_concurrent_executions";
pub const PER_PROJECT_KEY: &str = "agents.max_concurrent_executions_per_project";
pub const PER_AGENT_TYPE_KEY: &str = "agents.max_concurrent_executions_per_agent_type";
pub const TIMEOUT_KEY: &str = "agents.execution_timeout_seconds";
pub const LEASE_KEY: &str = "agents.lease_seconds";
pub const MAX_ATTEMPTS_KEY: &str = "agents.max_attempts";
pub const BACKOFF_BASE_KEY: &str = "agents.retry_backoff_base_seconds";
pub const BACKOFF_MAX_KEY: &str = "agents.retry_backoff_max_seconds";
pub const REAPER_INTERVAL_KEY: &str = "agents.reaper_interval_seconds";
pub const MAX_LOG_BYTES_KEY: &str = "agents.max_log_bytes";

/// The bounds of `agents.max_log_bytes`: 1 KiB to 1 GiB.
pub const LOG_BYTES_MIN: i64 = 1024;
pub const LOG_BYTES_MAX: i64 = 1 << 30;

/// The bounds of a lease, for a task's `lease_seconds` and the setting.
pub const LEASE_MIN: i32 = 1;
pub const LEASE_MAX: i32 = 3600;
/// The bounds of a task's `max_attempts` and of the setting.
pub const ATTEMPTS_MIN: i32 = 1;
pub const ATTEMPTS_MAX: i32 = 100;
/// The largest concurrency limit, global, per project or per agent type.
pub const LIMIT_MAX: i64 = 10_000;

/// The `agents.*` settings, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    /// Running executions in all (the claim answers 204 at the limit).
    pub max_concurrent: i64,
    /// Running executions per project; `None`: no limit.
    pub max_per_project: Option<i64>,
    /// Running executions per agent type, for the types listed.
    pub max_per_agent_type: HashMap<String, i64>,
    /// A running execution older than this is failed as `timed_out`.
    pub execution_timeout_seconds: i64,
    /// The lease of an execution whose task sets none.
    pub lease_seconds: i32,
    /// The attempts of a new task that sets none.
    pub max_attempts: i32,
    /// The backoff after the first failed attempt; it doubles after each.
    pub backoff_base_seconds: i64,
    /// The longest backoff.
    pub backoff_max_seconds: i64,
    /// How often the reaper inside `serve` looks for lost executions.
    pub reaper_interval_seconds: i64,
    /// Bytes of log messages one execution may append.
    pub max_log_bytes: i64,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            max_concurrent: 10,
            max_per_project: None,
            max_per_agent_type: HashMap::new(),
            execution_timeout_seconds: 3600,
            lease_seconds: 60,
            max_attempts: 3,
            backoff_base_seconds: 10,
            backoff_max_seconds: 3600,
            reaper_interval_seconds: 10,
            max_log_bytes: 16 << 20,
        }
    }
}

fn int(values: &HashMap<String, Value>, key: &str, min: i64, max: i64) -> Option<i64> {
    values.get(key).and_then(Value::as_i64).filter(|n| (min..=max).contains(n))
}

impl AgentSettings {
    /// The settings from stored `key -> value` pairs.
    pub fn from_values(values: &HashMap<String, Value>) -> AgentSettings {
        let d = AgentSettings::default();
        let narrow = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        AgentSettings {
            max_concurrent: int(values, MAX_CONCURRENT_KEY, 1, LIMIT_MAX).unwrap_or(d.max_concurrent),
            max_per_project: int(values, PER_PROJECT_KEY, 1, LIMIT_MAX),
            max_per_agent_type: values
                .get(PER_AGENT_TYPE_KEY)
                .and_then(Value::as_object)
                .map(|limits| {
                    limits
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_i64().filter(|n| (1..=LIMIT_MAX).contains(n))?)))
                        .collect()
                })
                .unwrap_or_default(),
            execution_timeout_seconds: int(values, TIMEOUT_KEY, 1, 31_536_000).unwrap_or(d.execution_timeout_seconds),
            lease_seconds: int(values, LEASE_KEY, LEASE_MIN.into(), LEASE_MAX.into()).map_or(d.lease_seconds, narrow),
            max_attempts: int(values, MAX_ATTEMPTS_KEY, ATTEMPTS_MIN.into(), ATTEMPTS_MAX.into())
                .map_or(d.max_attempts, narrow),
            backoff_base_seconds: int(values, BACKOFF_BASE_KEY, 0, 86_400).unwrap_or(d.backoff_base_seconds),
            backoff_max_seconds: int(values, BACKOFF_MAX_KEY, 0, 604_800).unwrap_or(d.backoff_max_seconds),
            reaper_interval_seconds: int(values, REAPER_INTERVAL_KEY, 1, 3600).unwrap_or(d.reaper_interval_seconds),
            max_log_bytes: int(values, MAX_LOG_BYTES_KEY, LOG_BYTES_MIN, LOG_BYTES_MAX).unwrap_or(d.max_log_bytes),
        }
    }

    /// Reads every `agents.*` setting.
    pub async fn load(db: &impl Queryable) -> Result<AgentSettings, DbError> {
        let rows = db.query("SELECT key, value FROM devx.system_config WHERE key LIKE 'agents.%'", &[]).await?;
        let mut values = HashMap::with_capacity(rows.len());
        for row in &rows {
            values.insert(crate::db::row::column::<String>(row, "key")?, crate::db::row::column(row, "value")?);
        }
        Ok(AgentSettings::from_values(&values))
    }

    /// The limit on running executions of one agent type, if any.
    pub fn agent_type_limit(&self, agent_type: &str) -> Option<i64> {
        self.max_per_agent_type.get(agent_type).copied()
    }

    /// How long a task waits after its `attempt`-th attempt failed:
    /// `base * 2^(attempt - 1)`, at most the maximum, then scaled by
    /// `jitter` in `[0, 1)` into its upper half ("equal jitter"), so that
    /// tasks failed together do not all come back at once.
    pub fn backoff(&self, attempt: i32, jitter: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).clamp(0, 40);
        let base = self.backoff_base_seconds.max(0) as f64;
        let max = self.backoff_max_seconds.max(0) as f64;
        let full = (base * 2f64.powi(doublings)).min(max);
        Duration::from_secs_f64(full * (0.5 + 0.5 * jitter.clamp(0.0, 1.0)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn missing_or_bad_values_read_as_the_defaults() {
        let d = AgentSettings::default();
        assert_eq!(AgentSettings::from_values(&HashMap::new()), d);
        let values: HashMap<String, Value> = [
            (MAX_CONCURRENT_KEY, json!(0)),
            (LEASE_KEY, json!("60")),
            (MAX_ATTEMPTS_KEY, json!(101)),
            (PER_PROJECT_KEY, json!(4)),
            (PER_AGENT_TYPE_KEY, json!({"claude-code": 2, "bad": 0, "worse": "3"})),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let s = AgentSettings::from_values(&values);
        assert_eq!((s.max_concurrent, s.lease_seconds, s.max_attempts), (10, 60, 3));
        assert_eq!(s.max_per_project, Some(4));
        assert_eq!(s.agent_type_limit("claude-code"), Some(2));
        assert_eq!(s.agent_type_limit("bad"), None);
        assert_eq!(s.agent_type_limit("worse"), None);
    }

    #[test]
    fn backoff_doubles_is_bounded_and_jittered_into_its_upper_half() {
        let s = AgentSettings { backoff_base_seconds: 10, backoff_max_seconds: 100, ..Default::default() };
        let secs = |attempt, jitter| s.backoff(attempt, jitter).as_secs_f64();
        assert_eq!(secs(1, 1.0), 10.0);
        assert_eq!(secs(2, 1.0), 20.0);
        assert_eq!(secs(3, 1.0), 40.0);
        assert_eq!(secs(5, 1.0), 100.0, "bounded by the maximum");
        assert_eq!(secs(100, 1.0), 100.0, "no overflow");
        assert_eq!(secs(1, 0.0), 5.0, "jitter keeps at least half");
        assert_eq!(secs(0, 1.0), 10.0);
        let zero = AgentSettings { backoff_base_seconds: 0, ..Default::default() };
        assert_eq!(zero.backoff(3, 0.7), Duration::ZERO, "a zero base retries at once");
    }
}
