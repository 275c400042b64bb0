-- The audit trigger and the append-only guard, made ready for what comes next:
--
-- * A value devx seals (any column ending in `_sealed`), a column named
--   `secret`, and any `_hash` column are redacted in the trail, as password
--   and token hashes already were: the trail is readable by administrators and
--   kept for months, so it must never hold a secret in any form.
-- * A row trigger on a partitioned table fires on the partition. Both
--   functions name the partitioned table (the one users and queries know), not
--   the partition a row happens to live in.
--
-- Later migrations that need another redacted column name it by suffix and
-- leave these functions alone.

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

CREATE OR REPLACE FUNCTION devx.refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: its rows are written once and never changed',
        devx.trigger_table_name(TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME)
        USING ERRCODE = 'feature_not_supported';
END;
$$;

CREATE OR REPLACE FUNCTION devx.audit_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    noise      constant text[] := ARRAY['updated_at', 'last_login', 'last_activity', 'last_used_at', 'last_log_seq',
                                        'lease_expires_at', 'log_bytes'];
    secrets    constant text[] := ARRAY['db_connection_info', 'environment_vars', 'secret'];
    key_column text := coalesce(TG_ARGV[0], 'id');
    old_row    jsonb;
    new_row    jsonb;
    entity     text;
    col        text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        new_row := to_jsonb(NEW);
        entity := new_row ->> key_column;
    ELSIF TG_OP = 'DELETE' THEN
        old_row := to_jsonb(OLD);
        entity := old_row ->> key_column;
    ELSE
        SELECT jsonb_object_agg(o.k, o.v), jsonb_object_agg(n.k, n.v)
          INTO old_row, new_row
          FROM jsonb_each(to_jsonb(OLD)) AS o(k, v)
          JOIN jsonb_each(to_jsonb(NEW)) AS n(k, v) ON n.k = o.k
         WHERE o.v IS DISTINCT FROM n.v
           AND o.k <> ALL (noise);
        IF old_row IS NULL THEN
            RETURN NULL;  -- nothing but bookkeeping changed
        END IF;
        entity := to_jsonb(NEW) ->> key_column;
    END IF;

    FOR col IN
        SELECT k FROM jsonb_object_keys(coalesce(new_row, old_row)) AS k
         WHERE k = ANY (secrets) OR k LIKE '%\_hash' OR k LIKE '%\_sealed'
    LOOP
        IF old_row ? col AND jsonb_typeof(old_row -> col) <> 'null' THEN
            old_row := jsonb_set(old_row, ARRAY[col], '"[redacted]"');
        END IF;
        IF new_row ? col AND jsonb_typeof(new_row -> col) <> 'null' THEN
            new_row := jsonb_set(new_row, ARRAY[col], '"[redacted]"');
        END IF;
    END LOOP;

    INSERT INTO devx.audit_logs (entity_type, entity_id, action, old_values, new_values, actor)
    VALUES (devx.trigger_table_name(TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME), coalesce(entity, ''), lower(TG_OP),
            old_row, new_row, devx.current_actor());
    RETURN NULL;
END;
$$;
