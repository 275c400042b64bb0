//! Deploy webhooks: a service's deploy token (`devx.service_deploy_tokens`,
//! one per service, shown once; kept as its SHA-256 for GitLab's token and
//! sealed for GitHub's HMAC signature, `runtime::secrets`) and
//! `POST /api/hooks/deploy/{service}`, which checks a GitHub or GitLab
//! delivery against it and queues a deployment for a push, or opens,
//! redeploys or closes a pull request's preview (`runtime::previews`).
//! Every accepted delivery is recorded once in `devx.webhook_deliveries`
//! (append-only, kept `retention.webhook_deliveries`), so a replayed
//! delivery id is answered what the first got and creates nothing.

pub mod model;
pub mod queries;
mod routes;
pub mod signature;

pub use routes::routes;
