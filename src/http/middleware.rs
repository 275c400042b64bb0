//! The middleware stack every request passes through, outermost first:
//! metrics (count and time by route template), panic safety, request ids,
//! tracing, compression, the request timeout, the body limit and, with read
//! replicas, the read routing of `db::replicas`; and the fallbacks for an
//! unknown path or method.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use super::{ApiError, AppState};

/// Wraps the assembled routes in the middleware stack and the fallbacks.
pub fn wrap(routes: Router<AppState>, state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = state.config.http.request_timeout;
    let cors = cors(&state.config.http.cors_origins);
    routes
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), read_routing))
        .layer(DefaultBodyLimit::max(state.config.http.body_limit))
        .layer(middleware::from_fn_with_state(timeout, request_timeout))
        .layer(CompressionLayer::new())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        // No ERROR line per failed response from the trace layer: the
        // response line above says the status, and a 5xx from a handler is
        // logged with its cause by `ApiError`.
        .layer(TraceLayer::new_for_http().make_span_with(make_span).on_response(on_response).on_failure(()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        // Outside the rest, so a preflight is answered before routing, and
        // every answer (errors too) carries the CORS headers.
        .layer(tower::util::option_layer(cors))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".into()).into_response()))
        // Outermost, so timeouts and panics are counted with their status.
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
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

fn make_span(request: &Request) -> tracing::Span {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = route.as_deref().unwrap_or(request.uri().path()),
        request_id,
    )
}

/// Marks a response whose line is logged at debug whatever its status: a
/// probe that answers 503 while the database is away (`/readyz` every few
/// seconds) must not fill the log; the probe says why in its body.
#[derive(Debug, Clone, Copy)]
pub struct QuietLog;

fn on_response(response: &Response, latency: Duration, _span: &tracing::Span) {
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

async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limit.as_secs().max(1)).into_response(),
    }
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute(format!("no route for {method} {}; the API is described at /api/openapi.json", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not supported on {}", uri.path()))
}

/// Counts and times every response by route template.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    state.metrics.observe_http(
        method,
        route.as_deref().unwrap_or("unmatched"),
        response.status().as_u16(),
        start.elapsed(),
    );
    response
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
