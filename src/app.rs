//! The composition root: the only module that knows every capability. It
//! assembles their routes into one router and one OpenAPI document, wraps
//! them in the HTTP kit's middleware, and runs the server
//! ([`Application`]), which answers its probes from the moment it is bound,
//! before the database is there ([`Application::starting`]). Nothing but the
//! CLI and the tests imports it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use tower::ServiceExt;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::http::AppState;
use crate::http::openapi::ApiDoc;

/// The OpenAPI tags, in the order a reader meets them, with what each covers.
const TAGS: &[(&str, &str)] = &[
    ("accounts", "Registration, sign-in, sessions, the caller's profile and API keys."),
    ("catalog", "Project templates, their categories and technologies."),
    ("projects", "Projects, their code context and the caller's summary."),
    ("modifications", "Change requests to a project's code: proposed, approved or rejected, applied."),
    ("generations", "The history of code generation runs."),
    ("runtime", "Services, containers and deployments."),
    ("chat", "Conversation with the assistant, per project."),
    ("files", "Files generated for a project."),
    ("tasks", "CI/CD tasks and their claim by agents."),
    ("executions", "Agent executions of tasks and their logs."),
    ("pr-validations", "Pull-request validations and their checks."),
    ("errors", "Error logs and their recovery."),
    ("admin", "Users, settings, the audit trail and system statistics (administrators)."),
    ("health", "Liveness, readiness, database status and insights."),
];

/// Every capability's routes, and the OpenAPI document they describe
/// (finished: shared problem answers, servers, tags).
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::health::routes())
        .merge(crate::accounts::routes())
        .merge(crate::catalog::routes())
        .merge(crate::projects::routes())
        .merge(crate::runtime::routes())
        .merge(crate::chat::routes())
        .merge(crate::files::routes())
        .merge(crate::agents::routes())
        .merge(crate::admin::routes())
        .split_for_parts();
    (router, crate::http::openapi::finish(&doc, TAGS))
}

/// The full application: API, OpenAPI document, `/metrics`, fallbacks and
/// middleware. `/api/openapi.json`, `/metrics` and the dashboard (`/`,
/// `/dashboard/...`) are not in the OpenAPI document. `touches` collects
/// the credentials in use for whoever flushes them (see [`Opening::open`]).
pub fn router(state: AppState, touches: crate::accounts::Touches) -> Router {
    let (api, openapi) = api();
    // A route without a declared scope is a programming error a test
    // catches; at run time such a route refuses every caller.
    let scopes = crate::accounts::RouteScopes::from_openapi(&openapi).unwrap_or_else(|problem| {
        tracing::error!(%problem, "the OpenAPI document declares a route without a scope");
        crate::accounts::RouteScopes::default()
    });
    let keyed = crate::http::idempotency::KeyedRoutes::from_openapi(&openapi);
    let openapi = Arc::new(openapi);
    let routes = api
        .merge(crate::dashboard::routes())
        .route("/api/openapi.json", axum::routing::get(move || async move { axum::Json(openapi.as_ref().clone()) }))
        .route("/metrics", axum::routing::get(crate::health::scrape))
        // Inside the accounts context's layer: the key's caller is the
        // Principal, whose extractor needs the route scopes.
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), keyed),
            crate::http::idempotency::layer::<crate::accounts::Principal>,
        ))
        .layer(axum::Extension(crate::accounts::AccountsContext {
            scopes,
            touches,
            hasher: crate::accounts::Hasher::new(state.config.http.hash_threads(), state.config.http.hash_queue),
        }));
    crate::http::middleware::wrap(routes, state)
}

/// A bound, running server.
///
/// It serves from the moment it is bound: either the application at once
/// ([`Application::build`]), or first the start-up answers
/// ([`Application::starting`]: `/livez` 200, `/readyz` 503 with the reason)
/// until the state arrives through the [`Opening`].
pub struct Application {
    listener: tokio::net::TcpListener,
    http: crate::config::HttpConfig,
    phase: Arc<Phase>,
}

/// What the server is serving: the start-up answers until `app` is set.
struct Phase {
    app: OnceLock<(Router, AppState)>,
    waiting_for: Mutex<String>,
    /// The tasks started with the application: the metrics history's
    /// sampler and the flusher of credentials in use.
    background: Mutex<Vec<tokio::task::AbortHandle>>,
    touches: crate::accounts::Touches,
}

impl Phase {
    fn stop_background(&self) {
        for task in self.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..) {
            task.abort();
        }
    }
}

impl Drop for Phase {
    /// A server dropped without a shutdown (a test's runtime ending) stops
    /// its background tasks too.
    fn drop(&mut self) {
        self.stop_background();
    }
}

/// The other end of an [`Application::starting`]: says what start-up is
/// waiting for, and hands over the state when it is ready.
#[derive(Clone)]
pub struct Opening(Arc<Phase>);

impl Opening {
    /// What `/readyz` gives as the reason while starting.
    pub fn waiting_for(&self, reason: impl Into<String>) {
        *self.0.waiting_for.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = reason.into();
    }

    /// Starts serving the application over `state`, the sampler of its
    /// metrics history (`metrics::history`) and the flusher of credentials
    /// in use (`accounts::touch`), which run until shutdown.
    pub fn open(&self, state: AppState) {
        let touches = self.0.touches.clone();
        if self.0.app.set((router(state.clone(), touches.clone()), state.clone())).is_ok() {
            let db = state.db.clone();
            let sampler = tokio::spawn(async move { state.metrics.sample_every(&state.db).await });
            let flusher = tokio::spawn(touches.run(db, crate::accounts::touch::FLUSH_EVERY));
            self.0
                .background
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend([sampler.abort_handle(), flusher.abort_handle()]);
        }
    }
}

impl Application {
    /// Binds nothing itself: the caller passes the listener, so tests bind
    /// port 0 and run in parallel.
    pub fn build(listener: tokio::net::TcpListener, state: AppState) -> Self {
        let (app, opening) = Application::starting(listener, &state.config, "");
        opening.open(state);
        app
    }

    /// A server that answers the probes before its state exists (the
    /// database is not there yet): alive, not ready, and `waiting_for`.
    pub fn starting(
        listener: tokio::net::TcpListener,
        config: &crate::config::Config,
        waiting_for: impl Into<String>,
    ) -> (Self, Opening) {
        let phase = Arc::new(Phase {
            app: OnceLock::new(),
            waiting_for: Mutex::new(waiting_for.into()),
            background: Mutex::new(Vec::new()),
            touches: crate::accounts::Touches::default(),
        });
        let app = Application { listener, http: config.http.clone(), phase: phase.clone() };
        (app, Opening(phase))
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The application's state, once it is open.
    pub fn state(&self) -> Option<&AppState> {
        self.phase.app.get().map(|(_, state)| state)
    }

    /// Serves until `shutdown` resolves; then (once open) answers `/readyz`
    /// 503 for the drain period, stops accepting, gives in-flight requests
    /// the configured grace period, stops the background tasks, writes the
    /// last credentials in use and closes the pool.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let grace = self.http.shutdown_grace;
        let drain = self.http.shutdown_drain;
        let phase = self.phase.clone();
        let waiting = {
            let phase = self.phase.clone();
            crate::health::starting(move || {
                phase.waiting_for.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
            })
        };
        // Every request goes to the application once it is open, and to the
        // start-up answers before.
        let gate = {
            let phase = self.phase.clone();
            tower::service_fn(move |request: axum::extract::Request| {
                let service = match phase.app.get() {
                    Some((app, _)) => app.clone(),
                    None => waiting.clone(),
                };
                service.oneshot(request)
            })
        };
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let draining = self.phase.clone();
        let server = axum::serve(
            self.listener,
            Router::new().fallback_service(gate).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            if let Some((_, state)) = draining.app.get()
                && !drain.is_zero()
            {
                state.draining.store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(drain = ?drain, "draining: /readyz answers 503 while requests are still served");
                tokio::select! {
                    _ = tokio::time::sleep(drain) => {}
                    _ = shutdown_signal() => tracing::info!("second signal: draining cut short"),
                }
            }
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
        phase.stop_background();
        if let Some((_, state)) = phase.app.get() {
            if let Err(error) = phase.touches.flush(&state.db).await {
                tracing::warn!(%error, "could not record when sessions and API keys were last used");
            }
            state.db.close();
        }
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
