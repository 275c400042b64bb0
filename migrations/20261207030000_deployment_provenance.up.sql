-- Deployments record where they came from and how their rollout went:
-- the commit, who or what triggered them (the actor as the audit trail
-- names it), when the build started and the rollout finished, why it
-- failed, and for a rollback the deployment it restores. They wait for a
-- build slot as `queued` and can be `cancelled`; `pending` (the former
-- start status) becomes `queued`. Sealed values name the key they are
-- sealed under (`DEVX_SECRET_KEY` may list several); values sealed before
-- key ids existed were sealed under the one key, whose id is `default`.

ALTER TABLE devx.deployments
    ADD COLUMN commit_sha text,
    ADD COLUMN commit_message text,
    ADD COLUMN branch text,
    ADD COLUMN trigger text NOT NULL DEFAULT 'manual',
    ADD COLUMN triggered_by text,
    ADD COLUMN started_at timestamptz,
    ADD COLUMN finished_at timestamptz,
    ADD COLUMN error_message text,
    ADD COLUMN rollback_of uuid,
    ADD COLUMN db_connection_info_key_id text,
    ADD COLUMN environment_vars_key_id text;

ALTER TABLE devx.deployments DROP CONSTRAINT deployments_status_check;

UPDATE devx.deployments d
   SET triggered_by = coalesce(
           (SELECT a.actor FROM devx.audit_logs a
             WHERE a.entity_type = 'devx.deployments' AND a.entity_id = d.id::text AND a.action = 'insert'
             ORDER BY a.created_at, a.id LIMIT 1),
           'unknown'),
       status = CASE WHEN d.status = 'pending' THEN 'queued' ELSE d.status END,
       db_connection_info_key_id = CASE WHEN d.db_connection_info IS NOT NULL THEN 'default' END,
       environment_vars_key_id = CASE WHEN d.environment_vars IS NOT NULL THEN 'default' END;

ALTER TABLE devx.deployments
    ALTER COLUMN triggered_by SET NOT NULL,
    ALTER COLUMN triggered_by SET DEFAULT devx.current_actor(),
    ALTER COLUMN status SET DEFAULT 'queued',
    ADD CONSTRAINT deployments_status_check CHECK (status IN ('queued', 'building', 'deploying', 'running',
                                                              'stopped', 'failed', 'cancelled')),
    ADD CONSTRAINT deployments_trigger_check CHECK (trigger IN ('manual', 'api', 'webhook', 'pull_request',
                                                                'rollback', 'redeploy')),
    ADD CONSTRAINT deployments_triggered_by_check CHECK (char_length(triggered_by) BETWEEN 1 AND 200),
    ADD CONSTRAINT deployments_commit_sha_check CHECK (commit_sha ~ '^[0-9A-Fa-f]{7,64}$'),
    ADD CONSTRAINT deployments_commit_message_check CHECK (char_length(commit_message) BETWEEN 1 AND 10000),
    ADD CONSTRAINT deployments_branch_check CHECK (char_length(branch) BETWEEN 1 AND 255),
    ADD CONSTRAINT deployments_error_message_check CHECK (char_length(error_message) BETWEEN 1 AND 10000),
    ADD CONSTRAINT deployments_rollback_of_fkey FOREIGN KEY (rollback_of)
        REFERENCES devx.deployments (id) ON DELETE SET NULL,
    ADD CONSTRAINT deployments_db_connection_info_key_id_check
        CHECK ((db_connection_info IS NULL) = (db_connection_info_key_id IS NULL)
               AND db_connection_info_key_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    ADD CONSTRAINT deployments_environment_vars_key_id_check
        CHECK ((environment_vars IS NULL) = (environment_vars_key_id IS NULL)
               AND environment_vars_key_id ~ '^[A-Za-z0-9_-]{1,64}$');

COMMENT ON COLUMN devx.deployments.triggered_by IS 'the actor that created it, as the audit trail names actors (by default the transaction''s audit actor)';
COMMENT ON COLUMN devx.deployments.db_connection_info_key_id IS 'the id of the DEVX_SECRET_KEY key db_connection_info is sealed under';
COMMENT ON COLUMN devx.deployments.environment_vars_key_id IS 'the id of the DEVX_SECRET_KEY key environment_vars is sealed under';

CREATE INDEX deployments_rollback_of_idx ON devx.deployments (rollback_of);
-- The queue in order, and the builds that hold a slot.
CREATE INDEX deployments_queued_idx ON devx.deployments (created_at, id) WHERE status = 'queued';
CREATE INDEX deployments_building_idx ON devx.deployments (project_id) WHERE status = 'building';
