-- Benchmark data: this prelude, then every file of bench/load/copy/ streamed
-- into its table with COPY ... FROM STDIN (by bench/run), then after.sql.
-- Ids are deterministic so that the load generators can name rows:
--   user n      md5('u'||n)::uuid        n in 1..:users
--   project n   md5('p'||n)::uuid        owner: user ((n-1) % :users) + 1
--   task n      md5('t'||n)::uuid        in project n (n <= :tasks)
--   execution i md5('x'||i)::uuid        of task i, running (log appends), i in 1..:users
-- Session token of user n: base64url(sha256('bench-session-'||n)), no padding;
-- stored, like devx does, as sha256(token).
-- Project 1 (owned by user 1) is the hot chat project with :hot messages.
-- Triggers (audit, updated_at) and FK checks are off while loading
-- (session_replication_role = replica on the COPY sessions).
\set ON_ERROR_STOP on

CREATE SCHEMA IF NOT EXISTS bench;
-- STABLE, as its body is (convert_to): PostgreSQL inlines it into a statement
-- then. Declared IMMUTABLE it was not inlined, and its body was parsed and
-- planned again at every execution: about 50 µs of the server's time per
-- pgbench transaction, a third of a chat page's, and none of devx's.
CREATE OR REPLACE FUNCTION bench.token(n int) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT rtrim(translate(encode(sha256(convert_to('bench-session-' || n, 'UTF8')), 'base64'), '+/', '-_'), '=')
$$;
