-- COPY devx.chat_messages (project_id, session_id, role, content, metadata, created_at)
-- The hot project: messages 1..:hot, 10 ms apart.
SELECT md5('p1')::uuid, 'conv-' || (k % 5), (ARRAY['user', 'assistant'])[1 + k % 2],
       'Message ' || k || ': ' || repeat('lorem ipsum dolor sit amet ', 6), '{}',
       '2026-01-01'::timestamptz + k * interval '10 milliseconds'
  FROM generate_series(1, :hot) k
