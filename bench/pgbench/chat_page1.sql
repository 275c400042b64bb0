-- The SQL devx runs for this endpoint (src/ named below), with the auth
-- lookup of src/accounts/queries.rs::session_by_token (pipelined with the read where devx does). Variables:
-- -D users=N, token_hash=<user 1's token hash, \x...> (devx hashes the token in Rust: the
-- statement gets the hash), hot=<uuid>, cur_at=<timestamptz>, cur_id=<uuid>.
-- Ids are computed as bench/load/prelude.sql names them (md5('p'||n)::uuid, ...).
-- GET /api/projects/{hot}/messages?limit=20: the auth lookup, projects::access::project_owner and chat::queries::list_messages, pipelined.
\set u 1
\startpipeline
SELECT s.id, s.user_id, u.role, u.is_active AS user_active, s.expires_at, s.last_activity AS last_seen
  FROM devx.sessions s JOIN devx.users u ON u.id = s.user_id
 WHERE s.token_hash = :token_hash AND s.is_active AND s.revoked_at IS NULL;
SELECT owner_id FROM devx.projects WHERE id = :hot AND status <> 'deleted';
SELECT m.id, m.project_id, m.container_id, m.session_id, m.role, m.content, m.attachments, m.metadata, m.created_at FROM devx.chat_messages m
 WHERE m.project_id = :hot
 ORDER BY m.created_at ASC, m.id ASC LIMIT 21;
\endpipeline
