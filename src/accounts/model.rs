//! Accounts as the API shows them, and their row mapping.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanType {
    Free,
    Personal,
    Team,
    Enterprise,
}

impl PlanType {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanType::Free => "free",
            PlanType::Personal => "personal",
            PlanType::Team => "team",
            PlanType::Enterprise => "enterprise",
        }
    }
}

/// What an API key may do. Each scope includes the ones before it:
/// `admin` > `write` > `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    #[schema(value_type = String, example = "free")]
    pub plan_type: String,
    pub role: Role,
    pub is_active: bool,
    pub last_login: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns `User::from_row` reads, in order.
pub const USER_COLUMNS: &str =
    "u.id, u.email, u.name, u.avatar_url, u.plan_type, u.role, u.is_active, u.last_login, u.created_at, u.updated_at";

impl User {
    pub fn from_row(row: &Row) -> User {
        User {
            id: row.get(0),
            email: row.get(1),
            name: row.get(2),
            avatar_url: row.get(3),
            plan_type: row.get(4),
            role: Role::parse(row.get(5)).unwrap_or(Role::User),
            is_active: row.get(6),
            last_login: row.get(7),
            created_at: row.get(8),
            updated_at: row.get(9),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub const API_KEY_COLUMNS: &str =
    "k.id, k.name, k.prefix, k.scopes, k.last_used_at, k.expires_at, k.revoked_at, k.created_at";

impl ApiKey {
    pub fn from_row(row: &Row) -> ApiKey {
        let scopes: Vec<String> = row.get(3);
        ApiKey {
            id: row.get(0),
            name: row.get(1),
            prefix: row.get(2),
            scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            last_used_at: row.get(4),
            expires_at: row.get(5),
            revoked_at: row.get(6),
            created_at: row.get(7),
        }
    }
}

/// The answer to a sign-in or registration.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionGrant {
    /// Send as `Authorization: Bearer <token>`. Shown only here.
    pub token: String,
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
#[derive(Debug, Clone)]
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
}
