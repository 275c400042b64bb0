-- The SQL devx runs for this endpoint (src/ named below), with the auth
-- lookup of src/accounts/queries.rs::session_by_token first. Variables:
-- -D users=N (and for chat: hot=<uuid>, cur_at=<timestamptz>, cur_id=<uuid>).
-- Ids are computed as bench/load/prelude.sql names them (md5('p'||n)::uuid, ...).
-- POST /api/executions/{id}/logs with 100 lines: agents::settings::AgentSettings::load,
-- agents::queries::logs::reserve_seqs (within agents.max_log_bytes), insert_lines.
-- devx sends the four arrays as parameters; here the server builds them (same shape, same insert).
\set u random(1, :users)
SELECT s.id, s.user_id, u.role, u.is_active AS user_active, s.expires_at, s.last_activity AS last_seen
  FROM devx.sessions s JOIN devx.users u ON u.id = s.user_id
 WHERE s.token_hash = sha256(convert_to(bench.token(:u), 'UTF8')) AND s.is_active AND s.revoked_at IS NULL \gset
BEGIN;
SELECT set_config('devx.actor', 'user:' || :user_id, true);
SELECT key, value FROM devx.system_config WHERE key LIKE 'agents.%';
UPDATE devx.task_executions x
   SET last_log_seq = x.last_log_seq + 100,
       log_bytes = x.log_bytes + 6200,
       lease_expires_at = CASE WHEN x.status = 'running' THEN now() + make_interval(secs => x.lease_seconds)
                               ELSE x.lease_expires_at END
  FROM devx.tasks t JOIN devx.projects p ON p.id = t.project_id
 WHERE x.id = md5('x' || :u)::uuid AND t.id = x.task_id AND p.status <> 'deleted'
   AND p.owner_id = :user_id
   AND x.log_bytes + 6200 <= 1073741824
RETURNING x.last_log_seq \gset
\set first :last_log_seq - 99
INSERT INTO devx.execution_logs (execution_id, seq, level, message, logged_at)
SELECT md5('x' || :u)::uuid, l.seq, l.level, l.message, coalesce(l.logged_at, now())
  FROM unnest(ARRAY(SELECT generate_series(:first::bigint, :last_log_seq::bigint))::bigint[],
              array_fill('info'::text, ARRAY[100])::text[],
              array_fill('bench log line: compiling crate, running step, all fine so far'::text, ARRAY[100])::text[],
              array_fill(NULL::timestamptz, ARRAY[100])::timestamptz[]) AS l(seq, level, message, logged_at);
COMMIT;
