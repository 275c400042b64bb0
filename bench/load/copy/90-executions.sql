-- COPY devx.task_executions (id, task_id, agent_type, status, started_at)
SELECT md5('x' || i)::uuid, md5('t' || i)::uuid, 'bench-logs', 'running', now()
  FROM generate_series(1, :users) i
