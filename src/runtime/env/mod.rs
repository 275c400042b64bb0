//! Environment variables, one row each (`devx.env_vars`), owned by a project
//! or a service: the key, the value sealed like every other secret at rest
//! (`runtime::secrets`, associated data `devx.env_vars.value_sealed:<id>`),
//! and whether it is secret (write-only: answered masked, never in plain),
//! used at build time, at run time, or only by preview deployments (an
//! override of the same key).
//!
//! This module owns the rows, their routes (`/api/{projects|services}/{id}/env`,
//! `/api/services/{id}/effective-env`), the resolution of a deployment's
//! effective set (project, then service, then the preview overrides of each
//! when it is a preview: a later one wins), the secret values a deploy log
//! line must not show, the view the services API answers as its
//! `environment_vars`, and the move of the legacy plaintext
//! `services.environment_vars` into rows (`legacy`, at `devx serve` start and
//! before `devx secrets rotate`: SQL cannot seal, the key is the app's).

pub mod legacy;
pub mod model;
mod queries;
mod routes;

use std::collections::BTreeMap;

use serde_json::Value;
use uuid::Uuid;

pub use model::{EffectiveVar, EnvVar, Purpose, Source};
pub use routes::routes;

use crate::config::SecretKeys;
use crate::db::Queryable;
use crate::http::ApiError;
use crate::runtime::secrets::{self, Sealed, SecretError};

/// Where a value is sealed: bound into its ciphertext.
pub const TABLE: &str = "env_vars";
pub const COLUMN: &str = "value_sealed";
/// Longest key, as the table's CHECK says.
pub const MAX_KEY: usize = 255;
/// Longest value, in characters.
pub const MAX_VALUE: usize = 64 * 1024;
/// What a secret value is answered as.
pub const MASK: &str = "****";

/// Who owns a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Project(Uuid),
    Service(Uuid),
}

impl Owner {
    /// The column that names the owner (never from input).
    fn column(self) -> &'static str {
        match self {
            Owner::Project(_) => "project_id",
            Owner::Service(_) => "service_id",
        }
    }

    fn id(self) -> Uuid {
        match self {
            Owner::Project(id) | Owner::Service(id) => id,
        }
    }
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`, at most 255 characters (the table's CHECK).
pub fn key_ok(key: &str) -> bool {
    key.len() <= MAX_KEY
        && key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// OpenAPI for a map of variables by name (the services API's
/// `environment_vars`): an object whose property names follow [`key_ok`].
pub fn env_map_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Za-z_][A-Za-z0-9_]*$"))
        .max_length(Some(MAX_KEY));
    ObjectBuilder::new().schema_type(Type::Object).property_names(Some(name)).build()
}

pub const KEY_RULE: &str =
    "must be letters, digits and _, not starting with a digit, at most 255 characters (e.g. DATABASE_URL)";

/// Names whose values the services API and the legacy move treat as
/// secret when nothing else says (passwords, tokens, keys, URLs that may
/// carry a password).
pub fn looks_secret(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "KEY", "URL", "CREDENTIAL", "PRIVATE"].iter().any(|s| upper.contains(s))
}

pub(crate) fn seal_value(keys: Option<&SecretKeys>, id: Uuid, value: &str) -> Result<Sealed, SecretError> {
    secrets::seal(keys, &secrets::context(TABLE, COLUMN, id), value.as_bytes())
}

pub(crate) fn open_value(keys: Option<&SecretKeys>, row: &queries::EnvRow) -> Result<String, SecretError> {
    let plain = secrets::open(keys, &row.value_key_id, &secrets::context(TABLE, COLUMN, row.id), &row.value_sealed)?;
    String::from_utf8(plain).map_err(|_| SecretError::Undecryptable)
}

/// A row as the API answers it: a secret's value is never opened.
fn view(keys: Option<&SecretKeys>, row: &queries::EnvRow) -> Result<EnvVar, ApiError> {
    let value = if row.is_secret { None } else { Some(open_value(keys, row)?) };
    Ok(EnvVar {
        key: row.key.clone(),
        value,
        masked: row.is_secret.then(|| MASK.to_string()),
        is_secret: row.is_secret,
        is_buildtime: row.is_buildtime,
        is_runtime: row.is_runtime,
        is_preview: row.is_preview,
        created_at: row.created_at,
        updated_at: row.updated_at,
        updated_by: row.updated_by.clone(),
    })
}

/// The effective set of a service (and its project, if any) for `purpose`:
/// project, then service, then with `preview` the project's and then the
/// service's preview overrides; a later one wins. By key.
pub async fn effective(
    db: &impl Queryable,
    keys: Option<&SecretKeys>,
    project_id: Option<Uuid>,
    service_id: Uuid,
    purpose: Purpose,
    preview: bool,
) -> Result<Vec<EffectiveVar>, ApiError> {
    let mut layers = Vec::new();
    let project_rows = match project_id {
        Some(p) => queries::list(db, Owner::Project(p)).await?,
        None => Vec::new(),
    };
    let service_rows = queries::list(db, Owner::Service(service_id)).await?;
    for want_preview in [false, true] {
        if want_preview && !preview {
            break;
        }
        for (source, rows) in [(Source::Project, &project_rows), (Source::Service, &service_rows)] {
            for row in rows.iter().filter(|r| r.is_preview == want_preview) {
                let used = match purpose {
                    Purpose::Build => row.is_buildtime,
                    Purpose::Runtime => row.is_runtime,
                };
                if used {
                    layers.push((source, row));
                }
            }
        }
    }
    let mut out: BTreeMap<String, EffectiveVar> = BTreeMap::new();
    for (source, row) in layers {
        let v = view(keys, row)?;
        out.insert(
            row.key.clone(),
            EffectiveVar {
                key: v.key,
                value: v.value,
                masked: v.masked,
                is_secret: row.is_secret,
                source,
                is_preview: row.is_preview,
                updated_at: row.updated_at,
            },
        );
    }
    Ok(out.into_values().collect())
}

/// One variable of a deployment's configuration snapshot, its value in
/// plain (the snapshot is sealed as a whole). No `Debug`: it holds a value.
pub struct SnapshotVar {
    pub value: String,
    pub is_secret: bool,
    pub is_buildtime: bool,
    pub is_runtime: bool,
}

/// The whole effective set a deployment is queued with, for build and run
/// time alike: the same layers as [`effective`], with every value opened
/// (secret ones too), by key.
pub async fn snapshot_set(
    db: &impl Queryable,
    keys: Option<&SecretKeys>,
    project_id: Option<Uuid>,
    service_id: Uuid,
    preview: bool,
) -> Result<BTreeMap<String, SnapshotVar>, ApiError> {
    let project_rows = match project_id {
        Some(p) => queries::list(db, Owner::Project(p)).await?,
        None => Vec::new(),
    };
    let service_rows = queries::list(db, Owner::Service(service_id)).await?;
    let mut out = BTreeMap::new();
    for want_preview in [false, true] {
        if want_preview && !preview {
            break;
        }
        for rows in [&project_rows, &service_rows] {
            for row in rows.iter().filter(|r| r.is_preview == want_preview) {
                let var = SnapshotVar {
                    value: open_value(keys, row)?,
                    is_secret: row.is_secret,
                    is_buildtime: row.is_buildtime,
                    is_runtime: row.is_runtime,
                };
                out.insert(row.key.clone(), var);
            }
        }
    }
    Ok(out)
}

/// Every secret value of a project and (if given) one of its services, in
/// any scope: what a deployment's log lines must not show. Opens only
/// secret rows, so without a key only an owner that has some is a 503.
pub async fn secret_values(
    db: &impl Queryable,
    keys: Option<&SecretKeys>,
    project_id: Uuid,
    service_id: Option<Uuid>,
) -> Result<Vec<String>, ApiError> {
    let mut rows = queries::list(db, Owner::Project(project_id)).await?;
    if let Some(s) = service_id {
        rows.extend(queries::list(db, Owner::Service(s)).await?);
    }
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| r.is_secret) {
        out.push(open_value(keys, row)?);
    }
    Ok(out)
}

/// What the services API answers as a service's `environment_vars`: its own
/// non-preview variables, secret ones as `"****"`.
pub async fn service_view(db: &impl Queryable, keys: Option<&SecretKeys>, service_id: Uuid) -> Result<Value, ApiError> {
    service_vars(db, service_id).await?.view(keys)
}

/// A service's variables as stored, read apart from [`ServiceVars::view`]
/// so that a read can send the statement with its others (one round trip).
pub struct ServiceVars(Vec<queries::EnvRow>);

/// The statement of [`service_view`].
pub async fn service_vars(db: &impl Queryable, service_id: Uuid) -> Result<ServiceVars, crate::db::DbError> {
    Ok(ServiceVars(queries::list(db, Owner::Service(service_id)).await?))
}

impl ServiceVars {
    /// The service's `environment_vars` as [`service_view`] answers them.
    pub fn view(&self, keys: Option<&SecretKeys>) -> Result<Value, ApiError> {
        let mut map = serde_json::Map::new();
        for row in self.0.iter().filter(|r| !r.is_preview) {
            let shown = if row.is_secret { MASK.to_string() } else { open_value(keys, row)? };
            map.insert(row.key.clone(), Value::String(shown));
        }
        Ok(Value::Object(map))
    }
}

/// [`service_view`] of each of `ids` (a page of services), in one query.
pub async fn service_views(
    db: &impl Queryable,
    keys: Option<&SecretKeys>,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, Value>, ApiError> {
    let mut out: std::collections::HashMap<Uuid, Value> =
        ids.iter().map(|id| (*id, Value::Object(serde_json::Map::new()))).collect();
    for r in queries::list_services(db, ids).await? {
        let shown = if r.row.is_secret { MASK.to_string() } else { open_value(keys, &r.row)? };
        if let Some(Value::Object(map)) = out.get_mut(&r.service_id) {
            map.insert(r.row.key.clone(), Value::String(shown));
        }
    }
    Ok(out)
}

/// A JSON value of the legacy `environment_vars` object as a variable's
/// text: a string as it is, anything else as its JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Checks a legacy-style `environment_vars` object's keys and values.
pub fn check_object(v: &mut crate::http::validate::Validator, field: &str, object: Option<&Value>) {
    let Some(Value::Object(map)) = object else { return };
    for (key, value) in map {
        v.check(key_ok(key), &format!("{field}.{key}"), KEY_RULE);
        let text = value_text(value);
        v.check(!text.contains('\0'), &format!("{field}.{key}"), "must not contain NUL characters");
    }
}

/// Replaces a service's non-preview variables with `object` (the services
/// API's `environment_vars`): keys not in it are deleted, the others set;
/// an existing variable keeps its flags, a new one is secret if its name
/// looks like a secret's. In the caller's transaction, the service locked.
pub async fn replace_service_vars(
    db: &impl Queryable,
    keys: Option<&SecretKeys>,
    service_id: Uuid,
    object: &Value,
    actor: &str,
) -> Result<(), ApiError> {
    let Value::Object(map) = object else { return Ok(()) };
    let owner = Owner::Service(service_id);
    let existing = queries::list(db, owner).await?;
    for row in existing.iter().filter(|r| !r.is_preview && !map.contains_key(&r.key)) {
        queries::delete(db, owner, &row.key, false).await?;
    }
    for (key, value) in map {
        let found = existing.iter().find(|r| !r.is_preview && &r.key == key);
        let flags = match found {
            Some(r) => Flags { is_secret: r.is_secret, is_buildtime: r.is_buildtime, is_runtime: r.is_runtime },
            None => Flags { is_secret: looks_secret(key), is_buildtime: true, is_runtime: true },
        };
        set(db, keys, owner, key, &value_text(value), flags, false, actor).await?;
    }
    Ok(())
}

/// A variable's flags as written.
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    pub is_secret: bool,
    pub is_buildtime: bool,
    pub is_runtime: bool,
}

/// Sets `key` of `owner` (its preview override with `preview`) to `value`:
/// the row is updated in place, sealed again under its own id, or created;
/// whether it was created. The caller holds the owner's row locked, so two
/// writers of one owner do not race.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn set(
    db: &impl Queryable,
    keys: Option<&SecretKeys>,
    owner: Owner,
    key: &str,
    value: &str,
    flags: Flags,
    preview: bool,
    actor: &str,
) -> Result<bool, ApiError> {
    match queries::find_id(db, owner, key, preview).await? {
        Some(id) => {
            let sealed = seal_value(keys, id, value)?;
            queries::update(db, id, &sealed, flags, actor).await?;
            Ok(false)
        }
        None => {
            let id = Uuid::new_v4();
            let sealed = seal_value(keys, id, value)?;
            queries::insert(db, id, owner, key, &sealed, flags, preview, actor).await?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_table_rule() {
        for ok in ["A", "_", "DATABASE_URL", "a1_b", &"K".repeat(255)] {
            assert!(key_ok(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A.B", "A B", "É", &"K".repeat(256)] {
            assert!(!key_ok(bad), "{bad}");
        }
    }

    #[test]
    fn secret_looking_names_and_legacy_values() {
        assert!(looks_secret("DB_PASSWORD") && looks_secret("stripe_key") && looks_secret("DATABASE_URL"));
        assert!(!looks_secret("NODE_ENV") && !looks_secret("PORT"));
        assert_eq!(value_text(&serde_json::json!("x")), "x");
        assert_eq!(value_text(&serde_json::json!(8080)), "8080");
        assert_eq!(value_text(&serde_json::json!({"a": true})), "{\"a\":true}");
    }

    #[test]
    fn a_value_opens_only_in_its_own_row() {
        let keys = SecretKeys::single(crate::config::SecretKey::from_bytes([3; 32]));
        let id = Uuid::new_v4();
        let sealed = seal_value(Some(&keys), id, "hunter22").unwrap();
        let row = |id| queries::EnvRow {
            id,
            key: "K".into(),
            value_sealed: sealed.bytes.clone(),
            value_key_id: sealed.key_id.clone(),
            is_secret: true,
            is_buildtime: true,
            is_runtime: true,
            is_preview: false,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            updated_by: None,
        };
        assert_eq!(open_value(Some(&keys), &row(id)).unwrap(), "hunter22");
        assert_eq!(open_value(Some(&keys), &row(Uuid::new_v4())).unwrap_err(), SecretError::Undecryptable);
        assert_eq!(open_value(None, &row(id)).unwrap_err(), SecretError::MissingKey);
        let shown = view(Some(&keys), &row(id)).ok().unwrap();
        assert!(shown.value.is_none() && shown.masked.as_deref() == Some(MASK), "a secret is never opened");
    }
}
