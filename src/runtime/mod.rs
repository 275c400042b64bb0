//! What runs a project: its services, the containers the runtime started for
//! it (or for its user alone, before and without a project), and its deployments (its builds and rollouts, tracked by status),
//! whose connection info and environment are sealed at rest (`secrets`); the
//! environment variables of projects and services (`env`); the deploy
//! webhooks that queue deployments (`hooks`) and pull-request previews
//! (`previews`).
//!
//! Routes on a project (`/api/projects/{id}/...`) ask `projects::access`;
//! routes on a row (`/api/containers/{id}`) load the row with its project's
//! owner (a container without a project: its own) and answer 404 unless the caller may see it
//! (`Principal::visibility`). Rows of a deleted project are gone for the API,
//! like the project itself.

pub mod containers;
pub mod deployments;
pub mod env;
pub mod hooks;
pub mod previews;
pub mod secrets;
pub mod services;

use utoipa_axum::router::OpenApiRouter;

use crate::http::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(services::routes())
        .merge(containers::routes())
        .merge(deployments::routes())
        .merge(env::routes())
        .merge(hooks::routes())
        .merge(previews::routes())
}

pub use crate::http::pagination::TimeKey;

/// Largest JSON object accepted for configs, labels and metadata.
pub const JSON_MAX_BYTES: usize = 64 * 1024;
