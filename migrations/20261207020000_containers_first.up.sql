-- Containers first, as the container-keyed design has it: a container can
-- exist before and without a project, owned by its user; a project can name
-- the container it lives in; and the design's two views read as it writes
-- them. devx's per-user summary view, which held the name `user_projects`,
-- becomes `user_summaries`.

ALTER TABLE devx.containers ALTER COLUMN project_id DROP NOT NULL;
COMMENT ON COLUMN devx.containers.project_id IS
    'the project it was registered for; NULL for a container made on its own (owned by owner_id)';

ALTER TABLE devx.projects ADD COLUMN container_id uuid;
ALTER TABLE devx.projects ADD CONSTRAINT projects_container_id_fkey FOREIGN KEY (container_id)
    REFERENCES devx.containers (id) ON DELETE SET NULL;
COMMENT ON COLUMN devx.projects.container_id IS 'the container the project lives in';
CREATE INDEX projects_container_id_idx ON devx.projects (container_id);

ALTER VIEW devx.user_projects RENAME TO user_summaries;

DROP VIEW devx.active_containers;

-- Containers created or running, newest first, each with its user's email
-- and its project: the one living in it (the most recently changed, if
-- several name it), else the one it was registered for; deleted projects
-- never. One row per container.
CREATE VIEW devx.active_containers AS
SELECT c.id,
       c.container_id,
       c.name,
       c.status,
       c.image_name,
       c.assigned_port,
       c.url,
       c.created_at,
       c.updated_at,
       c.started_at,
       c.stopped_at,
       c.owner_id AS user_id,
       c.labels,
       c.metadata,
       c.project_id,
       p.name        AS project_name,
       p.description AS project_description,
       u.email       AS user_email
  FROM devx.containers c
  LEFT JOIN LATERAL (
        SELECT pr.name, pr.description
          FROM devx.projects pr
         WHERE (pr.container_id = c.id OR pr.id = c.project_id) AND pr.status <> 'deleted'
         ORDER BY pr.container_id IS NOT DISTINCT FROM c.id DESC, pr.updated_at DESC, pr.id
         LIMIT 1
       ) p ON true
  LEFT JOIN devx.users u ON u.id = c.owner_id
 WHERE c.status IN ('running', 'created')
 ORDER BY c.created_at DESC;

-- Per project: the status, port and URL of the container it lives in, and
-- that container's chat messages counted; newest change first.
CREATE VIEW devx.user_projects AS
SELECT p.id,
       p.container_id,
       p.name,
       p.description,
       p.type,
       p.status,
       p.created_at,
       p.updated_at,
       p.owner_id AS user_id,
       p.metadata,
       p.settings,
       p.template_id,
       p.last_deployed_at,
       c.status AS container_status,
       c.assigned_port,
       c.url,
       (SELECT count(*) FROM devx.chat_messages cm WHERE cm.container_id = c.id) AS message_count
  FROM devx.projects p
  LEFT JOIN devx.containers c ON c.id = p.container_id
 ORDER BY p.updated_at DESC;
