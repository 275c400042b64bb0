//! The HTTP server: the shared state, the router assembled from every
//! capability's routes, the middleware stack (request ids, tracing, body
//! limit, timeout, compression, panic safety), the OpenAPI document, and
//! graceful shutdown.
//!
//! A capability contributes `fn routes() -> OpenApiRouter<AppState>` built
//! with `utoipa_axum::routes!`, so a route cannot exist without its OpenAPI
//! entry.

pub mod auth;
pub mod error;
pub mod extract;
pub mod pagination;
pub mod validate;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, ApiResult, FieldError};
pub use extract::{Json, Path, Query};

use crate::config::Config;
use crate::db::Db;

static BODY_LIMIT: AtomicUsize = AtomicUsize::new(1024 * 1024);

/// The configured body limit, for the 413 message.
pub fn body_limit() -> usize {
    BODY_LIMIT.load(Ordering::Relaxed)
}

pub struct AppInner {
    pub db: Db,
    pub config: Config,
    pub started_at: Instant,
    pub login_limiter: auth::LoginLimiter,
    pub metrics: crate::metrics::Metrics,
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    pub fn new(db: Db, config: Config) -> Self {
        let login_limiter = auth::LoginLimiter::new(config.http.login_max_failures, config.http.login_window);
        let metrics = crate::metrics::Metrics::new(db.clone());
        AppState(Arc::new(AppInner { db, config, started_at: Instant::now(), login_limiter, metrics }))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "devx",
        description = "The data service of an AI developer platform. Errors are application/problem+json; lists are keyset-paginated ({items, next_cursor}).",
    ),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A session token from /api/auth/login or an API key (devx_...)"))
                    .build(),
            ),
        );
    }
}

/// Every capability's routes, and the OpenAPI document they describe.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::health::routes())
        .merge(crate::accounts::routes())
        .merge(crate::catalog::routes())
        .merge(crate::projects::routes())
        .merge(crate::runtime::routes())
        .merge(crate::chat::routes())
        .merge(crate::files::routes())
        .merge(crate::agents::routes())
        .merge(crate::admin::routes())
        .split_for_parts()
}

/// The full application: API, OpenAPI document, `/metrics`, fallbacks and
/// middleware. `/api/openapi.json`, `/metrics` and the dashboard (`/`,
/// `/dashboard/...`) are not in the OpenAPI document.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api();
    let openapi = Arc::new(openapi);
    let request_id = HeaderName::from_static("x-request-id");
    BODY_LIMIT.store(state.config.http.body_limit, Ordering::Relaxed);
    let timeout = state.config.http.request_timeout;

    api.merge(crate::dashboard::routes())
        .route("/api/openapi.json", axum::routing::get(move || async move { axum::Json(openapi.as_ref().clone()) }))
        .route("/metrics", axum::routing::get(crate::metrics::scrape))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.http.body_limit))
        .layer(middleware::from_fn_with_state(timeout, request_timeout))
        .layer(CompressionLayer::new())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(make_span).on_response(on_response))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".into()).into_response()))
        // Outermost, so timeouts and panics are counted with their status.
        .layer(middleware::from_fn_with_state(state.clone(), crate::metrics::track))
        .with_state(state)
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

fn on_response(response: &Response, latency: Duration, _span: &tracing::Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if status >= 500 {
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

/// A bound, running server.
pub struct Application {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Application {
    /// Binds nothing itself: the caller passes the listener, so tests bind
    /// port 0 and run in parallel.
    pub fn build(listener: tokio::net::TcpListener, state: AppState) -> Self {
        Application { listener, state }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves; then stops accepting, gives in-flight
    /// requests the configured grace period, and closes the pool.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let grace = self.state.config.http.shutdown_grace;
        let db = self.state.db.clone();
        let app = router(self.state);
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let server = axum::serve(self.listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!(grace = ?grace, "shutting down: no new connections; finishing in-flight requests");
                let _ = stop_tx.send(true);
            });
        let deadline = async move {
            let _ = stop_rx.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            result = server.into_future() => result,
            _ = deadline => {
                tracing::warn!("grace period over; abandoning requests still in flight");
                Ok(())
            }
        };
        db.close();
        result
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
