-- The audit trigger names the table a row belongs to with trigger_table_name(), once per
-- audited row. As a SQL function it was not inlined (its body has subqueries), and PostgreSQL
-- plans a non-inlined SQL function's body at every call: about 0.25 ms of the 0.3-0.5 ms the
-- audit trigger took per row (a project's create writes two audited rows). PL/pgSQL keeps the
-- plan of its query for the session: the same lookup, a few microseconds.

CREATE OR REPLACE FUNCTION devx.trigger_table_name(relid oid, schema_name text, table_name text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    parent text;
BEGIN
    SELECT pn.nspname || '.' || pc.relname
      INTO parent
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid
      JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
      JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
     WHERE c.oid = relid AND c.relispartition;
    RETURN coalesce(parent, schema_name || '.' || table_name);
END;
$$;
COMMENT ON FUNCTION devx.trigger_table_name(oid, text, text) IS
    'The table a row trigger speaks for: the partitioned table when it fires on a partition';
