-- The SQL devx runs for this endpoint (src/ named below), with the auth
-- lookup of src/accounts/queries.rs::session_by_token first. Variables:
-- -D users=N (and for chat: hot=<uuid>, cur_at=<timestamptz>, cur_id=<uuid>).
-- Ids are computed as bench/load/prelude.sql names them (md5('p'||n)::uuid, ...).
-- GET /api/projects?limit=20: projects::queries::list_projects_statement (owner filter, limit + 1).
\set u random(1, :users)
SELECT s.id, s.user_id, u.role, u.is_active AS user_active, s.expires_at, s.last_activity AS last_seen
  FROM devx.sessions s JOIN devx.users u ON u.id = s.user_id
 WHERE s.token_hash = sha256(convert_to(bench.token(:u), 'UTF8')) AND s.is_active AND s.revoked_at IS NULL \gset
SELECT p.id, p.owner_id, (SELECT u.email FROM devx.users u WHERE u.id = p.owner_id) AS owner_email, p.name, p.description, p.type, p.status,
       t.slug AS template, p.container_id, p.metadata, p.settings, p.last_deployed_at, p.created_at, p.updated_at
  FROM devx.projects p LEFT JOIN templates.templates t ON t.id = p.template_id
 WHERE p.status <> 'deleted'
   AND p.owner_id = :user_id
 ORDER BY p.created_at DESC, p.id DESC
 LIMIT 21;
