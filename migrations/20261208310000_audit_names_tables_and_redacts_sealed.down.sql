-- Restores the audit trigger and the append-only guard as they were before.

CREATE OR REPLACE FUNCTION devx.refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: its rows are written once and never changed', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'feature_not_supported';
END;
$$;

CREATE OR REPLACE FUNCTION devx.audit_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    noise      constant text[] := ARRAY['updated_at', 'last_login', 'last_activity', 'last_used_at', 'last_log_seq',
                                        'lease_expires_at', 'log_bytes'];
    secrets    constant text[] := ARRAY['password_hash', 'token_hash', 'key_hash', 'db_connection_info', 'environment_vars'];
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

    FOREACH col IN ARRAY secrets LOOP
        IF old_row ? col AND jsonb_typeof(old_row -> col) <> 'null' THEN
            old_row := jsonb_set(old_row, ARRAY[col], '"[redacted]"');
        END IF;
        IF new_row ? col AND jsonb_typeof(new_row -> col) <> 'null' THEN
            new_row := jsonb_set(new_row, ARRAY[col], '"[redacted]"');
        END IF;
    END LOOP;

    INSERT INTO devx.audit_logs (entity_type, entity_id, action, old_values, new_values, actor)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, coalesce(entity, ''), lower(TG_OP),
            old_row, new_row, devx.current_actor());
    RETURN NULL;
END;
$$;

DROP FUNCTION devx.trigger_table_name(oid, text, text);
