-- COPY devx.chat_messages (project_id, session_id, role, content, metadata, created_at)
-- The rest spread over projects 2..:projects.
SELECT md5('p' || (2 + k % (:projects - 1)))::uuid, 'conv-' || (k % 3), (ARRAY['user', 'assistant'])[1 + k % 2],
       'Message ' || k || ': ' || repeat('lorem ipsum dolor sit amet ', 6), '{}',
       '2026-02-01'::timestamptz + k * interval '1 second'
  FROM generate_series(1, :messages - :hot) k
