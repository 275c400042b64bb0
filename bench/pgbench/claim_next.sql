-- The SQL devx runs for this endpoint (src/ named below), with the auth
-- lookup of src/accounts/queries.rs::session_by_token first. Variables:
-- -D users=N (and for chat: hot=<uuid>, cur_at=<timestamptz>, cur_id=<uuid>).
-- Ids are computed as bench/load/prelude.sql names them (md5('p'||n)::uuid, ...).
-- POST /api/tasks/claim {"agent_type":"claude-code"}: agents::settings::AgentSettings::load,
-- executions::lock_claims and running_counts, tasks::claim_next, executions::run_queued (no queued
-- execution here, so it updates nothing) and start_execution. The claimed task is carried by
-- \gset: every user has pending tasks after bench/run's reset, so a claim always finds one.
\set u random(1, :users)
SELECT s.id, s.user_id, u.role, u.is_active AS user_active, s.expires_at, s.last_activity AS last_seen
  FROM devx.sessions s JOIN devx.users u ON u.id = s.user_id
 WHERE s.token_hash = sha256(convert_to(bench.token(:u), 'UTF8')) AND s.is_active AND s.revoked_at IS NULL \gset
BEGIN;
SELECT set_config('devx.actor', 'user:' || :user_id, true);
SELECT key, value FROM devx.system_config WHERE key LIKE 'agents.%';
SELECT pg_advisory_xact_lock(7234318635876770157);
SELECT count(*) AS total, count(*) FILTER (WHERE agent_type = 'claude-code') AS of_type
  FROM devx.task_executions WHERE status = 'running';
WITH next AS (
     SELECT t.id
       FROM devx.tasks t JOIN devx.projects p ON p.id = t.project_id
      WHERE t.status = 'pending' AND t.run_after <= now()
        AND p.status <> 'deleted'
        AND p.owner_id = :user_id
        AND (NOT t.requirements ? 'agent_type' OR t.requirements -> 'agent_type' @> to_jsonb('claude-code'::text))
        AND NOT EXISTS (SELECT 1 FROM devx.task_executions q
                         WHERE q.task_id = t.id AND q.status = 'pending' AND q.agent_type <> 'claude-code'::text)
      ORDER BY t.priority DESC, t.created_at, t.id
      LIMIT 1
      FOR UPDATE OF t SKIP LOCKED
 )
 UPDATE devx.tasks t
    SET status = 'in_progress', assigned_to = :user_id, attempt = t.attempt + 1
   FROM next
  WHERE t.id = next.id
 RETURNING t.id, t.project_id, t.parent_task_id, t.title, t.description, t.requirements,
           t.status, t.priority, t.created_by, t.assigned_to,
           (SELECT u.email FROM devx.users u WHERE u.id = t.assigned_to) AS assigned_to_email,
           t.attempt, t.max_attempts, t.errors, t.run_after, t.lease_seconds, t.unique_key, t.created_at, t.updated_at \gset claimed_
UPDATE devx.task_executions x
   SET status = 'running', started_at = now(), attempt = :claimed_attempt, lease_seconds = 60::integer,
       lease_expires_at = now() + make_interval(secs => 60::integer), started_by = 'user:' || :user_id
 WHERE x.task_id = :claimed_id AND x.status = 'pending'
RETURNING x.id, x.task_id, x.agent_type, x.agent_config, x.status, x.error_details,
          x.started_at, x.completed_at, x.last_log_seq, x.attempt, x.lease_seconds, x.lease_expires_at,
          x.log_bytes, x.log_truncated, x.started_by, x.created_at, x.updated_at;
INSERT INTO devx.task_executions AS x (task_id, agent_type, agent_config, status, started_at, attempt,
                                       lease_seconds, lease_expires_at, started_by)
VALUES (:claimed_id, 'claude-code', '{}', 'running', now(), :claimed_attempt, 60::integer,
        now() + make_interval(secs => 60::integer), 'user:' || :user_id)
RETURNING x.id, x.task_id, x.agent_type, x.agent_config, x.status, x.error_details,
          x.started_at, x.completed_at, x.last_log_seq, x.attempt, x.lease_seconds, x.lease_expires_at,
          x.log_bytes, x.log_truncated, x.started_by, x.created_at, x.updated_at;
COMMIT;
