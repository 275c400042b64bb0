-- bench/partitions: the scratch database's data, after `devx migrate up`.
-- psql variables: rows (audit rows already in the table), months (whole
-- months before the current one that they spread over, evenly, in time
-- order, as a trail is written), projects (audited rows pgbench updates).
--
-- Afterwards:
--   devx.audit_logs        partitioned (the migrations' table), a partition
--                          per month of data; the live trail
--   devx.audit_logs_flat   an unpartitioned copy: the same rows, columns,
--                          identity, primary key and indexes (as the table
--                          was before it was partitioned, but for the
--                          primary key, which now includes created_at)
--   partbench.oldest       the oldest month's rows, to put back between rounds
-- The two tables swap names (partbench.use_table) so that the one under
-- test is devx.audit_logs, the table devx.audit_row() writes to.
\set ON_ERROR_STOP on
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';

CREATE SCHEMA partbench;

-- Bounds of the data: [lo, hi), whole UTC months.
CREATE TABLE partbench.bounds AS
SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - :months * interval '1 month') AT TIME ZONE 'UTC' AS lo,
       date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hi,
       (date_trunc('month', now() AT TIME ZONE 'UTC') - (:months - 1) * interval '1 month') AT TIME ZONE 'UTC' AS oldest_hi;

SELECT count(*) FILTER (WHERE devx.create_history_partition('audit_logs', 'created_at', b.lo + m * interval '1 month', 'month'))
       AS partitions_created
  FROM partbench.bounds b, generate_series(0, :months - 1) m;

-- The owner and the projects pgbench's updates touch (their audit rows have
-- the shape of the loaded ones).
-- Triggers off (their audit rows would add to the table's size).
SET session_replication_role = replica;
INSERT INTO devx.users (id, email) VALUES (md5('u1')::uuid, 'partbench@example.com');
INSERT INTO devx.projects (id, owner_id, name)
SELECT md5('p' || n)::uuid, md5('u1')::uuid, 'project ' || n FROM generate_series(1, :projects) n;
RESET session_replication_role;

-- What devx.audit_row() writes for a project renamed by its owner.
INSERT INTO devx.audit_logs (entity_type, entity_id, action, old_values, new_values, actor, created_at)
SELECT 'devx.projects', md5('p' || (1 + k % :projects))::uuid::text, 'update',
       jsonb_build_object('name', 'project ' || k), jsonb_build_object('name', 'renamed ' || k),
       'user:' || md5('u1')::uuid, b.lo + (b.hi - b.lo) * ((k - 0.5) / :rows)
  FROM partbench.bounds b, generate_series(1, :rows) k;

-- The unpartitioned copy, indexed before its rows go in (in time order), so
-- that its indexes grew the way the partitions' did: built by inserts, not
-- packed by CREATE INDEX, and the sizes compare.
CREATE TABLE devx.audit_logs_flat (LIKE devx.audit_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY);
ALTER TABLE devx.audit_logs_flat ADD CONSTRAINT audit_logs_flat_pkey PRIMARY KEY (id, created_at);
DO $$
DECLARE
    def text;
BEGIN
    FOR def IN SELECT pg_get_indexdef(indexrelid) FROM pg_index
                WHERE indrelid = 'devx.audit_logs'::regclass AND NOT indisprimary LOOP
        EXECUTE regexp_replace(def, '^CREATE (UNIQUE )?INDEX (\S+) ON ONLY devx\.audit_logs ',
                               'CREATE \1INDEX flat_\2 ON devx.audit_logs_flat ');
    END LOOP;
END
$$;
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT partition_name FROM devx.history_partition_bounds('devx.audit_logs') ORDER BY range_start LOOP
        EXECUTE format('INSERT INTO devx.audit_logs_flat OVERRIDING SYSTEM VALUE SELECT * FROM devx.%I ORDER BY created_at, id',
                       p.partition_name);
    END LOOP;
END
$$;
SELECT setval(pg_get_serial_sequence('devx.audit_logs_flat', 'id'), (SELECT max(id) FROM devx.audit_logs_flat));
DO $$
BEGIN
    IF (SELECT array_agg(regexp_replace(pg_get_indexdef(indexrelid), '^.* USING ', '') ORDER BY 1) FROM pg_index
         WHERE indrelid = 'devx.audit_logs_flat'::regclass)
       IS DISTINCT FROM
       (SELECT array_agg(regexp_replace(pg_get_indexdef(indexrelid), '^.* USING ', '') ORDER BY 1) FROM pg_index
         WHERE indrelid = 'devx.audit_logs'::regclass) THEN
        RAISE EXCEPTION 'devx.audit_logs_flat does not have the indexes of devx.audit_logs';
    END IF;
END
$$;

CREATE TABLE partbench.oldest AS
SELECT a.* FROM devx.audit_logs a, partbench.bounds b WHERE a.created_at < b.oldest_hi;

-- Makes `which` ('partitioned' or 'flat') devx.audit_logs, the table the
-- audit trigger and the statements below name.
CREATE FUNCTION partbench.use_table(which text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF which = 'flat' AND to_regclass('devx.audit_logs_flat') IS NOT NULL THEN
        ALTER TABLE devx.audit_logs RENAME TO audit_logs_partitioned;
        ALTER TABLE devx.audit_logs_flat RENAME TO audit_logs;
    ELSIF which = 'partitioned' AND to_regclass('devx.audit_logs_partitioned') IS NOT NULL THEN
        ALTER TABLE devx.audit_logs RENAME TO audit_logs_flat;
        ALTER TABLE devx.audit_logs_partitioned RENAME TO audit_logs;
    END IF;
END
$$;

-- Retention before partitioning: batches of `batch` rows oldest first, each
-- its own transaction as system:retention with a 5 s lock timeout: the
-- statement devx ran (git history of src/retention/queries.rs, delete_batch,
-- with the audit_logs rule's condition and order), looped server-side (devx
-- paid a few loopback round trips more per batch).
CREATE PROCEDURE partbench.batched_delete(cutoff timestamptz, batch bigint,
                                          INOUT deleted bigint DEFAULT 0, INOUT batches int DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    LOOP
        PERFORM set_config('devx.actor', 'system:retention', true);
        PERFORM set_config('lock_timeout', '5s', true);
        DELETE FROM devx.audit_logs
         WHERE ctid = ANY(ARRAY(SELECT ctid FROM devx.audit_logs WHERE created_at < cutoff ORDER BY created_at LIMIT batch))
           AND created_at < cutoff;
        GET DIAGNOSTICS n = ROW_COUNT;
        deleted := deleted + n;
        batches := batches + 1;
        COMMIT;
        EXIT WHEN n < batch;
    END LOOP;
END
$$;

-- Heap and indexes of devx.audit_logs, partitions summed.
CREATE FUNCTION partbench.size() RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('devx.audit_logs')),
                    pg_total_relation_size('devx.audit_logs'))::bigint
$$;

VACUUM ANALYZE devx.audit_logs, devx.audit_logs_flat, devx.projects, partbench.oldest;
SELECT (SELECT count(*) FROM devx.audit_logs) AS partitioned_rows, (SELECT count(*) FROM devx.audit_logs_flat) AS flat_rows,
       (SELECT count(*) FROM partbench.oldest) AS oldest_month_rows;
