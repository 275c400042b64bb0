DROP VIEW devx.active_tasks;
CREATE VIEW devx.active_tasks AS
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
       e.status     AS latest_execution_status
  FROM devx.tasks t
  JOIN devx.projects p ON p.id = t.project_id
  LEFT JOIN LATERAL (
        SELECT x.id, x.agent_type, x.status
          FROM devx.task_executions x
         WHERE x.task_id = t.id
         ORDER BY x.created_at DESC, x.id DESC
         LIMIT 1
       ) e ON true
 WHERE t.status IN ('pending', 'in_progress');
