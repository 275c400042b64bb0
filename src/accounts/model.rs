//! Accounts as the API shows them, and their row mapping.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

crate::text_enum! {
    pub enum Role {
        User,
        Admin,
    }
}

crate::text_enum! {
    pub enum PlanType {
        Free,
        Personal,
        Team,
        Enterprise,
    }
}

crate::text_enum! {
    /// What an API key may do. Each scope includes the ones before it:
    /// `admin` > `write` > `read`.
    #[derive(PartialOrd, Ord)]
    pub enum Scope {
        Read,
        Write,
        Admin,
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    #[schema(value_type = String, example = "free")]
    pub plan_type: String,
    pub role: Role,
    pub is_active: bool,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub last_login: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl crate::http::Versioned for User {
    fn etag(&self) -> crate::http::ETag {
        crate::http::ETag::from_timestamp(self.updated_at)
    }
}

/// The columns a [`User`] is read from (the table is aliased `u`).
pub const USER_COLUMNS: &str =
    "u.id, u.email, u.name, u.avatar_url, u.plan_type, u.role, u.is_active, u.last_login, u.created_at, u.updated_at";

crate::text_enum! {
    /// Whose an API key is: a person's (`user`), or an agent's (`agent`,
    /// with the agent type it claims for; it is the actor of what it does).
    #[derive(Default)]
    pub enum ApiKeyKind {
        #[default]
        User,
        Agent,
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub kind: ApiKeyKind,
    /// An agent key's agent type (null for a user's key).
    #[schema(example = "claude-code")]
    pub agent_type: Option<String>,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// The columns an [`ApiKey`] is read from (the table is aliased `k`).
pub const API_KEY_COLUMNS: &str = "k.id, k.name, CASE WHEN k.agent_type IS NULL THEN 'user' ELSE 'agent' END AS kind, k.agent_type, k.prefix, \
     k.scopes, k.last_used_at, k.expires_at, k.revoked_at, k.created_at";

/// One of the caller's sessions (the token itself is never shown again).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct SessionInfo {
    pub id: Uuid,
    /// When it was opened (signed in).
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// Its last request (written at most once a minute).
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub last_activity: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub expires_at: DateTime<Utc>,
    /// The client's address when it signed in.
    #[schema(value_type = Option<String>, example = "203.0.113.7")]
    pub ip_address: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    /// The session this request was made with.
    pub current: bool,
}

/// The answer to a sign-in or registration.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionGrant {
    /// Send as `Authorization: Bearer <token>`. Shown only here.
    pub token: String,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

/// A newly created API key: the only time the key itself is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    /// The key. Store it now: devx keeps only its hash.
    pub key: String,
    #[serde(flatten)]
    pub api_key: ApiKey,
}

/// Who a bearer credential belongs to, as looked up for a request.
#[derive(Debug, Clone, crate::db::FromRow)]
pub struct CredentialRow {
    /// The session or API key id.
    pub id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub user_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// Sessions: last request; keys: last use.
    pub last_seen: Option<DateTime<Utc>>,
    /// API keys only.
    pub scopes: Vec<Scope>,
    /// Agent keys only.
    pub agent_type: Option<String>,
}
