-- The history tables become plain tables again, with every row, their
-- original primary keys, and their identity sequences continuing.

CREATE FUNCTION pg_temp.unpartition_history_table(tbl text, pk text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    old text := tbl || '_partitioned';
    path text := current_setting('search_path');
    ddl text[];
    stmt text;
    seq text;
    last bigint;
    called boolean;
BEGIN
    PERFORM set_config('search_path', 'pg_catalog', true);
    SELECT array_agg(d ORDER BY o, d) INTO ddl FROM (
        SELECT 1 AS o, replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ') AS d
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
        EXECUTE format('SELECT last_value, is_called FROM %s', seq) INTO last, called;
        EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', seq, old || '_id_seq');
    END IF;

    EXECUTE format('CREATE TABLE devx.%I (LIKE devx.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY
                    INCLUDING COMMENTS, CONSTRAINT %I PRIMARY KEY (%s))',
                   tbl, old, tbl || '_pkey', pk);
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

SELECT pg_temp.unpartition_history_table('audit_logs', 'id');
SELECT pg_temp.unpartition_history_table('execution_logs', 'execution_id, seq');
SELECT pg_temp.unpartition_history_table('deployment_log_lines', 'deployment_id, seq');
SELECT pg_temp.unpartition_history_table('activity_logs', 'id');
SELECT pg_temp.unpartition_history_table('error_logs', 'id');

DROP FUNCTION pg_temp.unpartition_history_table(text, text);
DROP FUNCTION devx.drop_history_partition(text, text);
DROP FUNCTION devx.create_history_partitions(int);
DROP FUNCTION devx.history_tables();
DROP FUNCTION devx.create_history_partition(text, text, timestamptz, text);
DROP FUNCTION devx.history_partition_bounds(regclass);

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
