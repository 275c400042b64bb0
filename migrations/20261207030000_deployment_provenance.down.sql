DROP INDEX devx.deployments_building_idx;
DROP INDEX devx.deployments_queued_idx;
DROP INDEX devx.deployments_rollback_of_idx;
ALTER TABLE devx.deployments
    DROP CONSTRAINT deployments_status_check,
    ALTER COLUMN status SET DEFAULT 'pending';
UPDATE devx.deployments
   SET status = CASE status WHEN 'queued' THEN 'pending' WHEN 'cancelled' THEN 'failed' ELSE status END
 WHERE status IN ('queued', 'cancelled');
ALTER TABLE devx.deployments
    ADD CONSTRAINT deployments_status_check CHECK (status IN ('pending', 'building', 'deploying', 'running',
                                                              'stopped', 'failed')),
    DROP COLUMN commit_sha,
    DROP COLUMN commit_message,
    DROP COLUMN branch,
    DROP COLUMN trigger,
    DROP COLUMN triggered_by,
    DROP COLUMN started_at,
    DROP COLUMN finished_at,
    DROP COLUMN error_message,
    DROP COLUMN rollback_of,
    DROP COLUMN db_connection_info_key_id,
    DROP COLUMN environment_vars_key_id;
