-- devx.active_tasks answered tasks of deleted projects, which the API never
-- shows; `GET /api/tasks?active=true` reads this view, so its rows are the
-- API's. The columns a task is answered with are added at the end (a view
-- keeps its existing columns in place).
CREATE OR REPLACE VIEW devx.active_tasks AS
SELECT t.id,
       t.project_id,
       p.name AS project_name,
       t.parent_task_id,
       t.title,
       t.status,
       t.priority,
       t.created_by,
       t.assigned_to,
       t.created_at,
       t.updated_at,
       e.id         AS latest_execution_id,
       e.agent_type AS latest_agent_type,
       e.status     AS latest_execution_status,
       t.description,
       t.requirements,
       t.attempt,
       t.max_attempts,
       t.errors,
       t.run_after,
       t.lease_seconds,
       t.unique_key
  FROM devx.tasks t
  JOIN devx.projects p ON p.id = t.project_id
  LEFT JOIN LATERAL (
        SELECT x.id, x.agent_type, x.status
          FROM devx.task_executions x
         WHERE x.task_id = t.id
         ORDER BY x.created_at DESC, x.id DESC
         LIMIT 1
       ) e ON true
 WHERE t.status IN ('pending', 'in_progress')
   AND p.status <> 'deleted';
