//! Chat messages as the API shows them, and their row mapping.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::http::json_schema::AnyJson;

/// Longest message content, in characters.
pub const CONTENT_MAX_CHARS: usize = 100_000;

crate::text_enum! {
    /// Who wrote a chat message.
    #[schema(as = ChatRole)]
    pub enum Role {
        User,
        Assistant,
        System,
    }
}

/// Which way a list runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first (the default).
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, crate::db::FromRow)]
pub struct ChatMessage {
    pub id: Uuid,
    pub project_id: Uuid,
    /// A container of the same project, if the message is about one.
    pub container_id: Option<Uuid>,
    /// The conversation.
    pub session_id: String,
    pub role: Role,
    pub content: String,
    #[schema(value_type = Vec<AnyJson>)]
    pub attachments: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// The columns a [`ChatMessage`] is read from (the table is aliased `m`).
pub const MESSAGE_COLUMNS: &str =
    "m.id, m.project_id, m.container_id, m.session_id, m.role, m.content, m.attachments, m.metadata, m.created_at";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_the_check_constraint_and_the_api_strings() {
        // chat_messages_role_check
        let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(roles, ["user", "assistant", "system"]);
        for &role in Role::ALL {
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("tool"), None);
    }
}
