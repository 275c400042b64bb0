//! The HTTP kit every capability builds on: the shared state ([`AppState`]),
//! the problem+json error type, extractors that turn bad input into
//! problems, keyset pagination, input validation, the client's address, the
//! middleware stack and the base of the OpenAPI document; and the contract
//! of writes: `201` with `Location` ([`Created`]), `ETag` and `If-Match`
//! ([`etag`]), and `Idempotency-Key` ([`idempotency`]);
//! and pieces of schemas ([`json_schema`]).
//!
//! This module imports no capability: capabilities import it, and only the
//! composition root (`app`) knows them all. A capability contributes
//! `fn routes() -> OpenApiRouter<AppState>` built with `utoipa_axum::routes!`,
//! so a route cannot exist without its OpenAPI entry.

pub mod client;
pub mod created;
pub mod error;
pub mod etag;
pub mod extract;
pub mod idempotency;
pub mod json_schema;
pub mod logs;
pub mod middleware;
pub mod openapi;
pub mod pagination;
pub mod validate;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use created::Created;
pub use error::{ApiError, ApiResult, FieldError};
pub use etag::{ETag, IfMatch, Tagged, Versioned};
pub use extract::{Json, Path, Query};

use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;

/// How long a probe waits for the probes' connection (another probe using it).
const PROBE_WAIT: Duration = Duration::from_millis(250);

static BODY_LIMIT: AtomicUsize = AtomicUsize::new(1024 * 1024);

/// The configured body limit, for the 413 message.
pub fn body_limit() -> usize {
    BODY_LIMIT.load(Ordering::Relaxed)
}

pub struct AppInner {
    pub db: Db,
    /// One connection of its own for the probes and the metrics scrape, so
    /// they answer while every request connection is busy.
    pub probes: Db,
    pub config: Config,
    /// Set on SIGTERM: `/readyz` answers 503 while in-flight and new
    /// requests are still served, so a load balancer stops sending first.
    pub draining: AtomicBool,
    pub started_at: Instant,
    pub metrics: Metrics,
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
        let metrics = Metrics::new(db.clone(), config.http.metrics_sample_interval);
        let probes = db.probe_pool(PROBE_WAIT).unwrap_or_else(|_| db.clone());
        BODY_LIMIT.store(config.http.body_limit, Ordering::Relaxed);
        AppState(Arc::new(AppInner {
            db,
            probes,
            config,
            draining: AtomicBool::new(false),
            started_at: Instant::now(),
            metrics,
        }))
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}
