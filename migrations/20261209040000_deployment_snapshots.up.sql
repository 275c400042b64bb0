-- A deployment's configuration snapshot: the effective env vars, service
-- settings, source and resources it was queued with, sealed like every
-- other secret at rest (associated data devx.deployments.snapshot_sealed:<id>),
-- and the sha256 hex of its canonical plaintext JSON. The digest is not
-- secret (it stays when retention prunes the sealed value); the sealed
-- column is redacted from the audit trail by its name.
ALTER TABLE devx.deployments
    ADD COLUMN snapshot_sealed bytea,
    ADD COLUMN snapshot_key_id text,
    ADD COLUMN snapshot_digest text,
    ADD CONSTRAINT deployments_snapshot_sealed_check
        CHECK ((snapshot_sealed IS NULL) = (snapshot_key_id IS NULL)),
    ADD CONSTRAINT deployments_snapshot_digest_check
        CHECK (snapshot_digest ~ '^[0-9a-f]{64}$' AND snapshot_digest IS NOT NULL OR snapshot_sealed IS NULL);

-- The previous snapshot of a service and the newest N kept by retention.
CREATE INDEX deployments_service_snapshot_idx ON devx.deployments (service_id, created_at DESC, id DESC)
    WHERE snapshot_digest IS NOT NULL;

INSERT INTO devx.system_config (key, value, description)
VALUES ('deploy.keep_snapshots', '10',
        'Configuration snapshots kept per service (newest first, running ones always); older ones are pruned by retention')
ON CONFLICT (key) DO NOTHING;
