-- devx:no-transaction
-- The index on chat_messages.created_at exists for retention, which deletes
-- the oldest messages first. As a plain index it also offered the planner a
-- second way to read one project's newest messages: walk created_at
-- backwards and filter by project. Where one project's messages are much
-- older than everyone else's, a custom plan took that path and read every
-- newer message of every other project before its first row (hundreds of
-- milliseconds at a million messages). Made partial, on a predicate only the
-- retention statement states, the index serves retention and nothing else;
-- a project's page always reads (project_id, created_at, id).
--
-- Outside a transaction so that the index is built CONCURRENTLY, writes
-- going on meanwhile. Every statement is safe to run again.

CREATE INDEX CONCURRENTLY IF NOT EXISTS chat_messages_created_at_retention_idx
    ON devx.chat_messages (created_at) WHERE created_at > '-infinity';
DROP INDEX CONCURRENTLY IF EXISTS devx.chat_messages_created_at_idx;
