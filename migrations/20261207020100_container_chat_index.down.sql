-- devx:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS chat_messages_container_id_idx ON devx.chat_messages (container_id);
DROP INDEX CONCURRENTLY IF EXISTS devx.chat_messages_container_id_session_id_created_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS devx.chat_messages_container_id_created_at_idx;
