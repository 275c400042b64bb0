//! The SQL of idempotency keys: claim a key for a request, store the answer,
//! release a key whose request failed, and read what a key holds.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::db::{DbError, FromRow, Queryable};

/// How long a key holds its answer: a request with the same key after this
/// is a new request. Retention may prune the row sooner when
/// `retention.idempotency_keys` is set shorter.
pub const WINDOW: &str = "24 hours";

/// The request a claim is for.
pub struct Request<'a> {
    pub user_id: Uuid,
    pub key: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub hash: &'a [u8],
}

/// What a key held when another request had it.
#[derive(Debug, FromRow)]
pub struct Held {
    pub request_method: String,
    pub request_path: String,
    pub request_hash: Vec<u8>,
    pub response_status: Option<i16>,
    pub response_headers: Option<Value>,
    pub response_body: Option<Vec<u8>>,
}

/// Takes the key for `r`, leased for `lease`: `true` when this request now
/// holds it (the key was free, had expired, or was left running by a
/// process that is gone while its lease ran out, for the same request).
/// `false`: another request holds it or has answered it; see [`held`].
pub async fn claim(db: &impl Queryable, r: &Request<'_>, lease: Duration) -> Result<bool, DbError> {
    let sql = format!(
        "INSERT INTO devx.idempotency_keys AS k (user_id, key, request_method, request_path, request_hash, locked_until)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
         ON CONFLICT (user_id, key) DO UPDATE
            SET request_method = excluded.request_method, request_path = excluded.request_path,
                request_hash = excluded.request_hash, locked_until = excluded.locked_until,
                response_status = NULL, response_headers = NULL, response_body = NULL,
                created_at = now(), completed_at = NULL
          WHERE k.created_at < now() - interval '{WINDOW}'
             OR (k.completed_at IS NULL AND k.locked_until < now() AND k.request_hash = excluded.request_hash)
         RETURNING k.created_at"
    );
    let lease = lease.as_secs_f64();
    let rows = db.query(&sql, &[&r.user_id, &r.key, &r.method, &r.path, &r.hash, &lease]).await?;
    Ok(!rows.is_empty())
}

/// What the key holds now, if it is still there (and not expired).
pub async fn held(db: &impl Queryable, user_id: Uuid, key: &str) -> Result<Option<Held>, DbError> {
    let sql = format!(
        "SELECT request_method, request_path, request_hash, response_status, response_headers, response_body
           FROM devx.idempotency_keys
          WHERE user_id = $1 AND key = $2 AND created_at >= now() - interval '{WINDOW}'"
    );
    db.query_opt_as(&sql, &[&user_id, &key]).await
}

/// Stores the answer of the request holding the key.
pub async fn complete(
    db: &impl Queryable,
    r: &Request<'_>,
    status: i16,
    headers: &Value,
    body: &[u8],
) -> Result<bool, DbError> {
    let n = db
        .execute(
            "UPDATE devx.idempotency_keys
                SET response_status = $4, response_headers = $5, response_body = $6,
                    completed_at = now(), locked_until = NULL
              WHERE user_id = $1 AND key = $2 AND request_hash = $3 AND completed_at IS NULL",
            &[&r.user_id, &r.key, &r.hash, &status, headers, &body],
        )
        .await?;
    Ok(n == 1)
}

/// Frees the key of a request that failed without an answer worth keeping
/// (a server error), so that a retry runs it again.
pub async fn release(db: &impl Queryable, r: &Request<'_>) -> Result<(), DbError> {
    db.execute(
        "DELETE FROM devx.idempotency_keys
          WHERE user_id = $1 AND key = $2 AND request_hash = $3 AND completed_at IS NULL",
        &[&r.user_id, &r.key, &r.hash],
    )
    .await?;
    Ok(())
}
