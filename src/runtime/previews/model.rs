//! Pull-request previews as the API shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

crate::text_enum! {
    pub enum PreviewStatus {
        /// Deployed for an open pull request.
        Live,
        /// Past its `expires_at` (marked by the retention run), or the
        /// oldest live one when a newer pull request needed its place.
        Expired,
        /// Its pull request was closed or merged, or it was closed by hand.
        Closed,
    }
}

/// A pull request's preview deployment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct Preview {
    pub id: Uuid,
    pub service_id: Uuid,
    pub pr_number: i32,
    /// The pull request's page, as the provider gave it.
    pub pr_url: Option<String>,
    #[schema(example = "feature/checkout")]
    pub branch: String,
    #[schema(example = "3f786850e387550fdab836ed7e6dc881de23001b")]
    pub head_sha: String,
    pub status: PreviewStatus,
    /// Where the preview is served: its deployment's `public_url` once the
    /// runtime sets it.
    pub url: Option<String>,
    /// Its newest deployment (`null` once that deployment is deleted).
    pub deployment_id: Option<Uuid>,
    /// When it expires unless its pull request is pushed to again.
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub expires_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

/// The columns a [`Preview`] is read from (`v` is the preview).
pub const PREVIEW_COLUMNS: &str = "v.id, v.service_id, v.pr_number, v.pr_url, v.branch, v.head_sha, v.status, v.url, \
     v.deployment_id, v.expires_at, v.created_at, v.updated_at";
