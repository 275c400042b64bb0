-- Restores trigger_table_name() as a SQL function (planned at every call).

CREATE OR REPLACE FUNCTION devx.trigger_table_name(relid oid, schema_name text, table_name text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT pn.nspname || '.' || pc.relname
           FROM pg_catalog.pg_inherits i
           JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
           JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
          WHERE i.inhrelid = relid
            AND (SELECT c.relispartition FROM pg_catalog.pg_class c WHERE c.oid = relid)),
        schema_name || '.' || table_name)
$$;
COMMENT ON FUNCTION devx.trigger_table_name(oid, text, text) IS
    'The table a row trigger speaks for: the partitioned table when it fires on a partition';
