-- Foundation: extensions, schemas, shared trigger functions, the audit trail
-- and system configuration.

CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE SCHEMA devx;
COMMENT ON SCHEMA devx IS 'devx: accounts, projects, runtime, agents, configuration and audit';
CREATE SCHEMA templates;
COMMENT ON SCHEMA templates IS 'devx: the template catalog';

-- updated_at is kept by the database, so no code path can forget it.
CREATE FUNCTION devx.set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION devx.set_updated_at() IS 'BEFORE UPDATE trigger: sets NEW.updated_at to now()';

-- Who is changing things: set per transaction by the application with
-- set_config('devx.actor', 'user:<uuid>', true); otherwise the database role.
CREATE FUNCTION devx.current_actor() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('devx.actor', true), ''), 'db:' || session_user)
$$;
COMMENT ON FUNCTION devx.current_actor() IS 'The audit actor: the devx.actor setting of the transaction, else db:<session user>';

CREATE TABLE devx.audit_logs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity_type text NOT NULL,
    entity_id   text NOT NULL,
    action      text NOT NULL,
    old_values  jsonb,
    new_values  jsonb,
    actor       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_logs_action_check CHECK (action IN ('insert', 'update', 'delete'))
);
COMMENT ON TABLE devx.audit_logs IS 'Every change to audited tables, written by devx.audit_row()';
CREATE INDEX audit_logs_entity_type_entity_id_created_at_idx
    ON devx.audit_logs (entity_type, entity_id, created_at DESC);
CREATE INDEX audit_logs_created_at_idx ON devx.audit_logs (created_at DESC);
CREATE INDEX audit_logs_actor_created_at_idx ON devx.audit_logs (actor, created_at DESC);

-- AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW. The optional trigger
-- argument names the key column (default 'id').
-- On UPDATE only changed columns are recorded, bookkeeping columns are left
-- out, and an update that changed nothing but bookkeeping is not recorded.
-- Secrets are never copied into the trail: non-null values of hash,
-- connection and environment columns become "[redacted]".
CREATE FUNCTION devx.audit_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    noise      constant text[] := ARRAY['updated_at', 'last_login', 'last_activity', 'last_used_at', 'last_log_seq'];
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
COMMENT ON FUNCTION devx.audit_row() IS 'AFTER row trigger writing devx.audit_logs; argument: key column (default id)';

CREATE TABLE devx.system_config (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL,
    description text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT system_config_key_check CHECK (key ~ '^[a-z0-9_]+(\.[a-z0-9_]+)*$')
);
COMMENT ON TABLE devx.system_config IS 'Runtime settings: key -> JSON value';

INSERT INTO devx.system_config (key, value, description) VALUES
    ('retention.chat_messages',           '"6 months"', 'How long chat messages are kept'),
    ('retention.container_metadata',      '"1 year"',   'How long container records are kept'),
    ('retention.file_records',            '"1 year"',   'How long file records are kept'),
    ('retention.user_data',               '"7 years"',  'How long user data is kept (closed accounts are purged after this)'),
    ('retention.batch_size',              '1000',       'Rows deleted per retention batch'),
    ('agents.max_concurrent_executions',  '10',         'Task executions that may run at the same time'),
    ('agents.execution_timeout_seconds',  '3600',       'A running task execution older than this is considered failed'),
    ('errors.max_recovery_attempts',      '3',          'Automatic recovery attempts before an error needs a person')
ON CONFLICT (key) DO NOTHING;

CREATE TRIGGER system_config_set_updated_at BEFORE UPDATE ON devx.system_config
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER system_config_audit AFTER INSERT OR UPDATE OR DELETE ON devx.system_config
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row('key');
