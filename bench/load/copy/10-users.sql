-- COPY devx.users (id, email, name, plan_type, role, created_at, updated_at)
SELECT md5('u' || n)::uuid, 'bench' || n || '@example.com', 'Bench User ' || n,
       (ARRAY['free', 'personal', 'team', 'enterprise'])[1 + n % 4], 'user',
       '2025-01-01'::timestamptz + n * interval '1 minute', '2025-01-01'::timestamptz + n * interval '1 minute'
  FROM generate_series(1, :users) n
