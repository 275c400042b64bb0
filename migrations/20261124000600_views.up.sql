-- Read-only views from the specs.

-- Running containers with their project and owner.
CREATE VIEW devx.active_containers AS
SELECT c.id,
       c.container_id,
       c.name,
       c.status,
       c.image_name,
       c.assigned_port,
       c.url,
       c.started_at,
       c.labels,
       c.project_id,
       p.name  AS project_name,
       c.owner_id,
       u.email AS owner_email,
       c.created_at,
       c.updated_at
  FROM devx.containers c
  JOIN devx.projects p ON p.id = c.project_id
  JOIN devx.users u ON u.id = c.owner_id
 WHERE c.status = 'running';

-- Per user (accounts not closed): live projects, running containers and the
-- latest sign-in or change to a project or container.
CREATE VIEW devx.user_projects AS
SELECT u.id    AS user_id,
       u.email,
       u.name,
       coalesce(p.project_count, 0)     AS project_count,
       coalesce(c.active_containers, 0) AS active_containers,
       greatest(u.last_login, p.last_project_change, c.last_container_change) AS last_activity
  FROM devx.users u
  LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE pr.status <> 'deleted') AS project_count,
               max(pr.updated_at) AS last_project_change
          FROM devx.projects pr
         WHERE pr.owner_id = u.id
       ) p ON true
  LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE co.status = 'running') AS active_containers,
               max(co.updated_at) AS last_container_change
          FROM devx.containers co
         WHERE co.owner_id = u.id
       ) c ON true
 WHERE u.deleted_at IS NULL;

-- Open tasks with their project and the status of their latest execution.
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

-- Per agent type. success_rate: percent of finished runs (completed or
-- failed) that completed; durations over runs with both start and end.
CREATE VIEW devx.task_execution_summary AS
SELECT x.agent_type,
       count(*)                                      AS runs,
       count(*) FILTER (WHERE x.status = 'completed') AS completed,
       count(*) FILTER (WHERE x.status = 'failed')    AS failed,
       count(*) FILTER (WHERE x.status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE x.status IN ('pending', 'running')) AS in_flight,
       round(100.0 * count(*) FILTER (WHERE x.status = 'completed')
             / nullif(count(*) FILTER (WHERE x.status IN ('completed', 'failed')), 0), 2) AS success_rate,
       avg(x.duration_ms)                                        AS avg_duration_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY x.duration_ms) AS p95_duration_ms,
       max(x.created_at)                                         AS last_run_at
  FROM (SELECT agent_type, status, created_at,
               (extract(epoch FROM completed_at - started_at) * 1000)::double precision AS duration_ms
          FROM devx.task_executions) x
 GROUP BY x.agent_type;

-- Per repository. pass_rate: percent of decided validations that passed.
CREATE VIEW devx.pr_validation_summary AS
SELECT v.repository,
       count(*)                                      AS validations,
       count(*) FILTER (WHERE v.status = 'pending')   AS pending,
       count(*) FILTER (WHERE v.status = 'running')   AS running,
       count(*) FILTER (WHERE v.status = 'passed')    AS passed,
       count(*) FILTER (WHERE v.status = 'failed')    AS failed,
       count(*) FILTER (WHERE v.status = 'cancelled') AS cancelled,
       round(100.0 * count(*) FILTER (WHERE v.status = 'passed')
             / nullif(count(*) FILTER (WHERE v.status IN ('passed', 'failed')), 0), 2) AS pass_rate,
       max(v.created_at) AS last_validation_at
  FROM devx.pr_validations v
 GROUP BY v.repository;

-- Per error type.
CREATE VIEW devx.error_summary AS
SELECT l.error_type,
       count(*)                               AS error_count,
       count(*) FILTER (WHERE NOT l.resolved) AS unresolved,
       count(*) FILTER (WHERE l.resolved)     AS resolved,
       round(avg(l.recovery_attempts), 2)     AS avg_recovery_attempts,
       max(l.created_at)                      AS last_seen
  FROM devx.error_logs l
 GROUP BY l.error_type;

-- The audit trail of the last 7 days, newest first.
CREATE VIEW devx.recent_activity AS
SELECT a.id,
       a.entity_type,
       a.entity_id,
       a.action,
       a.actor,
       a.old_values,
       a.new_values,
       a.created_at
  FROM devx.audit_logs a
 WHERE a.created_at > now() - interval '7 days'
 ORDER BY a.created_at DESC, a.id DESC;
