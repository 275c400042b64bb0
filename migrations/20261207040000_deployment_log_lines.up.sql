-- Deploy log lines: one row per line, append-only (written once, never
-- changed; deleted only by a cascade from the deployment and retention).
-- `seq` numbers a deployment's lines from 1 without gaps. `bytes_through`
-- is the running total of the deployment's text bytes up to and including
-- the line, so the log's size (for its cap) is read from its last line by
-- the primary key, whatever its length, without a counter on the audited
-- deployments row. Appends to one deployment are serialised by a
-- transaction-scoped advisory lock on it.

CREATE TABLE devx.deployment_log_lines (
    deployment_id uuid NOT NULL,
    seq           bigint NOT NULL,
    stream        text NOT NULL DEFAULT 'stdout',
    time          timestamptz NOT NULL DEFAULT now(),
    text          text NOT NULL,
    bytes_through bigint NOT NULL,
    CONSTRAINT deployment_log_lines_pkey PRIMARY KEY (deployment_id, seq),
    CONSTRAINT deployment_log_lines_deployment_id_fkey FOREIGN KEY (deployment_id)
        REFERENCES devx.deployments (id) ON DELETE CASCADE,
    CONSTRAINT deployment_log_lines_seq_check CHECK (seq > 0),
    CONSTRAINT deployment_log_lines_stream_check CHECK (stream IN ('stdout', 'stderr', 'system')),
    CONSTRAINT deployment_log_lines_bytes_through_check CHECK (bytes_through >= 0)
);
COMMENT ON TABLE devx.deployment_log_lines IS 'deploy log lines, append-only; secret values are masked before they are stored';
COMMENT ON COLUMN devx.deployment_log_lines.bytes_through IS 'octets of text of the deployment''s lines 1..seq';

-- Retention deletes old lines in batches by time.
CREATE INDEX deployment_log_lines_time_idx ON devx.deployment_log_lines (time);

CREATE TRIGGER deployment_log_lines_append_only BEFORE UPDATE ON devx.deployment_log_lines
    FOR EACH ROW EXECUTE FUNCTION devx.refuse_update();

-- Live deploy log streams: an append (once per statement and deployment)
-- or a deployment's status change notifies `devx_deploy_logs` with its id.
CREATE FUNCTION devx.notify_deployment_log_lines() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('devx_deploy_logs', d.deployment_id::text)
       FROM (SELECT DISTINCT deployment_id FROM new_lines) d;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION devx.notify_deployment_log_lines() IS 'AFTER INSERT statement trigger: NOTIFY devx_deploy_logs with each deployment id appended to';
CREATE TRIGGER deployment_log_lines_notify AFTER INSERT ON devx.deployment_log_lines
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION devx.notify_deployment_log_lines();

CREATE FUNCTION devx.notify_deployment_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('devx_deploy_logs', NEW.id::text);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION devx.notify_deployment_status() IS 'AFTER row trigger: NOTIFY devx_deploy_logs with the deployment id (deploy log streams end when it is final)';
CREATE TRIGGER deployments_notify_logs AFTER UPDATE OF status ON devx.deployments
    FOR EACH ROW WHEN (OLD.status <> NEW.status)
    EXECUTE FUNCTION devx.notify_deployment_status();

INSERT INTO devx.system_config (key, value, description) VALUES
    ('retention.deployment_logs', '"90 days"', 'How long deployment log lines are kept')
ON CONFLICT (key) DO NOTHING;
