-- COPY devx.project_contexts (project_id, codebase)
SELECT md5('p' || n)::uuid, '{}' FROM generate_series(1, :projects) n
