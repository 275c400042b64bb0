//! The move of the legacy plaintext `services.environment_vars` objects into
//! sealed rows. SQL cannot seal (the key is the application's), so `devx
//! serve` runs it after migrating and `devx secrets rotate` before
//! re-sealing: in one transaction, under an advisory lock of its own, and
//! idempotent (a moved key leaves the object, so a second run finds
//! nothing). A key the table cannot hold (not an environment name) or one
//! the service already has a row for stays in the object: nothing is lost.

use serde_json::Value;

use super::{Flags, Owner, key_ok, looks_secret, queries, set, value_text};
use crate::config::SecretKeys;
use crate::db::Db;
use crate::http::ApiError;
use crate::runtime::secrets::SecretError;

/// The audit actor of the move when `devx serve` or `devx secrets rotate`
/// runs it.
pub const ACTOR: &str = "system:env";

/// What a move did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Moved {
    /// Variables now in rows.
    pub moved: u64,
    /// Variables left in the legacy objects (invalid names or taken keys).
    pub left: u64,
}

/// Moves every legacy value into `devx.env_vars`. Without a key and with
/// something to move, nothing changes and the error says how to make one.
pub async fn move_legacy(db: &Db, keys: Option<&SecretKeys>, actor: &str) -> Result<Moved, ApiError> {
    let mut client = db.client().await?;
    let tx = client.transaction_as(actor).await?;
    queries::lock_legacy(&tx).await?;
    let services = queries::legacy_services(&tx).await?;
    let mut done = Moved::default();
    if services.is_empty() {
        return Ok(done);
    }
    if keys.is_none() {
        return Err(SecretError::MissingKey.into());
    }
    for s in services {
        let Value::Object(map) = &s.environment_vars else { continue };
        let owner = Owner::Service(s.id);
        let mut left = serde_json::Map::new();
        for (key, value) in map {
            let text = value_text(value);
            if !key_ok(key) || text.contains('\0') || queries::find_id(&tx, owner, key, false).await?.is_some() {
                left.insert(key.clone(), value.clone());
                continue;
            }
            let flags = Flags { is_secret: looks_secret(key), is_buildtime: true, is_runtime: true };
            set(&tx, keys, owner, key, &text, flags, false, actor).await?;
            done.moved += 1;
        }
        done.left += left.len() as u64;
        if left.len() != map.len() {
            queries::set_legacy(&tx, s.id, &Value::Object(left)).await?;
        }
    }
    tx.commit().await?;
    Ok(done)
}
