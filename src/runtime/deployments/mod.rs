//! Deployments, a project's builds and rollouts, over HTTP. A deployment
//! moves forward through `pending -> building -> deploying -> running ->
//! stopped` (steps may be skipped, never retraced) and any status that is not
//! final may become `failed`; `stopped` and `failed` are final. Its
//! `db_connection_info` and `environment_vars` are sealed at rest
//! (`runtime::secrets`) and shown only by `GET /api/deployments/{id}`.

pub mod model;
pub mod queries;
mod routes;

pub use routes::routes;
