//! Environment variables as the API shows them: a secret's value is never
//! answered, only its mask and when it last changed.

use chrono::{DateTime, Utc};
use serde::Serialize;

crate::text_enum! {
    /// Which deployments' step a variable is for.
    pub enum Purpose {
        Build,
        Runtime,
    }
}

crate::text_enum! {
    /// Who set the effective value.
    pub enum Source {
        Project,
        Service,
    }
}

/// One variable. No `Debug`: it may hold a value.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct EnvVar {
    #[schema(example = "DATABASE_URL")]
    pub key: String,
    /// The value; `null` for a secret (write-only).
    pub value: Option<String>,
    /// `"****"` for a secret, else `null`.
    #[schema(example = "****")]
    pub masked: Option<String>,
    pub is_secret: bool,
    pub is_buildtime: bool,
    pub is_runtime: bool,
    /// An override used only by preview deployments.
    pub is_preview: bool,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When it was last set (for a secret: the only sign it changed).
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// The audit actor of the last write.
    pub updated_by: Option<String>,
}

/// One variable of a deployment's effective set.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct EffectiveVar {
    pub key: String,
    /// `null` for a secret.
    pub value: Option<String>,
    /// `"****"` for a secret, else `null`.
    pub masked: Option<String>,
    pub is_secret: bool,
    /// Whether the project's or the service's variable won.
    pub source: Source,
    /// Whether the winner is a preview override.
    pub is_preview: bool,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl crate::http::Versioned for EnvVar {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

/// A list of variables.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct EnvList {
    pub items: Vec<EnvVar>,
}

/// The version of an owner's variables: every key, scope and last change,
/// so a write, an addition or a deletion moves it.
pub fn list_version<'a>(items: impl Iterator<Item = (&'a str, bool, DateTime<Utc>)>) -> crate::http::ETag {
    let text: String = items.map(|(key, preview, at)| format!("{key}:{preview}:{};", at.timestamp_micros())).collect();
    crate::http::ETag::digest(&format!("env:{text}"))
}

impl crate::http::Versioned for EnvList {
    fn etag(&self) -> crate::http::ETag {
        list_version(self.items.iter().map(|i| (i.key.as_str(), i.is_preview, i.updated_at)))
    }
}

/// A service's effective set, by key.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct EffectiveEnv {
    pub purpose: Purpose,
    pub preview: bool,
    pub items: Vec<EffectiveVar>,
}

/// What a bulk upsert did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BulkResult {
    pub created: u64,
    pub updated: u64,
}
