-- The SQL devx runs for this endpoint (src/ named below), with the auth
-- lookup of src/accounts/queries.rs::session_by_token (pipelined with the read where devx does). Variables:
-- -D users=N (and for chat: hot=<uuid>, cur_at=<timestamptz>, cur_id=<uuid>).
-- Ids are computed as bench/load/prelude.sql names them (md5('p'||n)::uuid, ...).
-- GET /api/projects/{id}: projects::queries::project_detail, pipelined with the auth lookup (the owner is checked on the row).
\set u random(1, :users)
\set p :u + :users * random(0, 9)
\startpipeline
SELECT s.id, s.user_id, u.role, u.is_active AS user_active, s.expires_at, s.last_activity AS last_seen
  FROM devx.sessions s JOIN devx.users u ON u.id = s.user_id
 WHERE s.token_hash = sha256(convert_to(bench.token(:u), 'UTF8')) AND s.is_active AND s.revoked_at IS NULL;
SELECT p.id, p.owner_id, (SELECT u.email FROM devx.users u WHERE u.id = p.owner_id) AS owner_email, p.name, p.description, p.type, p.status,
       t.slug AS template, p.container_id, p.metadata, p.settings, p.last_deployed_at, p.created_at, p.updated_at,
       (SELECT count(*) FROM devx.services s WHERE s.project_id = p.id) AS services,
       c.created, c.running, c.stopped, c.deleted,
       (SELECT count(*) FROM devx.deployments d WHERE d.project_id = p.id) AS deployments,
       (SELECT count(*) FROM devx.chat_messages m WHERE m.project_id = p.id) AS messages,
       (SELECT count(*) FROM devx.file_storage f WHERE f.project_id = p.id AND NOT f.is_deleted) AS files,
       (SELECT count(*) FROM devx.modifications x
         WHERE x.project_id = p.id AND x.status IN ('pending', 'approved')) AS open_modifications
  FROM devx.projects p
  LEFT JOIN templates.templates t ON t.id = p.template_id
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE k.status = 'created') AS created,
              count(*) FILTER (WHERE k.status = 'running') AS running,
              count(*) FILTER (WHERE k.status = 'stopped') AS stopped,
              count(*) FILTER (WHERE k.status = 'deleted') AS deleted
         FROM devx.containers k WHERE k.project_id = p.id) c
 WHERE p.id = md5('p' || :p)::uuid AND p.status <> 'deleted';
\endpipeline
