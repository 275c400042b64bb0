-- COPY devx.sessions (user_id, token_hash, expires_at, last_activity, ip_address, user_agent)
SELECT md5('u' || n)::uuid, sha256(convert_to(bench.token(n), 'UTF8')), now() + interval '30 days', now(),
       '127.0.0.1', 'devx-bench'
  FROM generate_series(1, :users) n
