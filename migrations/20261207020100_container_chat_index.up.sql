-- devx:no-transaction
-- A container's chat, read in order (all of it, or one conversation by
-- session_id) with keyset paging: each page a range scan that stops after
-- the page, as a project's chat is read. They replace the index on
-- container_id alone, which both lead with.
--
-- Outside a transaction so that each index is built CONCURRENTLY, writes
-- going on meanwhile. Every statement is safe to run again.

CREATE INDEX CONCURRENTLY IF NOT EXISTS chat_messages_container_id_created_at_idx
    ON devx.chat_messages (container_id, created_at, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS chat_messages_container_id_session_id_created_at_idx
    ON devx.chat_messages (container_id, session_id, created_at, id);
DROP INDEX CONCURRENTLY IF EXISTS devx.chat_messages_container_id_idx;
