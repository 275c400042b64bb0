//! Secrets at rest. Deployment connection info and environment variables are
//! sealed with XChaCha20-Poly1305 (the RustCrypto `chacha20poly1305` crate)
//! under `DEVX_SECRET_KEY`, a fresh random 192-bit nonce per value, and stored
//! as `nonce || ciphertext+tag` in a `bytea` column. The associated data names
//! the table, column and row (`devx.deployments.environment_vars:<id>`), so a
//! sealed value copied into another row or column does not open.
//!
//! Without a key nothing is lost or guessed: sealing or opening answers a 503
//! that says how to make one, and every route that does not touch a secret
//! keeps working. Plaintext never goes to a log: the error types carry no
//! value, and the API types holding secrets do not implement `Debug`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;

use crate::config::SecretKey;
use crate::http::ApiError;

pub const NONCE_LEN: usize = 24;

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
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        if e == SecretError::Undecryptable {
            tracing::error!("{e}");
        }
        ApiError::NotConfigured(e.to_string())
    }
}

/// Where a sealed value lives: bound into the ciphertext as associated data.
pub fn context(table: &str, column: &str, row: uuid::Uuid) -> String {
    format!("devx.{table}.{column}:{row}")
}

/// Encrypts `plaintext` for the place named by `context`.
pub fn seal(key: Option<&SecretKey>, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, SecretError> {
    let key = key.ok_or(SecretError::MissingKey)?;
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

/// Decrypts a value made by [`seal`] for the same `context`.
pub fn open(key: Option<&SecretKey>, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
    let key = key.ok_or(SecretError::MissingKey)?;
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
pub fn seal_json(key: Option<&SecretKey>, context: &str, value: &serde_json::Value) -> Result<Vec<u8>, SecretError> {
    let plain = serde_json::to_vec(value).unwrap_or_default();
    seal(key, context, &plain)
}

/// Opens a JSON value sealed by [`seal_json`].
pub fn open_json(key: Option<&SecretKey>, context: &str, sealed: &[u8]) -> Result<serde_json::Value, SecretError> {
    let plain = open(key, context, sealed)?;
    serde_json::from_slice(&plain).map_err(|_| SecretError::Undecryptable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes([byte; 32])
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_place() {
        let k = key(7);
        let a = seal(Some(&k), "devx.deployments.environment_vars:1", b"DB_PASSWORD=hunter2").unwrap();
        let b = seal(Some(&k), "devx.deployments.environment_vars:1", b"DB_PASSWORD=hunter2").unwrap();
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(open(Some(&k), "devx.deployments.environment_vars:1", &a).unwrap(), b"DB_PASSWORD=hunter2");
        assert_eq!(open(Some(&key(8)), "devx.deployments.environment_vars:1", &a), Err(SecretError::Undecryptable));
        assert_eq!(open(Some(&k), "devx.deployments.environment_vars:2", &a), Err(SecretError::Undecryptable));
        let mut tampered = a.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(open(Some(&k), "devx.deployments.environment_vars:1", &tampered), Err(SecretError::Undecryptable));
        assert_eq!(open(Some(&k), "x", &a[..10]), Err(SecretError::Undecryptable));
    }

    #[test]
    fn no_key_is_a_clear_error() {
        assert_eq!(seal(None, "x", b"v"), Err(SecretError::MissingKey));
        let e = ApiError::from(SecretError::MissingKey);
        assert_eq!(e.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.problem().detail.contains("openssl rand -base64 32"));
    }

    #[test]
    fn json_round_trips() {
        let k = key(1);
        let v = serde_json::json!({"host": "db", "password": "s3cret"});
        let sealed = seal_json(Some(&k), "c", &v).unwrap();
        assert_eq!(open_json(Some(&k), "c", &sealed).unwrap(), v);
    }
}
