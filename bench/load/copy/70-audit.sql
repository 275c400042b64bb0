-- COPY devx.audit_logs (entity_type, entity_id, action, old_values, new_values, actor, created_at)
SELECT 'devx.projects', md5('p' || (1 + k % :projects))::uuid::text, 'update',
       jsonb_build_object('name', 'old ' || k), jsonb_build_object('name', 'new ' || k),
       'user:' || md5('u' || (1 + k % :users))::uuid, now() - (k % 31536000) * interval '1 second'
  FROM generate_series(1, :audit) k
