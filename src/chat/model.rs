//! Chat messages as the API shows them, and their row mapping.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

/// Longest message content, in characters.
pub const CONTENT_MAX_CHARS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "system" => Role::System,
            _ => return None,
        })
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChatMessage {
    pub id: Uuid,
    pub project_id: Uuid,
    /// A container of the same project, if the message is about one.
    pub container_id: Option<Uuid>,
    /// The conversation.
    pub session_id: String,
    pub role: Role,
    pub content: String,
    #[schema(value_type = Vec<Object>)]
    pub attachments: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
}

pub const MESSAGE_COLUMNS: &str =
    "m.id, m.project_id, m.container_id, m.session_id, m.role, m.content, m.attachments, m.metadata, m.created_at";

impl ChatMessage {
    pub fn from_row(row: &Row) -> ChatMessage {
        ChatMessage {
            id: row.get(0),
            project_id: row.get(1),
            container_id: row.get(2),
            session_id: row.get(3),
            role: Role::parse(row.get(4)).unwrap_or(Role::System),
            content: row.get(5),
            attachments: row.get(6),
            metadata: row.get(7),
            created_at: row.get(8),
        }
    }
}
