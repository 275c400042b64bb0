-- Benchmark data, generated server-side (INSERT ... SELECT generate_series).
-- Ids are deterministic so that the load generators can name rows:
--   user n      md5('u'||n)::uuid        n in 1..:users
--   project n   md5('p'||n)::uuid        owner: user ((n-1) % :users) + 1
--   task n      md5('t'||n)::uuid        in project n (n <= :tasks)
--   execution i md5('x'||i)::uuid        of task i, running (log appends), i in 1..:users
-- Session token of user n: base64url(sha256('bench-session-'||n)), no padding;
-- stored, like devx does, as sha256(token).
-- Project 1 (owned by user 1) is the hot chat project with :hot messages.
-- Triggers (audit, updated_at) and FK checks are off while loading.
\set ON_ERROR_STOP on
SET session_replication_role = replica;
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';

CREATE SCHEMA IF NOT EXISTS bench;
CREATE OR REPLACE FUNCTION bench.token(n int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT rtrim(translate(encode(sha256(convert_to('bench-session-' || n, 'UTF8')), 'base64'), '+/', '-_'), '=')
$$;

INSERT INTO devx.users (id, email, name, plan_type, role, created_at, updated_at)
SELECT md5('u' || n)::uuid, 'bench' || n || '@example.com', 'Bench User ' || n,
       (ARRAY['free', 'personal', 'team', 'enterprise'])[1 + n % 4], 'user',
       '2025-01-01'::timestamptz + n * interval '1 minute', '2025-01-01'::timestamptz + n * interval '1 minute'
  FROM generate_series(1, :users) n;

INSERT INTO devx.sessions (user_id, token_hash, expires_at, last_activity, ip_address, user_agent)
SELECT md5('u' || n)::uuid, sha256(convert_to(bench.token(n), 'UTF8')), now() + interval '30 days', now(),
       '127.0.0.1', 'devx-bench'
  FROM generate_series(1, :users) n;

INSERT INTO devx.projects (id, owner_id, name, description, type, status, metadata, settings, created_at, updated_at)
SELECT md5('p' || n)::uuid, md5('u' || ((n - 1) % :users + 1))::uuid, 'project ' || n,
       'Benchmark project number ' || n,
       (ARRAY['nextjs', 'react', 'api', 'web_app'])[1 + n % 4], 'active',
       jsonb_build_object('n', n), '{}',
       '2025-06-01'::timestamptz + n * interval '1 minute', '2025-06-01'::timestamptz + n * interval '1 minute'
  FROM generate_series(1, :projects) n;

INSERT INTO devx.project_contexts (project_id, codebase)
SELECT md5('p' || n)::uuid, '{}' FROM generate_series(1, :projects) n;

-- The hot project: messages 1..:hot, 10 ms apart.
INSERT INTO devx.chat_messages (project_id, session_id, role, content, metadata, created_at)
SELECT md5('p1')::uuid, 'conv-' || (k % 5), (ARRAY['user', 'assistant'])[1 + k % 2],
       'Message ' || k || ': ' || repeat('lorem ipsum dolor sit amet ', 6), '{}',
       '2026-01-01'::timestamptz + k * interval '10 milliseconds'
  FROM generate_series(1, :hot) k;

-- The rest spread over projects 2..:projects.
INSERT INTO devx.chat_messages (project_id, session_id, role, content, metadata, created_at)
SELECT md5('p' || (2 + k % (:projects - 1)))::uuid, 'conv-' || (k % 3), (ARRAY['user', 'assistant'])[1 + k % 2],
       'Message ' || k || ': ' || repeat('lorem ipsum dolor sit amet ', 6), '{}',
       '2026-02-01'::timestamptz + k * interval '1 second'
  FROM generate_series(1, :messages - :hot) k;

INSERT INTO devx.audit_logs (entity_type, entity_id, action, old_values, new_values, actor, created_at)
SELECT 'devx.projects', md5('p' || (1 + k % :projects))::uuid::text, 'update',
       jsonb_build_object('name', 'old ' || k), jsonb_build_object('name', 'new ' || k),
       'user:' || md5('u' || (1 + k % :users))::uuid, now() - (k % 31536000) * interval '1 second'
  FROM generate_series(1, :audit) k;

-- Tasks 1..:users are in progress (their executions take the log appends);
-- the rest are pending. A third ask for claude-code, a third for codegen.
INSERT INTO devx.tasks (id, project_id, title, description, requirements, status, priority, created_by, created_at, updated_at)
SELECT md5('t' || n)::uuid, md5('p' || n)::uuid, 'task ' || n, 'Benchmark task ' || n,
       CASE n % 3 WHEN 0 THEN '{"agent_type": "claude-code"}'::jsonb
                  WHEN 1 THEN '{"agent_type": "codegen"}'::jsonb ELSE '{}'::jsonb END,
       CASE WHEN n <= :users THEN 'in_progress' ELSE 'pending' END, n % 11,
       md5('u' || ((n - 1) % :users + 1))::uuid,
       '2026-03-01'::timestamptz + n * interval '1 second', '2026-03-01'::timestamptz + n * interval '1 second'
  FROM generate_series(1, :tasks) n;

INSERT INTO devx.task_executions (id, task_id, agent_type, status, started_at)
SELECT md5('x' || i)::uuid, md5('t' || i)::uuid, 'bench-logs', 'running', now()
  FROM generate_series(1, :users) i;

RESET session_replication_role;
VACUUM ANALYZE;

-- The retention job inside `devx serve` would delete the older chat messages
-- and audit rows mid-benchmark: off in this database.
UPDATE devx.system_config SET value = 'false' WHERE key = 'retention.enabled';
