//! Secrets at rest. Deployment connection info, environment variables
//! (deployments' and `env_vars` values), configuration snapshots and deploy
//! tokens' copies for webhook signatures are sealed with XChaCha20-Poly1305 (the RustCrypto `chacha20poly1305` crate)
//! under the first key of `DEVX_SECRET_KEY`, a fresh random 192-bit nonce per
//! value, and stored as `nonce || ciphertext+tag` in a `bytea` column, with
//! the id of the key beside it (its own column). The associated data names
//! the table, column and row (`devx.deployments.environment_vars:<id>`), so a
//! sealed value copied into another row or column does not open.
//!
//! `DEVX_SECRET_KEY` may list several keys (`id:key,id:key`): a value opens
//! with the key its id names, so a new key can be put first while the old
//! ones still unseal; [`rotate`] re-seals every value under the first key and
//! [`check`] says which values no configured key opens (`devx secrets
//! rotate`, `devx secrets check`). [`SEALED_COLUMNS`] lists every sealed
//! column, for both.
//!
//! Without a key nothing is lost or guessed: sealing or opening answers a 503
//! that says how to make one, and every route that does not touch a secret
//! keeps working. Plaintext never goes to a log: the error types carry no
//! value, and the API types holding secrets do not implement `Debug`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;

use crate::config::{SecretKey, SecretKeys};
use crate::http::ApiError;

mod queries;
mod rotate;

pub use rotate::{CheckReport, ColumnCheck, ColumnRotation, RotationReport, check, rotate};

pub const NONCE_LEN: usize = 24;

/// A sealed column: its table (in `devx`), the column, and the column that
/// holds the id of the key it is sealed under. The rows' key is `id`.
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    pub table: &'static str,
    pub column: &'static str,
    pub key_id_column: &'static str,
}

/// Every column devx seals: what `rotate` and `check` go through.
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn { table: "deployments", column: "db_connection_info", key_id_column: "db_connection_info_key_id" },
    SealedColumn { table: "deployments", column: "environment_vars", key_id_column: "environment_vars_key_id" },
    SealedColumn { table: "deployments", column: "snapshot_sealed", key_id_column: "snapshot_key_id" },
    SealedColumn { table: "env_vars", column: "value_sealed", key_id_column: "value_key_id" },
    SealedColumn { table: "service_deploy_tokens", column: "token_sealed", key_id_column: "token_sealed_key_id" },
];

/// A sealed value and the id of the key it is sealed under.
#[derive(Clone)]
pub struct Sealed {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

pub const MISSING_KEY: &str = "DEVX_SECRET_KEY is not set: generate one with `openssl rand -base64 32`, set it in the environment or .env, and restart devx";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("{MISSING_KEY}")]
    MissingKey,
    /// Wrong key, or the stored bytes were changed or moved.
    #[error(
        "a stored secret could not be decrypted with the configured DEVX_SECRET_KEY: the key was changed, or the stored value was altered"
    )]
    Undecryptable,
    /// Sealed under a key id that `DEVX_SECRET_KEY` does not list.
    #[error(
        "a stored secret is sealed under the key with id {0:?}, which DEVX_SECRET_KEY does not list: add it back (`{0}:<key>` after the first key) and run `devx secrets rotate`"
    )]
    UnknownKey(String),
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        if e != SecretError::MissingKey {
            tracing::error!("{e}");
        }
        ApiError::NotConfigured(e.to_string())
    }
}

/// Where a sealed value lives: bound into the ciphertext as associated data.
pub fn context(table: &str, column: &str, row: uuid::Uuid) -> String {
    format!("devx.{table}.{column}:{row}")
}

/// Encrypts `plaintext` for the place named by `context` under the first
/// key.
pub fn seal(keys: Option<&SecretKeys>, context: &str, plaintext: &[u8]) -> Result<Sealed, SecretError> {
    let (id, key) = keys.ok_or(SecretError::MissingKey)?.sealing();
    Ok(Sealed { key_id: id.to_string(), bytes: seal_with(key, context, plaintext)? })
}

/// Decrypts a value made by [`seal`] for the same `context`, with the key
/// named by its id.
pub fn open(keys: Option<&SecretKeys>, key_id: &str, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
    let keys = keys.ok_or(SecretError::MissingKey)?;
    let key = keys.get(key_id).ok_or_else(|| SecretError::UnknownKey(key_id.to_string()))?;
    open_with(key, context, sealed)
}

fn seal_with(key: &SecretKey, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, SecretError> {
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
        // Encryption fails only for inputs far beyond any request body.
        .map_err(|_| SecretError::Undecryptable)?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open_with(key: &SecretKey, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
    if sealed.len() < NONCE_LEN {
        return Err(SecretError::Undecryptable);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: context.as_bytes() })
        .map_err(|_| SecretError::Undecryptable)
}

/// Seals a JSON value.
pub fn seal_json(keys: Option<&SecretKeys>, context: &str, value: &serde_json::Value) -> Result<Sealed, SecretError> {
    let plain = serde_json::to_vec(value).unwrap_or_default();
    seal(keys, context, &plain)
}

/// Opens a JSON value sealed by [`seal_json`].
pub fn open_json(
    keys: Option<&SecretKeys>,
    key_id: &str,
    context: &str,
    sealed: &[u8],
) -> Result<serde_json::Value, SecretError> {
    let plain = open(keys, key_id, context, sealed)?;
    serde_json::from_slice(&plain).map_err(|_| SecretError::Undecryptable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKeys {
        SecretKeys::single(SecretKey::from_bytes([byte; 32]))
    }

    const PLACE: &str = "devx.deployments.environment_vars:1";

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_place() {
        let k = key(7);
        let a = seal(Some(&k), PLACE, b"DB_PASSWORD=hunter2").unwrap();
        let b = seal(Some(&k), PLACE, b"DB_PASSWORD=hunter2").unwrap();
        assert_eq!(a.key_id, "default");
        assert_ne!(a.bytes, b.bytes, "a fresh nonce each time");
        assert!(!a.bytes.windows(7).any(|w| w == b"hunter2"));
        let open_as = |keys: &SecretKeys, place: &str, bytes: &[u8]| open(Some(keys), "default", place, bytes);
        assert_eq!(open_as(&k, PLACE, &a.bytes).unwrap(), b"DB_PASSWORD=hunter2");
        assert_eq!(open_as(&key(8), PLACE, &a.bytes), Err(SecretError::Undecryptable));
        assert_eq!(open_as(&k, "devx.deployments.environment_vars:2", &a.bytes), Err(SecretError::Undecryptable));
        let mut tampered = a.bytes.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(open_as(&k, PLACE, &tampered), Err(SecretError::Undecryptable));
        assert_eq!(open_as(&k, "x", &a.bytes[..10]), Err(SecretError::Undecryptable));
    }

    #[test]
    fn the_first_key_seals_and_each_id_opens_its_own_values() {
        let a = SecretKey::from_bytes([1; 32]);
        let b = SecretKey::from_bytes([2; 32]);
        let old = SecretKeys::new(vec![("a".into(), a.clone())]).unwrap();
        let both = SecretKeys::new(vec![("b".into(), b.clone()), ("a".into(), a)]).unwrap();
        let only_b = SecretKeys::new(vec![("b".into(), b)]).unwrap();
        let under_a = seal(Some(&old), PLACE, b"v").unwrap();
        assert_eq!(under_a.key_id, "a");
        assert_eq!(open(Some(&both), "a", PLACE, &under_a.bytes).unwrap(), b"v");
        let under_b = seal(Some(&both), PLACE, b"v").unwrap();
        assert_eq!(under_b.key_id, "b", "the first key seals");
        assert_eq!(open(Some(&only_b), "b", PLACE, &under_b.bytes).unwrap(), b"v");
        let gone = open(Some(&only_b), "a", PLACE, &under_a.bytes).unwrap_err();
        assert_eq!(gone, SecretError::UnknownKey("a".into()));
        assert!(gone.to_string().contains("`a:<key>`"), "{gone}");
        assert_eq!(ApiError::from(gone).status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(SecretKeys::new(vec![]).is_none());
    }

    #[test]
    fn no_key_is_a_clear_error() {
        assert!(matches!(seal(None, "x", b"v"), Err(SecretError::MissingKey)));
        let e = ApiError::from(SecretError::MissingKey);
        assert_eq!(e.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.problem().detail.contains("openssl rand -base64 32"));
    }

    #[test]
    fn json_round_trips() {
        let k = key(1);
        let v = serde_json::json!({"host": "db", "password": "s3cret"});
        let sealed = seal_json(Some(&k), "c", &v).unwrap();
        assert_eq!(open_json(Some(&k), &sealed.key_id, "c", &sealed.bytes).unwrap(), v);
    }
}
