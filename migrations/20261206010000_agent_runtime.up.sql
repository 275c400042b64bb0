-- An agent runtime that survives crashes: an execution holds a lease that
-- its agent renews (heartbeats, log appends) and that the reaper inside
-- `serve` ends when it expires; a task carries its attempts, the history of
-- their errors and when it may run next; an optional unique key makes task
-- creation idempotent among a project's open tasks.

ALTER TABLE devx.tasks
    ADD COLUMN attempt       integer NOT NULL DEFAULT 0,
    ADD COLUMN max_attempts  integer NOT NULL DEFAULT 3,
    ADD COLUMN errors        jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN run_after     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN lease_seconds integer,
    ADD COLUMN unique_key    text,
    ADD CONSTRAINT tasks_attempt_check CHECK (attempt >= 0),
    ADD CONSTRAINT tasks_max_attempts_check CHECK (max_attempts BETWEEN 1 AND 100),
    ADD CONSTRAINT tasks_errors_check CHECK (jsonb_typeof(errors) = 'array'),
    ADD CONSTRAINT tasks_lease_seconds_check CHECK (lease_seconds BETWEEN 1 AND 3600),
    ADD CONSTRAINT tasks_unique_key_check CHECK (char_length(unique_key) BETWEEN 1 AND 200);
COMMENT ON COLUMN devx.tasks.attempt IS 'executions started since the task was created or last retried';
COMMENT ON COLUMN devx.tasks.errors IS 'one entry per failed attempt: {at, execution_id, attempt, reason, message}';
COMMENT ON COLUMN devx.tasks.run_after IS 'a claim takes the task only from then on (backoff after a failed attempt)';
COMMENT ON COLUMN devx.tasks.lease_seconds IS 'the lease of its executions; NULL: agents.lease_seconds';
-- One open task per unique key and project: a webhook delivered twice creates one task.
CREATE UNIQUE INDEX tasks_unique_key_key ON devx.tasks (project_id, unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('pending', 'in_progress');

ALTER TABLE devx.task_executions
    ADD COLUMN attempt          integer NOT NULL DEFAULT 1,
    ADD COLUMN lease_seconds    integer NOT NULL DEFAULT 60,
    ADD COLUMN lease_expires_at timestamptz,
    ADD COLUMN log_bytes        bigint NOT NULL DEFAULT 0,
    ADD COLUMN log_truncated    boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT task_executions_attempt_check CHECK (attempt >= 1),
    ADD CONSTRAINT task_executions_log_bytes_check CHECK (log_bytes >= 0),
    ADD CONSTRAINT task_executions_lease_seconds_check CHECK (lease_seconds BETWEEN 1 AND 3600);
COMMENT ON COLUMN devx.task_executions.log_bytes IS 'bytes of log messages appended; capped by agents.max_log_bytes';
COMMENT ON COLUMN devx.task_executions.log_truncated IS 'an append went past agents.max_log_bytes and was refused';
COMMENT ON COLUMN devx.task_executions.lease_expires_at IS
    'a running execution not renewed by then is lost: the reaper fails it and hands its task on';
-- The reaper's two questions: whose lease ran out, and who ran too long.
CREATE INDEX task_executions_running_lease_idx ON devx.task_executions (lease_expires_at)
    WHERE status = 'running';
CREATE INDEX task_executions_running_started_at_idx ON devx.task_executions (started_at)
    WHERE status = 'running';

-- Renewing a lease and counting log bytes are bookkeeping: heartbeats and
-- appends would otherwise flood the audit trail. The function is the
-- foundation's with lease_expires_at and log_bytes added to the noise.
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
