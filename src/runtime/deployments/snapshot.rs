//! A deployment's configuration snapshot: what a service deployment was
//! queued with (the service's settings, the source, the effective env vars
//! with their flags, the resources), as canonical JSON sealed for its row
//! (`devx.deployments.snapshot_sealed:<id>`) beside the sha256 hex of the
//! plaintext. It is taken in `queue`'s transaction, copied (sealed again for
//! the new row) by a rollback, shown masked by the single GET with a diff
//! against the service's previous one, and pruned by retention beyond
//! `deploy.keep_snapshots` per service (the digest stays).
//!
//! Without `DEVX_SECRET_KEY` no snapshot is stored (the deployment still
//! goes ahead): the env values cannot be sealed, and a snapshot without
//! them could not be rolled back to.

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::model::{DeploymentTrigger, MASK};
use super::queries::{self, NewDeployment, SnapshotRow, StoredSnapshot};
use crate::config::SecretKeys;
use crate::db::Queryable;
use crate::http::{ApiError, ApiResult};
use crate::runtime::secrets;

const TABLE: &str = "deployments";
pub(super) const COLUMN: &str = "snapshot_sealed";

crate::text_enum! {
    /// Whether a deployment's snapshot is there: `stored`; `none` (not a
    /// service's deployment, made before snapshots, or made without
    /// `DEVX_SECRET_KEY`); `pruned` by retention (its digest stays).
    pub enum SnapshotState {
        Stored,
        None,
        Pruned,
    }
}

crate::text_enum! {
    pub enum ChangeKind {
        Added,
        Removed,
        Changed,
    }
}

/// One difference from the previous snapshot. A secret's value is `"****"`
/// when it was added or removed, and left out (both `null`) when it changed.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct SnapshotChange {
    /// Dot-separated, e.g. `env.API_KEY.value` or `service.port`.
    #[schema(example = "env.LOG_LEVEL.value")]
    pub path: String,
    pub change: ChangeKind,
    #[schema(schema_with = any_value)]
    pub before: Option<Value>,
    #[schema(schema_with = any_value)]
    pub after: Option<Value>,
}

/// Any JSON, `null` included: a leaf of the snapshot.
fn any_value() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(super::model::any_json())
        .description(Some("The leaf's value: any JSON; `null` when absent or a changed secret's."))
        .into()
}

/// `value` with every object's keys sorted, at every depth: the same
/// configuration always gives the same bytes, so the same digest.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&map[k]))).collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The sha256 hex of the canonical JSON text.
pub fn digest(value: &Value) -> String {
    let text = serde_json::to_vec(&canonical(value)).unwrap_or_default();
    hex::encode(Sha256::digest(&text))
}

fn context(id: Uuid) -> String {
    secrets::context(TABLE, COLUMN, id)
}

/// Seals a snapshot for deployment `id`.
pub fn seal(keys: Option<&SecretKeys>, id: Uuid, value: &Value) -> ApiResult<StoredSnapshot> {
    let value = canonical(value);
    let sealed = secrets::seal_json(keys, &context(id), &value)?;
    Ok(StoredSnapshot { sealed, digest: digest(&value) })
}

/// The stored snapshot of a row, opened; `None` if it has none.
pub fn open(keys: Option<&SecretKeys>, row: &SnapshotRow) -> ApiResult<Option<Value>> {
    match row.sealed() {
        None => Ok(None),
        Some(s) => Ok(Some(secrets::open_json(keys, &s.key_id, &context(row.id), &s.bytes)?)),
    }
}

pub fn state(row: &SnapshotRow) -> SnapshotState {
    match (&row.snapshot_sealed, &row.snapshot_digest) {
        (Some(_), _) => SnapshotState::Stored,
        (None, Some(_)) => SnapshotState::Pruned,
        (None, None) => SnapshotState::None,
    }
}

/// Builds and seals the snapshot of a deployment about to be queued, if it
/// belongs to a service and a key is set. A preview (pull request)
/// deployment gets the preview overrides.
pub async fn take(
    db: &impl Queryable,
    keys: Option<&SecretKeys>,
    n: &NewDeployment<'_>,
) -> ApiResult<Option<StoredSnapshot>> {
    let (Some(service_id), Some(_)) = (n.service_id, keys) else { return Ok(None) };
    let Some(service) = queries::service_settings(db, service_id).await? else { return Ok(None) };
    let preview = n.trigger == DeploymentTrigger::PullRequest;
    let vars = match crate::runtime::env::snapshot_set(db, keys, service.project_id, service_id, preview).await {
        Ok(vars) => vars,
        // A value no configured key opens: the deployment goes ahead without
        // a snapshot rather than failing a push or a preview.
        Err(ApiError::NotConfigured(why)) => {
            tracing::warn!(deployment = %n.id, "no configuration snapshot: {why}");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let env: Map<String, Value> = vars
        .into_iter()
        .map(|(k, v)| {
            let var =
                json!({"value": v.value, "secret": v.is_secret, "buildtime": v.is_buildtime, "runtime": v.is_runtime});
            (k, var)
        })
        .collect();
    let image = service.deployment_config.get("image").cloned().unwrap_or(Value::Null);
    let value = json!({
        "service": {
            "name": service.name,
            "slug": service.slug,
            "service_type": service.service_type,
            "port": service.port,
            "health_check_url": service.health_check_url,
            "deployment_config": service.deployment_config,
            "template": service.template_id,
        },
        "source": {"commit_sha": n.commit_sha, "branch": n.branch, "image": image},
        "env": env,
        "resources": service.resource_limits,
    });
    seal(keys, n.id, &value).map(Some)
}

/// Whether `env.<key>.value` of this snapshot is a secret's.
fn secret_at(snapshot: &Value, path: &[String]) -> bool {
    match path {
        [env, key, value] if env == "env" && value == "value" => {
            snapshot.pointer(&format!("/env/{}/secret", key.replace('~', "~0").replace('/', "~1")))
                == Some(&Value::Bool(true))
        }
        _ => false,
    }
}

/// The snapshot with every secret value replaced by `"****"`.
pub fn masked(snapshot: &Value) -> Value {
    let mut out = snapshot.clone();
    if let Some(Value::Object(env)) = out.get_mut("env") {
        for var in env.values_mut() {
            if var.get("secret") == Some(&Value::Bool(true))
                && let Some(v) = var.get_mut("value")
            {
                *v = Value::String(MASK.into());
            }
        }
    }
    out
}

/// Every leaf (a scalar or an array) by its path. An empty object has
/// none, so a first variable shows as added rather than as `env` changed.
fn leaves(v: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                path.push(k.clone());
                leaves(child, path, out);
                path.pop();
            }
        }
        other => out.push((path.clone(), other.clone())),
    }
}

/// What changed from `before` to `after`, in path order, secrets masked.
pub fn diff(before: &Value, after: &Value) -> Vec<SnapshotChange> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    leaves(before, &mut Vec::new(), &mut a);
    leaves(after, &mut Vec::new(), &mut b);
    let a: std::collections::BTreeMap<Vec<String>, Value> = a.into_iter().collect();
    let b: std::collections::BTreeMap<Vec<String>, Value> = b.into_iter().collect();
    let mut paths: Vec<&Vec<String>> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    let shown = |snapshot: &Value, path: &[String], v: &Value| {
        if secret_at(snapshot, path) { Value::String(MASK.into()) } else { v.clone() }
    };
    let mut out = Vec::new();
    for path in paths {
        let (old, new) = (a.get(path), b.get(path));
        let (change, before_v, after_v) = match (old, new) {
            (Some(x), Some(y)) if x == y => continue,
            (Some(_), Some(_)) if secret_at(before, path) || secret_at(after, path) => {
                (ChangeKind::Changed, None, None)
            }
            (Some(x), Some(y)) => (ChangeKind::Changed, Some(shown(before, path, x)), Some(shown(after, path, y))),
            (Some(x), None) => (ChangeKind::Removed, Some(shown(before, path, x)), None),
            (None, Some(y)) => (ChangeKind::Added, None, Some(shown(after, path, y))),
            (None, None) => continue,
        };
        out.push(SnapshotChange { path: path.join("."), change, before: before_v, after: after_v });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(token: &str, level: &str) -> Value {
        json!({"env": {
            "API_TOKEN": {"value": token, "secret": true, "buildtime": false, "runtime": true},
            "LOG_LEVEL": {"value": level, "secret": false, "buildtime": false, "runtime": true},
        }, "service": {"port": 8080}})
    }

    #[test]
    fn the_digest_does_not_depend_on_key_order() {
        let a = json!({"b": 1, "a": {"y": 2, "x": [3, {"q": 1, "p": 2}]}});
        let b = json!({"a": {"x": [3, {"p": 2, "q": 1}], "y": 2}, "b": 1});
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&json!({"b": 2})));
        assert_eq!(digest(&a).len(), 64);
    }

    #[test]
    fn a_diff_masks_secrets_and_hides_changed_ones() {
        let changes = diff(&snap("tok-old-1", "info"), &snap("tok-new-2", "debug"));
        let text = serde_json::to_string(&changes).unwrap();
        assert!(!text.contains("tok-"), "{text}");
        assert_eq!(changes.len(), 2, "{text}");
        assert_eq!(changes[0].path, "env.API_TOKEN.value");
        assert!(changes[0].before.is_none() && changes[0].after.is_none());
        assert_eq!(changes[1].path, "env.LOG_LEVEL.value");
        assert_eq!(changes[1].after, Some(json!("debug")));
        let mut removed = snap("tok-old-1", "info");
        removed["env"].as_object_mut().unwrap().remove("API_TOKEN");
        let changes = diff(&snap("tok-old-1", "info"), &removed);
        let text = serde_json::to_string(&changes).unwrap();
        assert!(!text.contains("tok-") && text.contains("removed"), "{text}");
        assert!(!serde_json::to_string(&masked(&snap("tok-old-1", "x"))).unwrap().contains("tok-"));
        let added = diff(&json!({"env": {}}), &json!({"env": {"A": {"value": "1"}}}));
        assert_eq!(added.len(), 1);
        assert_eq!((added[0].path.as_str(), added[0].change), ("env.A.value", ChangeKind::Added));
    }
}
