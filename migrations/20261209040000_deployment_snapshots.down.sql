DELETE FROM devx.system_config WHERE key = 'deploy.keep_snapshots';
DROP INDEX devx.deployments_service_snapshot_idx;
ALTER TABLE devx.deployments
    DROP CONSTRAINT deployments_snapshot_digest_check,
    DROP CONSTRAINT deployments_snapshot_sealed_check,
    DROP COLUMN snapshot_digest,
    DROP COLUMN snapshot_key_id,
    DROP COLUMN snapshot_sealed;
