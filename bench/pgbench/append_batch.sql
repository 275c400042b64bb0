-- The SQL devx runs for POST /api/executions/{id}/logs with :batch lines (src/ named below),
-- with the auth lookup of src/accounts/queries.rs::session_by_token first: the statements of
-- append_logs.sql, the batch size a variable. Variables: -D users=N -D batch=N -D bytes=N
-- (the batch's message bytes, as devx counts them for agents.max_log_bytes).
-- devx sends the four arrays as parameters; here the server builds them (same shape, same insert).
\set u random(1, :users)
SELECT s.id, s.user_id, u.role, u.is_active AS user_active, s.expires_at, s.last_activity AS last_seen
  FROM devx.sessions s JOIN devx.users u ON u.id = s.user_id
 WHERE s.token_hash = sha256(convert_to(bench.token(:u), 'UTF8')) AND s.is_active AND s.revoked_at IS NULL \gset
BEGIN;
SELECT set_config('devx.actor', 'user:' || :user_id, true);
SELECT key, value FROM devx.system_config WHERE key LIKE 'agents.%';
UPDATE devx.task_executions x
   SET last_log_seq = x.last_log_seq + :batch,
       log_bytes = x.log_bytes + :bytes,
       lease_expires_at = CASE WHEN x.status = 'running' THEN now() + make_interval(secs => x.lease_seconds)
                               ELSE x.lease_expires_at END
  FROM devx.tasks t JOIN devx.projects p ON p.id = t.project_id
 WHERE x.id = md5('x' || :u)::uuid AND t.id = x.task_id AND p.status <> 'deleted'
   AND p.owner_id = :user_id
   AND x.log_bytes + :bytes <= 1073741824
RETURNING x.last_log_seq \gset
\set first :last_log_seq - :batch + 1
INSERT INTO devx.execution_logs (execution_id, seq, level, message, logged_at)
SELECT md5('x' || :u)::uuid, l.seq, l.level, l.message, coalesce(l.logged_at, now())
  FROM unnest(ARRAY(SELECT generate_series(:first::bigint, :last_log_seq::bigint))::bigint[],
              array_fill('info'::text, ARRAY[:batch::int])::text[],
              array_fill('bench log line 1: compiling crate, running step, all fine so far'::text, ARRAY[:batch::int])::text[],
              array_fill(NULL::timestamptz, ARRAY[:batch::int])::timestamptz[]) AS l(seq, level, message, logged_at);
COMMIT;
