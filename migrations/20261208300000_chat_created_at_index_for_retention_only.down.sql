-- devx:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS chat_messages_created_at_idx ON devx.chat_messages (created_at);
DROP INDEX CONCURRENTLY IF EXISTS devx.chat_messages_created_at_retention_idx;
