//! The middleware stack every request passes through, outermost first:
//! `observe` (the request id, the request's span and response line, the
//! request timeout, metrics by route template), panic safety, CORS,
//! compression, the body limit and, with read replicas, the read routing of
//! `db::replicas`; and the fallbacks for an unknown path or method.
//!
//! Few layers, on purpose: axum clones every layer of a route for every
//! request and boxes each `from_fn` layer's future, so the id, the span, the
//! log line, the timeout and the metrics are one layer rather than five.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use super::{ApiError, AppState};

/// Wraps the assembled routes in the middleware stack and the fallbacks.
pub fn wrap(routes: Router<AppState>, state: AppState) -> Router {
    let cors = cors(&state.config.http.cors_origins);
    routes
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        // Only with replicas: there is nothing to route without them.
        .layer(tower::util::option_layer(
            state.db.replicas().is_some().then(|| middleware::from_fn_with_state(state.clone(), read_routing)),
        ))
        .layer(DefaultBodyLimit::max(state.config.http.body_limit))
        .layer(CompressionLayer::new())
        // Outside the handlers, so every answer (errors too) carries the
        // CORS headers, and a preflight is answered here.
        .layer(tower::util::option_layer(cors))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".into()).into_response()))
        // Outermost, so timeouts and panics are logged and counted with their status.
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every request: its id (the caller's `x-request-id`, or a new UUID, set
/// on the request and answered in the response's `x-request-id`), a span
/// with its method, route template and id around everything it does, the
/// request timeout, the response line in the log and the HTTP metrics.
async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_id = match request.headers().get(REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a header value");
            request.headers_mut().insert(REQUEST_ID, id.clone());
            id
        }
    };
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = route.as_ref().map_or(request.uri().path(), MatchedPath::as_str),
        request_id = request_id.to_str().unwrap_or(""),
    );
    let limit = state.config.http.request_timeout;
    let mut response = match tokio::time::timeout(limit, next.run(request)).instrument(span.clone()).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limit.as_secs().max(1)).into_response(),
    };
    let elapsed = start.elapsed();
    span.in_scope(|| log_response(&response, elapsed));
    response.headers_mut().entry(REQUEST_ID).or_insert(request_id);
    state.metrics.observe_http(
        method_label(&method),
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status().as_u16(),
        elapsed,
    );
    response
}

/// With read replicas: runs the request inside its read context (a `GET` not
/// pinned by `DB_PRIMARY_ROUTES` may read on a replica; see `db::replicas`),
/// and after any other request that may have written for a known user
/// (anything but a 4xx, which changes nothing) records the primary's WAL
/// position for that user before answering, so that the user's next read
/// sees the write from whichever devx process takes it.
async fn read_routing(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(replicas) = state.db.replicas() else { return next.run(request).await };
    let method = request.method().clone();
    let reads = method == Method::GET || method == Method::HEAD;
    let pinned = reads
        && request.extensions().get::<MatchedPath>().is_some_and(|route| {
            replicas.limits().primary_routes.iter().any(|(m, p)| *m == method.as_str() && p == route.as_str())
        });
    let context = crate::db::replicas::ReadContext::new(reads && !pinned);
    let response = crate::db::replicas::in_request(context.clone(), next.run(request)).await;
    if !reads
        && method != Method::OPTIONS
        && !response.status().is_client_error()
        && let Some(user) = context.user()
        && let Err(e) = state.db.note_write(user).await
    {
        // The write itself stands; the user's reads may lag it for a moment.
        tracing::warn!(error = %e, %user, "could not record the write position for read-your-writes");
    }
    response
}

/// CORS for the configured origins, or none (no CORS headers at all).
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::ETAG,
                header::LOCATION,
                HeaderName::from_static(super::idempotency::REPLAYED),
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// Marks a response whose line is logged at debug whatever its status: a
/// probe that answers 503 while the database is away (`/readyz` every few
/// seconds) must not fill the log; the probe says why in its body.
#[derive(Debug, Clone, Copy)]
pub struct QuietLog;

fn log_response(response: &Response, latency: Duration) {
    let status = response.status().as_u16();
    // Whole microseconds: finer clock readings are noise in a log.
    let latency_ms = latency.as_micros() as f64 / 1000.0;
    if response.extensions().get::<QuietLog>().is_some() {
        tracing::debug!(status, latency_ms, "response");
    } else if status >= 500 {
        tracing::warn!(status, latency_ms, "response");
    } else {
        tracing::info!(status, latency_ms, "response");
    }
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute(format!("no route for {method} {}; the API is described at /api/openapi.json", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not supported on {}", uri.path()))
}

/// Standard methods by name; anything else is one label value, so a client
/// cannot grow the series without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }
}
