-- The SQL devx runs for one claim-then-complete cycle of an agent (src/ named below): two
-- requests, each with the auth lookup of src/accounts/queries.rs::session_by_token first.
-- Variables: -D users=N. Ids are computed as bench/load/prelude.sql names them.
-- 1. POST /api/tasks/claim {"agent_type":"claude-code"}: agents::settings::AgentSettings::load,
--    executions::lock_claims and running_counts, tasks::claim_next, executions::start_execution
--    (the same statements as claim_next.sql; the execution insert finds the claimed task by
--    (assigned_to, status, updated_at = now()) because pgbench cannot carry "no row claimed"
--    into the next statement; it is the same indexed insert).
-- 2. POST /api/executions/{id}/complete: executions::get_execution (visible_execution),
--    tasks::get_task FOR UPDATE, executions::finish_execution, tasks::finish_task.
\set u random(1, :users)
SELECT s.id, s.user_id, u.role, u.is_active, s.expires_at, s.last_activity
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
        AND (:user_id::uuid IS NULL OR p.owner_id = :user_id)
        AND (NOT t.requirements ? 'agent_type' OR t.requirements -> 'agent_type' @> to_jsonb('claude-code'::text))
      ORDER BY t.priority DESC, t.created_at, t.id
      LIMIT 1
      FOR UPDATE OF t SKIP LOCKED
 )
 UPDATE devx.tasks t
    SET status = 'in_progress', assigned_to = :user_id, attempt = t.attempt + 1
   FROM next
  WHERE t.id = next.id
 RETURNING t.id, t.project_id, t.parent_task_id, t.title, t.description, t.requirements,
           t.status, t.priority, t.created_by, t.assigned_to, t.attempt, t.max_attempts, t.errors, t.run_after,
           t.lease_seconds, t.unique_key, t.created_at, t.updated_at;
INSERT INTO devx.task_executions AS x (task_id, agent_type, agent_config, status, started_at, attempt,
                                       lease_seconds, lease_expires_at, started_by)
SELECT t.id, 'claude-code', '{}', 'running', now(), t.attempt, coalesce(t.lease_seconds, 60), now() + make_interval(secs => coalesce(t.lease_seconds, 60)), 'user:' || :user_id
  FROM devx.tasks t
 WHERE t.assigned_to = :user_id AND t.status = 'in_progress' AND t.updated_at = now()
RETURNING x.id AS xid, x.task_id AS xtask, x.agent_type, x.agent_config, x.status, x.error_details,
          x.started_at, x.completed_at, x.last_log_seq, x.attempt, x.lease_seconds, x.lease_expires_at,
          x.log_bytes, x.log_truncated, x.started_by, x.created_at, x.updated_at \gset
COMMIT;
SELECT s.id, s.user_id, u.role, u.is_active, s.expires_at, s.last_activity
  FROM devx.sessions s JOIN devx.users u ON u.id = s.user_id
 WHERE s.token_hash = sha256(convert_to(bench.token(:u), 'UTF8')) AND s.is_active AND s.revoked_at IS NULL \gset
BEGIN;
SELECT set_config('devx.actor', 'user:' || :user_id, true);
SELECT x.id, x.task_id, x.agent_type, x.agent_config, x.status, x.error_details,
       x.started_at, x.completed_at, x.last_log_seq, x.attempt, x.lease_seconds, x.lease_expires_at,
       x.log_bytes, x.log_truncated, x.started_by, x.created_at, x.updated_at, p.owner_id
  FROM devx.task_executions x
  JOIN devx.tasks t ON t.id = x.task_id
  JOIN devx.projects p ON p.id = t.project_id
 WHERE x.id = :xid AND p.status <> 'deleted';
SELECT t.id, t.project_id, t.parent_task_id, t.title, t.description, t.requirements,
       t.status, t.priority, t.created_by, t.assigned_to, t.attempt, t.max_attempts, t.errors, t.run_after,
       t.lease_seconds, t.unique_key, t.created_at, t.updated_at, p.owner_id
  FROM devx.tasks t JOIN devx.projects p ON p.id = t.project_id
 WHERE t.id = :xtask AND p.status <> 'deleted' FOR UPDATE OF t;
UPDATE devx.task_executions x
   SET status = 'completed', completed_at = greatest(now(), x.started_at), error_details = coalesce(NULL, x.error_details),
       lease_expires_at = NULL
 WHERE x.id = :xid AND x.status = 'running'
RETURNING x.id, x.task_id, x.agent_type, x.agent_config, x.status, x.error_details,
          x.started_at, x.completed_at, x.last_log_seq, x.attempt, x.lease_seconds, x.lease_expires_at,
          x.log_bytes, x.log_truncated, x.started_by, x.created_at, x.updated_at;
UPDATE devx.tasks t
   SET status = 'completed', assigned_to = CASE WHEN 'completed' = 'pending' THEN NULL ELSE t.assigned_to END
 WHERE t.id = :xtask AND t.status = 'in_progress'
RETURNING t.id, t.project_id, t.parent_task_id, t.title, t.description, t.requirements,
          t.status, t.priority, t.created_by, t.assigned_to, t.attempt, t.max_attempts, t.errors, t.run_after,
          t.lease_seconds, t.unique_key, t.created_at, t.updated_at;
COMMIT;
