//! `Idempotency-Key` on the operations that create or start something: a
//! layer in front of their handlers that makes a retried POST safe.
//!
//! An operation takes a key when its OpenAPI entry declares the header
//! (`params(IdempotencyKey)`); [`KeyedRoutes`] reads them from the document,
//! as the scopes are read, so the declaration and the behaviour cannot drift.
//! On such a route, a POST with the header is handled here:
//!
//! - the caller is identified first (keys belong to the user behind the
//!   session or API key; a request that fails to authenticate is answered
//!   as it would be without the key), the body is read, and the request's
//!   fingerprint is the SHA-256 of its method, path, caller and body;
//! - the key is claimed in `devx.idempotency_keys` (one statement, so two
//!   concurrent requests cannot both win). A key held by another request
//!   answers for it: its stored answer again with `Idempotent-Replayed:
//!   true` when the fingerprint matches, 422 when it does not (the key was
//!   used for another request), 409 with `Retry-After` while the first one
//!   is still running (no waiting: the retry comes back for the answer);
//! - the request then runs to completion even if its client goes away (it
//!   is spawned, bounded by the request timeout), so a retry finds its
//!   answer; a failure that is known to have changed nothing (a broken
//!   connection before the commit, a serialization conflict) is retried
//!   once on a fresh connection, which writes without a key never are;
//! - an answer below 500 is stored with the headers that matter (content
//!   type, `Location`, `ETag`) for [`queries::WINDOW`]; a server error frees
//!   the key, so that the client's retry runs the request again.
//!
//! A request whose process dies between its commit and storing its answer
//! leaves the key running until its lease ends; a retry after that runs it
//! again. Everything else about it is exactly-once.

pub mod queries;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::RetrySafe;
use super::{ApiError, AppState};

/// The request header, as the OpenAPI document spells it.
pub const HEADER: &str = "Idempotency-Key";
/// Set to `true` on an answer replayed from a key.
pub const REPLAYED: &str = "idempotent-replayed";
/// Longest key, in characters.
const KEY_MAX: usize = 255;
/// How long past the request timeout a running request keeps its key
/// before a retry may take it over.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// The response headers stored with an answer and replayed with it.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

/// The `Idempotency-Key` header, for the `params(...)` of the operations that
/// take it.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// Makes a retry safe: 1 to 255 visible ASCII characters, unique per
    /// request (a UUID). For 24 hours, a request with the same key and the
    /// same body gets the first answer again, with `Idempotent-Replayed:
    /// true`, and creates nothing; the same key with another body is 422;
    /// while the first request is still running, 409 with `Retry-After`.
    /// Keys belong to the caller's account.
    #[param(rename = "Idempotency-Key", value_type = String, required = false, example = "8e03978e-40d5-43e8-bc93-6894a57f9324",
            pattern = r"^[ \t]*[!-~]{1,255}[ \t]*$")]
    pub idempotency_key: Option<String>,
}

/// The caller a key belongs to, resolved from the request as the handler's
/// own extractor would (and left in the request's extensions for it).
pub trait Caller: FromRequestParts<AppState, Rejection = ApiError> + Send {
    fn caller_id(&self) -> Uuid;
}

/// The operations (method and path template) that take a key.
#[derive(Debug, Clone, Default)]
pub struct KeyedRoutes(Arc<HashSet<(Method, String)>>);

impl KeyedRoutes {
    /// Every operation of the document whose parameters include the
    /// `Idempotency-Key` header.
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> KeyedRoutes {
        let doc = serde_json::to_value(doc).unwrap_or_default();
        let mut keyed = HashSet::new();
        for (path, item) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else { continue };
                let params = operation.get("parameters").and_then(Value::as_array).into_iter().flatten();
                if params.into_iter().any(|p| p["in"] == "header" && p["name"] == HEADER) {
                    keyed.insert((method, path.clone()));
                }
            }
        }
        KeyedRoutes(Arc::new(keyed))
    }

    pub fn takes_key(&self, method: &Method, path: &str) -> bool {
        self.0.contains(&(method.clone(), path.to_owned()))
    }

    /// Every keyed operation: method and path template.
    pub fn iter(&self) -> impl Iterator<Item = (&Method, &str)> {
        self.0.iter().map(|(m, p)| (m, p.as_str()))
    }
}

/// The layer: keyed requests on keyed routes go through the key; everything
/// else passes untouched.
pub async fn layer<C: Caller>(
    State((state, routes)): State<(AppState, KeyedRoutes)>,
    request: Request,
    next: Next,
) -> Response {
    let Some(raw) = request.headers().get(HEADER).cloned() else { return next.run(request).await };
    let keyed =
        request.extensions().get::<MatchedPath>().is_some_and(|p| routes.takes_key(request.method(), p.as_str()));
    if !keyed {
        return next.run(request).await;
    }
    keyed_request::<C>(state, request, next, &raw).await.unwrap_or_else(IntoResponse::into_response)
}

/// A claimed key and the request it is for, owned, for the spawned run.
struct Claim {
    state: AppState,
    user_id: Uuid,
    key: String,
    method: String,
    path: String,
    hash: Vec<u8>,
}

impl Claim {
    fn request(&self) -> queries::Request<'_> {
        queries::Request {
            user_id: self.user_id,
            key: &self.key,
            method: &self.method,
            path: &self.path,
            hash: &self.hash,
        }
    }
}

async fn keyed_request<C: Caller>(
    state: AppState,
    request: Request,
    next: Next,
    raw: &HeaderValue,
) -> Result<Response, ApiError> {
    let key = parse_key(raw)?;
    let (mut parts, body) = request.into_parts();
    let user_id = C::from_request_parts(&mut parts, &state).await?.caller_id();
    let body = Bytes::from_request(Request::from_parts(parts.clone(), body), &state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit: super::body_limit() }
        } else {
            ApiError::BadRequest(format!("could not read the request body: {}", e.body_text()))
        }
    })?;
    let path = parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), ToString::to_string);
    let claim = Claim {
        hash: fingerprint(parts.method.as_str(), &path, user_id, &body),
        method: parts.method.to_string(),
        path,
        key,
        user_id,
        state,
    };
    let lease = claim.state.config.http.request_timeout + LEASE_MARGIN;
    // Twice at most: a key that expires or is pruned between the claim and
    // the read is free for the second claim.
    for _ in 0..2 {
        let client = claim.state.db.client().await?;
        if queries::claim(&client, &claim.request(), lease).await? {
            let run = tokio::spawn(run_to_completion(claim, parts, body, next));
            return Ok(run.await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "a keyed request's run ended abnormally");
                ApiError::Internal("keyed request failed".into()).into_response()
            }));
        }
        if let Some(held) = queries::held(&client, user_id, &claim.key).await? {
            return answer_for(held, &claim);
        }
    }
    Err(ApiError::InProgress("the Idempotency-Key is changing hands; retry in a moment".into()))
}

/// 1 to 255 visible ASCII characters.
fn parse_key(raw: &HeaderValue) -> Result<String, ApiError> {
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=KEY_MAX).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(str::to_owned).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "the Idempotency-Key header must be 1 to {KEY_MAX} visible ASCII characters without spaces; \
             a new UUID per request is a good key"
        ))
    })
}

fn fingerprint(method: &str, path: &str, user_id: Uuid, body: &[u8]) -> Vec<u8> {
    let mut hash = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), user_id.as_bytes(), body] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().to_vec()
}

/// The answer for a request whose key another request holds.
fn answer_for(held: queries::Held, claim: &Claim) -> Result<Response, ApiError> {
    if held.request_hash != claim.hash {
        let same_route = held.request_method == claim.method && held.request_path == claim.path;
        let other = if same_route {
            "with another body".to_string()
        } else {
            format!("{} {}", held.request_method, held.request_path)
        };
        return Err(ApiError::IdempotencyKeyReused(format!(
            "this Idempotency-Key was already used for another request ({other}) in the last {}: \
             send a new key with a new request",
            queries::WINDOW
        )));
    }
    match (held.response_status, held.response_body) {
        (Some(status), Some(body)) => Ok(replay(status, held.response_headers.as_ref(), body)),
        _ => Err(ApiError::InProgress(
            "a request with this Idempotency-Key is still running; retry in a moment to get its answer".into(),
        )),
    }
}

fn replay(status: i16, headers: Option<&Value>, body: Vec<u8>) -> Response {
    let status = u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok());
    let mut response = (status.unwrap_or(StatusCode::OK), body).into_response();
    let stored = headers.and_then(Value::as_object).into_iter().flatten();
    for (name, value) in stored {
        if let (Ok(name), Some(Ok(value))) =
            (HeaderName::from_bytes(name.as_bytes()), value.as_str().map(HeaderValue::from_str))
        {
            response.headers_mut().insert(name, value);
        }
    }
    response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// Runs the claimed request (again once, if it failed without changing
/// anything) and settles the key with its answer.
async fn run_to_completion(claim: Claim, parts: Parts, body: Bytes, next: Next) -> Response {
    let limit = claim.state.config.http.request_timeout;
    let mut response = run_once(parts.clone(), body.clone(), next.clone(), limit).await;
    if response.extensions().get::<RetrySafe>().is_some() {
        tracing::info!(key = %claim.key, "retrying a keyed write on a fresh connection");
        // What broke this connection (a restart, a failover) broke its idle
        // siblings too.
        claim.state.db.forget_idle();
        response = run_once(parts, body, next, limit).await;
    }
    settle(&claim, response).await
}

/// One run of the handler, bounded by the request timeout; a panic is a 500.
async fn run_once(parts: Parts, body: Bytes, next: Next, limit: Duration) -> Response {
    let run = tokio::spawn(tokio::time::timeout(limit, next.run(Request::from_parts(parts, Body::from(body)))));
    match run.await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => ApiError::Timeout(limit.as_secs().max(1)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a keyed request's handler panicked");
            ApiError::Internal("handler panicked".into()).into_response()
        }
    }
}

/// Stores an answer below 500 with the key; frees the key after a server
/// error. Either way the client gets the answer.
async fn settle(claim: &Claim, response: Response) -> Response {
    let request = claim.request();
    if response.status().is_server_error() {
        if let Err(e) = release(claim).await {
            tracing::warn!(error = %e, key = %claim.key, "could not free an idempotency key after a failure");
        }
        return response;
    }
    let (head, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(e) => {
            let _ = release(claim).await;
            return ApiError::internal(format!("reading a keyed answer: {e}")).into_response();
        }
    };
    let headers: Map<String, Value> = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = head.headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), Value::String(value.to_owned())))
        })
        .collect();
    let status = i16::try_from(head.status.as_u16()).unwrap_or(i16::MAX);
    let stored = async {
        let client = claim.state.db.client().await?;
        queries::complete(&client, &request, status, &Value::Object(headers), &body).await
    };
    match stored.await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(key = %claim.key, "an idempotency key changed hands before its answer was stored"),
        // The client still gets its answer; a retry finds the key running
        // until its lease ends.
        Err(e) => tracing::warn!(error = %e, key = %claim.key, "could not store the answer of an idempotency key"),
    }
    Response::from_parts(head, Body::from(body))
}

async fn release(claim: &Claim) -> Result<(), crate::db::DbError> {
    let client = claim.state.db.client().await?;
    queries::release(&client, &claim.request()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert_eq!(parse_key(&HeaderValue::from_static("8e03978e-40d5")).unwrap(), "8e03978e-40d5");
        for bad in ["", "a b", &"k".repeat(256)] {
            assert!(parse_key(&HeaderValue::from_str(bad).unwrap()).is_err(), "{bad:?}");
        }
        assert!(parse_key(&HeaderValue::from_bytes("é".as_bytes()).unwrap()).is_err());
    }

    #[test]
    fn the_key_pattern_is_the_rule() {
        use crate::http::json_schema::testing::{assert_agree, strings};
        let params = <IdempotencyKey as utoipa::IntoParams>::into_params(|| None);
        let schema = serde_json::to_value(&params[0].schema).unwrap();
        let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        let long = "k".repeat(256);
        let fixed = ["k", " k\t", "", " ", "a b", long.as_str(), &long[1..]];
        let random = strings("a \t~!", 3000, 8);
        let accepted = |value: &str| parse_key(&HeaderValue::from_str(value).unwrap()).is_ok();
        assert_agree(&pattern, accepted, fixed.into_iter().chain(random.iter().map(String::as_str)));
    }

    #[test]
    fn the_fingerprint_covers_method_path_caller_and_body() {
        let user = Uuid::nil();
        let base = fingerprint("POST", "/api/tasks", user, b"{}");
        assert_eq!(base, fingerprint("POST", "/api/tasks", user, b"{}"));
        assert_ne!(base, fingerprint("POST", "/api/tasks", user, b"{ }"));
        assert_ne!(base, fingerprint("POST", "/api/errors", user, b"{}"));
        assert_ne!(base, fingerprint("POST", "/api/tasks", Uuid::max(), b"{}"));
        // Lengths are framed: moving a byte from one part to the next changes it.
        assert_ne!(fingerprint("POST", "/a", user, b"b"), fingerprint("POST", "/ab", user, b""));
    }

    #[test]
    fn replays_carry_the_stored_headers_and_say_so() {
        let headers = serde_json::json!({"location": "/api/tasks/1", "content-type": "application/json"});
        let response = replay(201, Some(&headers), b"{\"id\":1}".to_vec());
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::LOCATION], "/api/tasks/1");
        assert_eq!(response.headers()[REPLAYED], "true");
    }
}
