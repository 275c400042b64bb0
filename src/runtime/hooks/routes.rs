//! Deploy tokens (`/api/services/{id}/deploy-token`) and the deploy webhook
//! (`POST /api/hooks/deploy/{service}`).
//!
//! A delivery is checked before anything else is looked at: a missing or
//! wrong signature, a wrong token, or a service without a token (or no such
//! service) all get the same 401. Then, in one transaction as
//! `webhook:<provider>`: the build-slot lock (and the service's preview
//! lock), the answer decided, the delivery inserted (a replay's insert finds
//! the first one's row, waiting for it to commit if it has not, and the
//! first answer is sent back with nothing done), then the deployment queued
//! or the preview opened or closed.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{
    DeliveryAnswer, DeliveryStatus, DeployToken, Event, NewDeployToken, PayloadError, PrAction, Provider,
};
use super::queries::{self, NewDelivery};
use super::signature;
use crate::accounts::Principal;
use crate::db::Queryable;
use crate::http::error::Problem;
use crate::http::{ApiError, ApiResult, AppState, Created, Json, Path};
use crate::runtime::deployments::model::DeploymentTrigger;
use crate::runtime::deployments::queries::{NewDeployment, lock_build_slots};
use crate::runtime::previews::{self, PreviewRequest};
use crate::runtime::secrets;
use crate::runtime::services::queries::get_service;
use crate::runtime::{deployments, services};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_deploy_token, get_deploy_token, delete_deploy_token))
        .routes(routes!(deploy_hook))
}

const TABLE: &str = "service_deploy_tokens";
const COLUMN: &str = "token_sealed";

/// The service the caller may see, locked when asked (404 otherwise).
async fn visible_service(
    db: &impl Queryable,
    principal: &Principal,
    id: Uuid,
    lock: bool,
) -> ApiResult<services::model::Service> {
    principal.visibility().filter(get_service(db, id, lock).await?).ok_or(ApiError::NotFound("service"))
}

/// Create the service's deploy token, or replace it: the answer is the only
/// time the token is shown. The previous token stops working at once.
/// Needs `DEVX_SECRET_KEY` (the token is kept sealed to check GitHub's
/// signatures) and a service in a project (deployments belong to one).
#[utoipa::path(
    post, path = "/api/services/{id}/deploy-token", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Service id")),
    responses(
        (status = 201, body = NewDeployToken, headers(("Location" = String, description = "/api/services/{id}/deploy-token"))),
        (status = 404, description = "No such service of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A standalone service (no project) cannot be deployed by webhook", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "DEVX_SECRET_KEY is not set", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_deploy_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Created<NewDeployToken>> {
    let actor = principal.actor();
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&actor).await?;
    // Locked: two regenerations take turns, and the sealed value is bound to
    // the row id the second one reads.
    let service = visible_service(&tx, &principal, id, true).await?;
    if service.project_id.is_none() {
        return Err(ApiError::conflict(
            "service",
            "a standalone service has no project to deploy in: add it to a project first",
        ));
    }
    let (secret, _) = crate::accounts::secrets::new_session_token();
    let token = format!("dxh_{secret}");
    let row_id = queries::token_row_id(&tx, id).await?;
    let sealed =
        secrets::seal(state.config.secret_keys.as_ref(), &secrets::context(TABLE, COLUMN, row_id), token.as_bytes())?;
    let info = queries::put_token(&tx, row_id, id, &signature::token_hash(&token), &sealed, &actor).await?;
    tx.commit().await?;
    let webhook_path = format!("/api/hooks/deploy/{id}");
    Ok(Created::at(
        format!("/api/services/{id}/deploy-token"),
        NewDeployToken { deploy_token: token, webhook_path, info },
    ))
}

/// The service's deploy token: when it was made, by whom, and last used;
/// never the token.
#[utoipa::path(
    get, path = "/api/services/{id}/deploy-token", tag = "runtime", security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "Service id")),
    responses(
        (status = 200, body = DeployToken),
        (status = 404, description = "No such service of yours, or it has no deploy token", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_deploy_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<DeployToken>> {
    let visibility = principal.visibility();
    let found = crate::db_read!(state.db, |c| async {
        if visibility.filter(get_service(c, id, false).await?).is_none() {
            return Ok(None);
        }
        queries::token(c, id).await.map(Some)
    })?
    .ok_or(ApiError::NotFound("service"))?;
    found.map(Json).ok_or(ApiError::NotFound("deploy token"))
}

/// Delete the service's deploy token: its webhook deliveries get 401 from
/// now on.
#[utoipa::path(
    delete, path = "/api/services/{id}/deploy-token", tag = "runtime", security(("bearer" = ["write"])),
    params(("id" = Uuid, Path, description = "Service id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such service of yours, or it has no deploy token", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delete_deploy_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&principal.actor()).await?;
    visible_service(&tx, &principal, id, true).await?;
    if !queries::delete_token(&tx, id).await? {
        return Err(ApiError::NotFound("deploy token"));
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

const DENIED: &str = "the delivery is not signed with this service's deploy token (or the service has none)";

/// A delivery id or event name as stored: 1 to 200 printable characters.
fn header_text<'a>(headers: &'a HeaderMap, name: &str, what: &str) -> ApiResult<&'a str> {
    match header(headers, name) {
        Some(v) if v.chars().count() <= 200 && !v.chars().any(char::is_control) => Ok(v),
        Some(_) => Err(ApiError::BadRequest(format!("header {name} must be 1 to 200 printable characters"))),
        None => Err(ApiError::BadRequest(format!("header {name} is missing: every delivery needs {what}"))),
    }
}

/// Receive a GitHub or GitLab webhook delivery for a service (no devx
/// credentials: the delivery is checked against the service's deploy
/// token).
///
/// GitHub: `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body under the
/// token>`, `X-GitHub-Event`, `X-GitHub-Delivery`. GitLab: `X-Gitlab-Token:
/// <token>`, `X-Gitlab-Event`, `X-Gitlab-Event-UUID`. A missing or wrong
/// signature or token, or a service without a deploy token, is 401 (the
/// same answer for each). A push to a branch queues one deployment (trigger
/// `webhook`, the pushed commit and branch); a pull request opened,
/// reopened or pushed to (GitLab: a merge request opened, reopened or
/// updated) queues a preview deployment (trigger `pull_request`) and records
/// the preview; closed or merged closes it. Any other event (`ping`, a tag
/// push) is answered 202 with nothing done. A delivery id sent again gets
/// the first answer and nothing is done twice.
#[utoipa::path(
    post, path = "/api/hooks/deploy/{service}", tag = "runtime",
    params(
        ("service" = Uuid, Path, description = "Service id"),
        ("X-Hub-Signature-256" = Option<String>, Header, description = "GitHub: sha256=<hex HMAC-SHA256 of the body under the deploy token>"),
        ("X-GitHub-Event" = Option<String>, Header, description = "GitHub: the event (push, pull_request, ping...)"),
        ("X-GitHub-Delivery" = Option<String>, Header, description = "GitHub: the delivery id (1 to 200 characters)"),
        ("X-Gitlab-Token" = Option<String>, Header, description = "GitLab: the deploy token"),
        ("X-Gitlab-Event" = Option<String>, Header, description = "GitLab: the event (Push Hook, Merge Request Hook...)"),
        ("X-Gitlab-Event-UUID" = Option<String>, Header, description = "GitLab: the delivery id (1 to 200 characters)"),
    ),
    request_body(content = Object, content_type = "application/json", description = "The provider's event payload, as it sent it (the signature covers these exact bytes)"),
    responses(
        (status = 202, body = DeliveryAnswer, description = "Accepted: what the delivery did (for a replayed delivery id: what the first one did)"),
        (status = 400, description = "Authenticated, but the delivery id or event header is missing, or the body is not a JSON object", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid signature or token for this service (or it has no deploy token, or no such service)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The service is standalone (no project to deploy in)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A push or pull request payload lacks a field devx needs (the commit id, the branch, the pull request number), named by its JSON pointer", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A GitHub delivery and DEVX_SECRET_KEY is not set (or cannot open the token)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn deploy_hook(
    State(state): State<AppState>,
    Path(service_id): Path<Uuid>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit: crate::http::body_limit() }
        } else {
            ApiError::BadRequest(format!("could not read the request body: {}", e.body_text()))
        }
    })?;
    let denied = || ApiError::Unauthorized(DENIED.into());
    let github = header(&headers, "x-hub-signature-256");
    let gitlab = header(&headers, "x-gitlab-token");
    let provider = match (github, gitlab) {
        (Some(_), _) => Provider::Github,
        (None, Some(_)) => Provider::Gitlab,
        (None, None) => return Err(denied()),
    };
    let secret = crate::db_read!(state.db, |c| queries::token_secret(c, service_id))?.ok_or_else(denied)?;
    let verified = match (github, gitlab) {
        (Some(sig), _) => match (&secret.token_sealed, &secret.token_sealed_key_id) {
            (Some(sealed), Some(key_id)) => {
                let context = secrets::context(TABLE, COLUMN, secret.id);
                let token = secrets::open(state.config.secret_keys.as_ref(), key_id, &context, sealed)?;
                signature::github_signature_ok(&token, &body, sig)
            }
            _ => false,
        },
        (None, Some(given)) => signature::gitlab_token_ok(given, &secret.token_hash),
        (None, None) => false,
    };
    if !verified {
        return Err(denied());
    }

    let (delivery_id, event_name) = match provider {
        Provider::Github => (
            header_text(&headers, "x-github-delivery", "a delivery id")?,
            header_text(&headers, "x-github-event", "an event name")?,
        ),
        Provider::Gitlab => (
            header_text(&headers, "x-gitlab-event-uuid", "a delivery id")?,
            header_text(&headers, "x-gitlab-event", "an event name")?,
        ),
    };
    let payload: Value = serde_json::from_slice(&body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| ApiError::BadRequest("the body must be the provider's JSON object payload".into()))?;
    let event = match provider {
        Provider::Github => super::model::github_event(event_name, &payload),
        Provider::Gitlab => super::model::gitlab_event(event_name, &payload),
    }
    .map_err(|PayloadError { field, message }| ApiError::invalid(field, message))?;

    let actor = format!("webhook:{}", provider.as_str());
    let mut client = state.db.client().await?;
    let tx = client.transaction_as(&actor).await?;
    if !matches!(event, Event::Ignored(_)) {
        if secret.project_id.is_none() {
            return Err(ApiError::conflict(
                "service",
                "a standalone service has no project to deploy in: add it to a project first",
            ));
        }
        lock_build_slots(&tx).await?;
    }
    let deployment_id = Uuid::new_v4();
    let (status, detail, created, pr_number) = match &event {
        Event::Ignored(why) => (DeliveryStatus::Ignored, why.clone(), None, None),
        Event::Push(p) => (
            DeliveryStatus::DeploymentQueued,
            format!("a deployment of {} on branch {} is queued", p.sha, p.branch),
            Some(deployment_id),
            None,
        ),
        Event::PullRequest(pr) if pr.action == PrAction::Deploy => (
            DeliveryStatus::PreviewDeployed,
            format!("a preview deployment of pull request #{} at {} is queued", pr.number, pr.sha),
            Some(deployment_id),
            Some(pr.number),
        ),
        Event::PullRequest(pr) => {
            previews::queries::lock_service(&tx, service_id).await?;
            let live = previews::queries::live(&tx, service_id, pr.number).await?.is_some();
            let detail = if live {
                format!("the preview of pull request #{} is closed and its deployment ended", pr.number)
            } else {
                format!("pull request #{} has no live preview: nothing to close", pr.number)
            };
            (DeliveryStatus::PreviewClosed, detail, None, Some(pr.number))
        }
    };
    let answer = DeliveryAnswer {
        delivery_id: delivery_id.to_string(),
        provider,
        event: event_name.to_string(),
        status,
        detail,
        deployment_id: created,
        pr_number,
    };
    let answer = serde_json::to_value(&answer).map_err(|e| ApiError::Internal(e.to_string()))?;
    let recorded = queries::insert_delivery(
        &tx,
        &NewDelivery {
            service_id,
            provider,
            delivery_id,
            event: event_name,
            status,
            answer: &answer,
            deployment_id: created,
        },
    )
    .await?;
    if !recorded {
        // The insert waited for the first delivery to commit; this statement
        // sees its row.
        let first = queries::delivery_answer(&tx, service_id, provider, delivery_id)
            .await?
            .ok_or_else(|| ApiError::Internal("a delivery conflicted but cannot be read".into()))?;
        drop(tx);
        return Ok((StatusCode::ACCEPTED, Json(first)));
    }
    queries::touch_token(&tx, secret.id).await?;
    match &event {
        Event::Ignored(_) => {}
        Event::Push(p) => {
            deployments::queue(
                &tx,
                state.config.secret_keys.as_ref(),
                &NewDeployment {
                    id: deployment_id,
                    project_id: secret.project_id.unwrap_or_default(),
                    service_id: Some(service_id),
                    app_sandbox_id: None,
                    public_url: None,
                    db_sandbox_id: None,
                    db_connection_info: None,
                    environment_vars: None,
                    runtime_type: None,
                    commit_sha: Some(&p.sha),
                    commit_message: p.message.as_deref(),
                    branch: Some(&p.branch),
                    trigger: DeploymentTrigger::Webhook,
                    triggered_by: &actor,
                    rollback_of: None,
                },
            )
            .await?;
        }
        Event::PullRequest(pr) if pr.action == PrAction::Deploy => {
            let request = PreviewRequest {
                service_id,
                project_id: secret.project_id,
                pr_number: pr.number,
                pr_url: pr.url.as_deref(),
                branch: &pr.branch,
                head_sha: &pr.sha,
                triggered_by: &actor,
            };
            previews::deploy(&tx, state.config.secret_keys.as_ref(), &request, deployment_id).await?;
        }
        Event::PullRequest(pr) => {
            previews::close(&tx, service_id, pr.number).await?;
        }
    }
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(answer)))
}
