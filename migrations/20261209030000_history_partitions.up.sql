-- The history tables become range-partitioned by time, so that retention
-- drops a whole expired partition (a catalog operation, whatever its size)
-- instead of deleting its rows in batches.
--
--   devx.audit_logs            created_at
--   devx.execution_logs        logged_at
--   devx.deployment_log_lines  time
--   devx.activity_logs         created_at
--   devx.error_logs            created_at
--
-- Each table is rebuilt under its own name with the same columns, defaults,
-- checks, comments, indexes, foreign keys and triggers; its rows are copied
-- and its identity sequence continues where it was. A primary key of a
-- partitioned table must include the partition column, so:
--
-- * audit_logs, activity_logs: (id, created_at). id comes from the identity
--   sequence only (GENERATED ALWAYS), so it stays unique without an index.
-- * error_logs: (id, created_at). id is gen_random_uuid() and no statement
--   ever sets it from input; lookups by id probe each partition's key index.
-- * execution_logs (execution_id, seq, logged_at) and deployment_log_lines
--   (deployment_id, seq, time): the rule that (log, seq) is unique is no
--   longer an index. It stays true because the writer allocates seqs under
--   the owning row's lock (`UPDATE ... SET last_log_seq = last_log_seq + n`,
--   the deployment's the same way) before inserting. The key index begins
--   with (log, seq), so a tail by `seq > $after` is an index scan in each
--   partition.
--
-- No foreign key points to these tables (error_logs included: nothing
-- references an error log row), so none has to carry the time column. Their
-- own foreign keys (to users, tasks, executions, deployments) stay: a
-- partitioned table may reference a plain one.
--
-- Partitions are monthly by default (`retention.partition_interval.<table>`
-- = "day" for daily), named <table>_pYYYYMM (or _pYYYYMMDD), in UTC, plus a
-- <table>_default partition for a row no partition covers (a time far in the
-- past or the future, or before the maintenance job created one).
-- devx.create_history_partitions(ahead) creates the current period and
-- `ahead` more for every table; the retention run calls it first.

-- The range [range_start, range_end) each partition of a history table
-- covers (the DEFAULT partition is left out).
CREATE FUNCTION devx.history_partition_bounds(parent regclass)
RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text,
           substring(pg_catalog.pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']+)''\)')::timestamptz,
           substring(pg_catalog.pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz
      FROM pg_catalog.pg_inherits i
      JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = parent
       AND pg_catalog.pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
$$;
COMMENT ON FUNCTION devx.history_partition_bounds(regclass) IS 'The time range of each partition of a history table, DEFAULT left out';

-- Creates the partition of devx.<tbl> (partitioned by <col>) holding `at`,
-- one `unit` ('month' or 'day', in UTC) long; false when one already covers
-- that range (or part of it, after the interval changed). Rows for the range
-- that landed in the DEFAULT partition are moved into the new partition.
CREATE FUNCTION devx.create_history_partition(tbl text, col text, at timestamptz, unit text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lo_utc timestamp := date_trunc(unit, at AT TIME ZONE 'UTC');
    lo timestamptz := lo_utc AT TIME ZONE 'UTC';
    hi timestamptz := (lo_utc + ('1 ' || unit)::interval) AT TIME ZONE 'UTC';
    name text := tbl || '_p' || to_char(lo_utc, CASE unit WHEN 'day' THEN 'YYYYMMDD' ELSE 'YYYYMM' END);
BEGIN
    IF unit NOT IN ('month', 'day') THEN
        RAISE EXCEPTION 'partition interval must be month or day, not %', unit;
    END IF;
    IF to_regclass(format('devx.%I', name)) IS NOT NULL
       OR EXISTS (SELECT 1 FROM devx.history_partition_bounds(format('devx.%I', tbl)::regclass) b
                   WHERE b.range_start < hi AND b.range_end > lo) THEN
        RETURN false;
    END IF;
    -- Created apart and attached, so that rows already in DEFAULT for this
    -- range can move first (a plain CREATE ... PARTITION OF would refuse).
    EXECUTE format('CREATE TABLE devx.%I (LIKE devx.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name, tbl);
    IF to_regclass(format('devx.%I', tbl || '_default')) IS NOT NULL THEN
        EXECUTE format('WITH moved AS (DELETE FROM devx.%I WHERE %I >= %L AND %I < %L RETURNING *)
                        INSERT INTO devx.%I SELECT * FROM moved',
                       tbl || '_default', col, lo, col, hi, name);
    END IF;
    EXECUTE format('ALTER TABLE devx.%I ATTACH PARTITION devx.%I FOR VALUES FROM (%L) TO (%L)', tbl, name, lo, hi);
    RETURN true;
END
$$;
COMMENT ON FUNCTION devx.create_history_partition(text, text, timestamptz, text) IS
    'Creates the partition of a history table holding a time (month or day, UTC); false when one covers it';

-- The history tables, their time column and configured interval.
CREATE FUNCTION devx.history_tables() RETURNS TABLE (table_name text, column_name text, unit text)
LANGUAGE sql STABLE AS $$
    SELECT t.table_name, t.column_name,
           coalesce((SELECT c.value #>> '{}' FROM devx.system_config c
                      WHERE c.key = 'retention.partition_interval.' || t.table_name
                        AND c.value #>> '{}' IN ('month', 'day')), 'month')
      FROM (VALUES ('audit_logs', 'created_at'), ('execution_logs', 'logged_at'),
                   ('deployment_log_lines', 'time'), ('activity_logs', 'created_at'),
                   ('error_logs', 'created_at')) AS t (table_name, column_name)
$$;
COMMENT ON FUNCTION devx.history_tables() IS 'The range-partitioned history tables, their time column and partition interval';

-- Idempotent: the current period and `ahead` more of every history table.
CREATE FUNCTION devx.create_history_partitions(ahead int) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
    created int := 0;
BEGIN
    FOR t IN SELECT * FROM devx.history_tables() LOOP
        FOR i IN 0 .. greatest(ahead, 0) LOOP
            IF devx.create_history_partition(t.table_name, t.column_name,
                                             now() + (i || ' ' || t.unit)::interval, t.unit) THEN
                created := created + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;
COMMENT ON FUNCTION devx.create_history_partitions(int) IS
    'Creates the partitions of every history table for the current period and `ahead` more; idempotent';

-- Detaches and drops one range partition of a history table. The retention
-- run calls it; it may serve as a role that owns no table (`devx db grants`),
-- which could not detach or drop, and it can remove no more than that role's
-- DELETE could: only a partition of a history table, never the DEFAULT one.
-- A plain DETACH: DETACH ... CONCURRENTLY cannot run inside a transaction
-- and is refused on a table with a DEFAULT partition.
CREATE FUNCTION devx.drop_history_partition(tbl text, partition_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM devx.history_tables() t WHERE t.table_name = tbl)
       OR NOT EXISTS (SELECT 1 FROM devx.history_partition_bounds(format('devx.%I', tbl)::regclass) b
                       WHERE b.partition_name = drop_history_partition.partition_name) THEN
        RAISE EXCEPTION 'devx.% is not a range partition of history table devx.%', partition_name, tbl;
    END IF;
    EXECUTE format('ALTER TABLE devx.%I DETACH PARTITION devx.%I', tbl, partition_name);
    EXECUTE format('DROP TABLE devx.%I', partition_name);
END
$$;
COMMENT ON FUNCTION devx.drop_history_partition(text, text) IS
    'Detaches and drops one range partition of a history table (retention)';

-- Rebuilds devx.<tbl> as a table partitioned by <col> with the primary key
-- <pk>: the indexes, foreign keys, triggers and comments are read from the
-- table before it is renamed, and recreated on the new one.
CREATE FUNCTION pg_temp.partition_history_table(tbl text, col text, pk text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    old text := tbl || '_unpartitioned';
    path text := current_setting('search_path');
    ddl text[];
    stmt text;
    seq text;
    last bigint;
    called boolean;
    m timestamptz;
BEGIN
    -- Definitions rendered schema-qualified, whatever the search path.
    PERFORM set_config('search_path', 'pg_catalog', true);
    SELECT array_agg(d ORDER BY o, d) INTO ddl FROM (
        SELECT 1 AS o, pg_get_indexdef(i.indexrelid) AS d
          FROM pg_index i WHERE i.indrelid = format('devx.%I', tbl)::regclass AND NOT i.indisprimary
        UNION ALL
        SELECT 2, format('ALTER TABLE devx.%I ADD CONSTRAINT %I %s', tbl, c.conname, pg_get_constraintdef(c.oid))
          FROM pg_constraint c WHERE c.conrelid = format('devx.%I', tbl)::regclass AND c.contype = 'f'
        UNION ALL
        SELECT 3, pg_get_triggerdef(g.oid)
          FROM pg_trigger g WHERE g.tgrelid = format('devx.%I', tbl)::regclass AND NOT g.tgisinternal
        UNION ALL
        SELECT 4, format('COMMENT ON TABLE devx.%I IS %L', tbl, obj_description(format('devx.%I', tbl)::regclass, 'pg_class'))
         WHERE obj_description(format('devx.%I', tbl)::regclass, 'pg_class') IS NOT NULL
    ) defs;
    PERFORM set_config('search_path', path, true);

    EXECUTE format('ALTER TABLE devx.%I RENAME TO %I', tbl, old);
    -- Free the index and sequence names for the new table.
    FOR stmt IN
        SELECT CASE WHEN i.indisprimary
                    THEN format('ALTER TABLE devx.%I DROP CONSTRAINT %I', old, c.relname)
                    ELSE format('DROP INDEX devx.%I', c.relname) END
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE i.indrelid = format('devx.%I', old)::regclass
    LOOP
        EXECUTE stmt;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = format('devx.%I', old)::regclass
                                            AND attname = 'id' AND attidentity <> '') THEN
        seq := pg_get_serial_sequence(format('devx.%I', old), 'id');
    END IF;
    IF seq IS NOT NULL THEN
        EXECUTE format('SELECT last_value, is_called FROM %s', seq) INTO last, called;
        EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', seq, old || '_id_seq');
    END IF;

    EXECUTE format('CREATE TABLE devx.%I (LIKE devx.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY
                    INCLUDING COMMENTS, CONSTRAINT %I PRIMARY KEY (%s)) PARTITION BY RANGE (%I)',
                   tbl, old, tbl || '_pkey', pk, col);
    EXECUTE format('CREATE TABLE devx.%I PARTITION OF devx.%I DEFAULT', tbl || '_default', tbl);
    FOR m IN EXECUTE format('SELECT DISTINCT date_trunc(''month'', %I AT TIME ZONE ''UTC'') AT TIME ZONE ''UTC''
                               FROM devx.%I', col, old) LOOP
        PERFORM devx.create_history_partition(tbl, col, m, 'month');
    END LOOP;
    FOR i IN 0 .. 2 LOOP
        PERFORM devx.create_history_partition(tbl, col, now() + (i || ' month')::interval, 'month');
    END LOOP;
    EXECUTE format('INSERT INTO devx.%I OVERRIDING SYSTEM VALUE SELECT * FROM devx.%I', tbl, old);
    IF seq IS NOT NULL THEN
        PERFORM setval(pg_get_serial_sequence(format('devx.%I', tbl), 'id'), last, called);
    END IF;
    EXECUTE format('DROP TABLE devx.%I', old);
    FOREACH stmt IN ARRAY coalesce(ddl, '{}') LOOP
        EXECUTE stmt;
    END LOOP;
END
$$;

DROP VIEW devx.error_summary;
DROP VIEW devx.recent_activity;

SELECT pg_temp.partition_history_table('audit_logs', 'created_at', 'id, created_at');
SELECT pg_temp.partition_history_table('execution_logs', 'logged_at', 'execution_id, seq, logged_at');
SELECT pg_temp.partition_history_table('deployment_log_lines', 'time', 'deployment_id, seq, "time"');
SELECT pg_temp.partition_history_table('activity_logs', 'created_at', 'id, created_at');
SELECT pg_temp.partition_history_table('error_logs', 'created_at', 'id, created_at');

DROP FUNCTION pg_temp.partition_history_table(text, text, text);

-- Per error type.
CREATE VIEW devx.error_summary AS
SELECT l.error_type,
       count(*)                               AS error_count,
       count(*) FILTER (WHERE NOT l.resolved) AS unresolved,
       count(*) FILTER (WHERE l.resolved)     AS resolved,
       round(avg(l.recovery_attempts), 2)     AS avg_recovery_attempts,
       max(l.created_at)                      AS last_seen
  FROM devx.error_logs l
 GROUP BY l.error_type;

-- The audit trail of the last 7 days, newest first.
CREATE VIEW devx.recent_activity AS
SELECT a.id,
       a.entity_type,
       a.entity_id,
       a.action,
       a.actor,
       a.old_values,
       a.new_values,
       a.created_at
  FROM devx.audit_logs a
 WHERE a.created_at > now() - interval '7 days'
 ORDER BY a.created_at DESC, a.id DESC;
