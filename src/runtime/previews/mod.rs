//! Pull-request previews: a service's deployment of an open pull request's
//! head, recorded in `devx.preview_deployments` (`live`, then `expired` or
//! `closed`). Webhooks (`runtime::hooks`) open, redeploy and close them; the
//! API lists them and closes one by hand. At most
//! `deploy.previews_per_service` are live per service: opening one more
//! expires the oldest, under a per-service lock, in the same transaction.
//! A preview lives `deploy.preview_ttl_hours` after its last deployment; the
//! retention run marks the ones past it `expired` (their deployments are
//! left as they are). Closing, or expiring by the cap, ends a preview's
//! deployment as the deployment status machine allows
//! (cancelled before it runs, stopped when it runs).

pub mod model;
pub mod queries;
mod routes;

pub use routes::routes;

use uuid::Uuid;

use crate::db::Queryable;
use crate::http::{ApiError, ApiResult};
use crate::runtime::deployments;
use crate::runtime::deployments::model::{Deployment, DeploymentTrigger};
use crate::runtime::deployments::queries::NewDeployment;
use model::Preview;
use queries::PreviewDeploy;

/// A pull request's head to preview.
pub struct PreviewRequest<'a> {
    pub service_id: Uuid,
    pub project_id: Option<Uuid>,
    pub pr_number: i32,
    pub pr_url: Option<&'a str>,
    pub branch: &'a str,
    pub head_sha: &'a str,
    pub triggered_by: &'a str,
}

/// Queues a deployment of a pull request's head and records it as the pull
/// request's live preview: a new one (expiring the oldest live ones beyond
/// the cap), or the live one redeployed (its previous deployment ended).
/// The caller holds the build-slot lock (`deployments::queries::lock_build_slots`)
/// and commits.
pub(crate) async fn deploy(
    db: &impl Queryable,
    keys: Option<&crate::config::SecretKeys>,
    r: &PreviewRequest<'_>,
    deployment_id: Uuid,
) -> ApiResult<(Preview, Deployment)> {
    let project_id = r.project_id.ok_or_else(|| {
        ApiError::conflict("service", "a standalone service has no project to deploy in: add it to a project first")
    })?;
    queries::lock_service(db, r.service_id).await?;
    let (cap, ttl_hours) = queries::settings(db).await?;
    let deployment = deployments::queue(
        db,
        keys,
        &NewDeployment {
            id: deployment_id,
            project_id,
            service_id: Some(r.service_id),
            app_sandbox_id: None,
            public_url: None,
            db_sandbox_id: None,
            db_connection_info: None,
            environment_vars: None,
            runtime_type: None,
            commit_sha: Some(r.head_sha),
            commit_message: None,
            branch: Some(r.branch),
            trigger: DeploymentTrigger::PullRequest,
            triggered_by: r.triggered_by,
            rollback_of: None,
        },
    )
    .await?;
    let p = PreviewDeploy {
        service_id: r.service_id,
        pr_number: r.pr_number,
        pr_url: r.pr_url,
        branch: r.branch,
        head_sha: r.head_sha,
        deployment_id,
        ttl_hours,
    };
    let preview = match queries::live(db, r.service_id, r.pr_number).await? {
        Some(live) => {
            if let Some(old) = live.deployment_id {
                deployments::end(db, old).await?;
            }
            queries::redeploy(db, live.id, &p).await?
        }
        None => {
            let over = queries::live_count(db, r.service_id).await? - cap + 1;
            if over > 0 {
                for expired in queries::expire_oldest(db, r.service_id, over).await? {
                    end_deployment(db, &expired).await?;
                }
            }
            queries::insert(db, &p).await?
        }
    };
    Ok((preview, deployment))
}

/// Closes a pull request's live preview and ends its deployment; the
/// preview, if one was live. The caller holds the build-slot lock and
/// commits.
pub(crate) async fn close(db: &impl Queryable, service_id: Uuid, pr_number: i32) -> ApiResult<Option<Preview>> {
    queries::lock_service(db, service_id).await?;
    let closed = queries::close(db, service_id, pr_number).await?;
    if let Some(preview) = &closed {
        end_deployment(db, preview).await?;
    }
    Ok(closed)
}

/// Marks every live preview past its `expires_at` expired and ends its
/// deployment (a slot it held goes to the queue), as closing one does; how
/// many expired. Takes the build-slot lock itself; the caller commits.
pub async fn expire_due(db: &impl Queryable) -> ApiResult<usize> {
    deployments::queries::lock_build_slots(db).await?;
    let expired = queries::expire_due(db).await?;
    for preview in &expired {
        end_deployment(db, preview).await?;
    }
    Ok(expired.len())
}

async fn end_deployment(db: &impl Queryable, preview: &Preview) -> ApiResult<()> {
    if let Some(id) = preview.deployment_id {
        deployments::end(db, id).await?;
    }
    Ok(())
}
