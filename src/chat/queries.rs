//! The SQL of chat messages.

use serde_json::Value;
use uuid::Uuid;

use super::model::{ChatMessage, MESSAGE_COLUMNS, Order};
use crate::db::row::WithOwner;
use crate::db::{DbError, Queryable, Statement};
use crate::runtime::TimeKey;

pub struct NewMessage<'a> {
    pub project_id: Uuid,
    pub container_id: Option<Uuid>,
    pub session_id: &'a str,
    pub role: &'a str,
    pub content: &'a str,
    pub attachments: &'a Value,
    pub metadata: &'a Value,
}

pub async fn insert_message(db: &impl Queryable, m: &NewMessage<'_>) -> Result<ChatMessage, DbError> {
    let sql = format!(
        "INSERT INTO devx.chat_messages AS m (project_id, container_id, session_id, role, content, attachments, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING {MESSAGE_COLUMNS}"
    );
    db.query_one_as(
        &sql,
        &[&m.project_id, &m.container_id, &m.session_id, &m.role, &m.content, &m.attachments, &m.metadata],
    )
    .await
}

/// One message and the owner of its project (messages of deleted projects
/// are gone for everyone).
pub async fn get_message(db: &impl Queryable, id: Uuid) -> Result<Option<(ChatMessage, Uuid)>, DbError> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS}, p.owner_id
           FROM devx.chat_messages m JOIN devx.projects p ON p.id = m.project_id
          WHERE m.id = $1 AND p.status <> 'deleted'"
    );
    Ok(db.query_opt_as::<WithOwner<ChatMessage>>(&sql, &[&id]).await?.map(|r| (r.row, r.owner_id)))
}

/// Whose chat a list reads.
#[derive(Debug, Clone, Copy)]
pub enum Chat {
    /// A project's messages.
    Project(Uuid),
    /// The messages about a container (`container_id`), as the
    /// container-keyed design reads a chat.
    Container(Uuid),
}

/// A page of a chat's messages (of one conversation with `session_id`),
/// after the keyset `after` in the list's order; fetches `limit + 1` rows.
///
/// The statement holds only the conditions in use ([`Statement`]), so that
/// even a cached generic plan seeks straight to the cursor: a range scan on
/// `chat_messages (project_id, created_at, id)` for a project, or on
/// `(session_id, created_at)` for a conversation; for a container, on
/// `(container_id, created_at, id)` or `(container_id, session_id,
/// created_at, id)`; each stops after `limit + 1` rows wherever the page is.
pub async fn list_messages(
    db: &impl Queryable,
    chat: Chat,
    session_id: Option<&str>,
    order: Order,
    after: Option<TimeKey>,
    limit: i64,
) -> Result<Vec<ChatMessage>, DbError> {
    let (keyset, direction) = match order {
        Order::Asc => (">", "ASC"),
        Order::Desc => ("<", "DESC"),
    };
    let mut s = Statement::default();
    match chat {
        Chat::Project(id) => {
            let id = s.bind(id);
            s.and(format!("m.project_id = {id}"));
        }
        Chat::Container(id) => {
            let id = s.bind(id);
            s.and(format!("m.container_id = {id}"));
        }
    }
    s.and_some(session_id, |session_id| format!("m.session_id = {session_id}"));
    s.and_key(after, |at, id| format!("(m.created_at, m.id) {keyset} ({at}, {id})"));
    let limit = s.bind(limit + 1);
    s.sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM devx.chat_messages m
          {}
          ORDER BY m.created_at {direction}, m.id {direction} LIMIT {limit}",
        s.where_clause()
    );
    s.query_as(db).await
}
