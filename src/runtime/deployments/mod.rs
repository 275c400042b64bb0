//! Deployments, a project's builds and rollouts, over HTTP. A deployment
//! records its commit, what triggered it and who (`triggered_by`, the audit
//! actor), and when its build started and its rollout finished. It starts
//! `queued` and moves to `building` when a build slot is free (oldest first,
//! `deploy.max_concurrent_builds` in all and per project), then forward
//! through `building -> deploying -> running -> stopped` (steps may be
//! skipped, never retraced); any status that is not final may become
//! `failed`, and one that has not gone live `cancelled`; `stopped`, `failed`
//! and `cancelled` are final, and a stopped or failed one can be redeployed
//! as a new deployment. Its `db_connection_info` and `environment_vars` are
//! sealed at rest (`runtime::secrets`) and shown only by
//! `GET /api/deployments/{id}`. Its log (`logs`) is append-only lines with
//! its secret values masked before they are stored. A service's deployment
//! also keeps a sealed configuration snapshot (`snapshot`) that a rollback
//! queues again.

mod logs;
pub mod model;
pub mod queries;
mod routes;
pub mod snapshot;

pub use routes::routes;
pub(crate) use routes::{end, queue};
