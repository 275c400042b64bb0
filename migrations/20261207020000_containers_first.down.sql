DROP VIEW devx.user_projects;
DROP VIEW devx.active_containers;

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

ALTER VIEW devx.user_summaries RENAME TO user_projects;

ALTER TABLE devx.projects DROP COLUMN container_id;

-- Containers made without a project cannot exist without the column's
-- NOT NULL gone; they go (their chat messages and files lose the link).
DELETE FROM devx.containers WHERE project_id IS NULL;
ALTER TABLE devx.containers ALTER COLUMN project_id SET NOT NULL;
