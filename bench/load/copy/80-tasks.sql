-- COPY devx.tasks (id, project_id, title, description, requirements, status, priority, created_by, created_at, updated_at)
-- Tasks 1..:users are in progress (their executions take the log appends);
-- the rest are pending. A third ask for claude-code, a third for codegen.
SELECT md5('t' || n)::uuid, md5('p' || n)::uuid, 'task ' || n, 'Benchmark task ' || n,
       CASE n % 3 WHEN 0 THEN '{"agent_type": "claude-code"}'::jsonb
                  WHEN 1 THEN '{"agent_type": "codegen"}'::jsonb ELSE '{}'::jsonb END,
       CASE WHEN n <= :users THEN 'in_progress' ELSE 'pending' END, n % 11,
       md5('u' || ((n - 1) % :users + 1))::uuid,
       '2026-03-01'::timestamptz + n * interval '1 second', '2026-03-01'::timestamptz + n * interval '1 second'
  FROM generate_series(1, :tasks) n
