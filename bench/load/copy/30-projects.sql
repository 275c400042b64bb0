-- COPY devx.projects (id, owner_id, name, description, type, status, metadata, settings, created_at, updated_at)
SELECT md5('p' || n)::uuid, md5('u' || ((n - 1) % :users + 1))::uuid, 'project ' || n,
       'Benchmark project number ' || n,
       (ARRAY['nextjs', 'react', 'api', 'web_app'])[1 + n % 4], 'active',
       jsonb_build_object('n', n), '{}',
       '2025-06-01'::timestamptz + n * interval '1 minute', '2025-06-01'::timestamptz + n * interval '1 minute'
  FROM generate_series(1, :projects) n
