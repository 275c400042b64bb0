-- Deploy webhooks and pull-request previews.
--
-- * service_deploy_tokens: one per service. GitLab sends the token itself
--   (compared by its SHA-256, `token_hash`); GitHub signs the body with it
--   (HMAC-SHA256), which needs the token itself: so it is also kept sealed
--   (`token_sealed`, XChaCha20-Poly1305 under DEVX_SECRET_KEY, like the
--   deployments' secrets). The audit trail redacts both by their names.
-- * webhook_deliveries: every delivery accepted, append-only, unique per
--   (service, provider, delivery id) so that a replay creates nothing twice
--   and is answered what the first delivery was.
-- * preview_deployments: a pull request's live preview, at most one live
--   per (service, pull request).

CREATE TABLE devx.service_deploy_tokens (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    service_id          uuid NOT NULL,
    token_hash          text NOT NULL,
    token_sealed        bytea,
    token_sealed_key_id text,
    created_by          text NOT NULL,
    last_used_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT service_deploy_tokens_service_id_fkey FOREIGN KEY (service_id)
        REFERENCES devx.services (id) ON DELETE CASCADE,
    CONSTRAINT service_deploy_tokens_service_id_key UNIQUE (service_id),
    CONSTRAINT service_deploy_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT service_deploy_tokens_token_hash_check CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT service_deploy_tokens_token_sealed_check CHECK ((token_sealed IS NULL) = (token_sealed_key_id IS NULL))
);
COMMENT ON TABLE devx.service_deploy_tokens IS 'a service''s deploy webhook token: its SHA-256, and the token sealed for checking HMAC signatures';
COMMENT ON COLUMN devx.service_deploy_tokens.token_sealed IS 'encrypted by the application (HMAC needs the token itself); NULL only in rows written outside devx (sample data), whose token then checks GitLab deliveries only';
COMMENT ON COLUMN devx.service_deploy_tokens.created_by IS 'the audit actor that created or last regenerated it';
CREATE TRIGGER service_deploy_tokens_set_updated_at BEFORE UPDATE ON devx.service_deploy_tokens
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER service_deploy_tokens_audit AFTER INSERT OR UPDATE OR DELETE ON devx.service_deploy_tokens
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

CREATE TABLE devx.webhook_deliveries (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    service_id    uuid NOT NULL,
    provider      text NOT NULL,
    delivery_id   text NOT NULL,
    event         text NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL,
    answer        jsonb NOT NULL,
    -- What the delivery created; no foreign key, since the deployment may be
    -- deleted later and this row is never changed.
    deployment_id uuid,
    CONSTRAINT webhook_deliveries_service_id_fkey FOREIGN KEY (service_id)
        REFERENCES devx.services (id) ON DELETE CASCADE,
    CONSTRAINT webhook_deliveries_delivery_id_key UNIQUE (service_id, provider, delivery_id),
    CONSTRAINT webhook_deliveries_provider_check CHECK (provider IN ('github', 'gitlab')),
    CONSTRAINT webhook_deliveries_status_check CHECK (status IN ('deployment_queued', 'preview_deployed',
                                                                 'preview_closed', 'ignored')),
    CONSTRAINT webhook_deliveries_delivery_id_check CHECK (char_length(delivery_id) BETWEEN 1 AND 200),
    CONSTRAINT webhook_deliveries_event_check CHECK (char_length(event) BETWEEN 1 AND 200),
    CONSTRAINT webhook_deliveries_answer_check CHECK (jsonb_typeof(answer) = 'object')
);
COMMENT ON TABLE devx.webhook_deliveries IS 'deploy webhook deliveries accepted, append-only; a replayed delivery id is answered from here';
-- Retention deletes old deliveries in batches by time.
CREATE INDEX webhook_deliveries_received_at_idx ON devx.webhook_deliveries (received_at);
CREATE TRIGGER webhook_deliveries_append_only BEFORE UPDATE ON devx.webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION devx.refuse_update();

CREATE TABLE devx.preview_deployments (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    service_id    uuid NOT NULL,
    pr_number     integer NOT NULL,
    pr_url        text,
    branch        text NOT NULL,
    head_sha      text NOT NULL,
    status        text NOT NULL DEFAULT 'live',
    url           text,
    deployment_id uuid,
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT preview_deployments_service_id_fkey FOREIGN KEY (service_id)
        REFERENCES devx.services (id) ON DELETE CASCADE,
    CONSTRAINT preview_deployments_deployment_id_fkey FOREIGN KEY (deployment_id)
        REFERENCES devx.deployments (id) ON DELETE SET NULL,
    CONSTRAINT preview_deployments_pr_number_check CHECK (pr_number > 0),
    CONSTRAINT preview_deployments_status_check CHECK (status IN ('live', 'expired', 'closed')),
    CONSTRAINT preview_deployments_head_sha_check CHECK (head_sha ~ '^[0-9A-Fa-f]{7,64}$'),
    CONSTRAINT preview_deployments_branch_check CHECK (char_length(branch) BETWEEN 1 AND 255),
    CONSTRAINT preview_deployments_pr_url_check CHECK (char_length(pr_url) <= 2048),
    CONSTRAINT preview_deployments_url_check CHECK (char_length(url) <= 2048)
);
COMMENT ON TABLE devx.preview_deployments IS 'a pull request''s preview deployment; live until closed, expired by time or by the per-service cap';
CREATE UNIQUE INDEX preview_deployments_live_pr_number_key ON devx.preview_deployments (service_id, pr_number)
    WHERE status = 'live';
CREATE INDEX preview_deployments_service_id_created_at_idx
    ON devx.preview_deployments (service_id, created_at DESC, id DESC);
CREATE INDEX preview_deployments_deployment_id_idx ON devx.preview_deployments (deployment_id);
-- The retention run marks live previews past expires_at.
CREATE INDEX preview_deployments_live_expires_at_idx ON devx.preview_deployments (expires_at) WHERE status = 'live';
CREATE TRIGGER preview_deployments_set_updated_at BEFORE UPDATE ON devx.preview_deployments
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER preview_deployments_audit AFTER INSERT OR UPDATE OR DELETE ON devx.preview_deployments
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

INSERT INTO devx.system_config (key, value, description) VALUES
    ('retention.webhook_deliveries', '"30 days"', 'How long deploy webhook deliveries (and their replay answers) are kept'),
    ('deploy.previews_per_service', '5', 'Live pull-request previews per service; opening one more expires the oldest'),
    ('deploy.preview_ttl_hours', '168', 'Hours a pull-request preview lives after it was last deployed')
ON CONFLICT (key) DO NOTHING;
