-- Environment variables, one row each, owned by a project or a service.
-- The value is sealed by the application (XChaCha20-Poly1305 under the
-- DEVX_SECRET_KEY key whose id is in value_key_id, associated data
-- `devx.env_vars.value_sealed:<id>`), so SQL never sees it; the audit
-- trigger redacts value_sealed by its name. `is_preview` rows override the
-- others of the same owner and key for preview deployments only.

CREATE TABLE devx.env_vars (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id   uuid,
    service_id   uuid,
    key          text NOT NULL,
    value_sealed bytea NOT NULL,
    value_key_id text NOT NULL,
    is_secret    boolean NOT NULL DEFAULT false,
    is_buildtime boolean NOT NULL DEFAULT true,
    is_runtime   boolean NOT NULL DEFAULT true,
    is_preview   boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text,
    CONSTRAINT env_vars_project_id_fkey FOREIGN KEY (project_id) REFERENCES devx.projects (id) ON DELETE CASCADE,
    CONSTRAINT env_vars_service_id_fkey FOREIGN KEY (service_id) REFERENCES devx.services (id) ON DELETE CASCADE,
    CONSTRAINT env_vars_owner_check CHECK (num_nonnulls(project_id, service_id) = 1),
    CONSTRAINT env_vars_key_check CHECK (key ~ '^[A-Za-z_][A-Za-z0-9_]*$' AND char_length(key) <= 255),
    CONSTRAINT env_vars_value_key_id_check CHECK (value_key_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    CONSTRAINT env_vars_project_id_key_key UNIQUE (project_id, key, is_preview),
    CONSTRAINT env_vars_service_id_key_key UNIQUE (service_id, key, is_preview)
);
COMMENT ON TABLE devx.env_vars IS 'environment variables of a project or a service, values sealed by the application';
COMMENT ON COLUMN devx.env_vars.value_sealed IS 'nonce || XChaCha20-Poly1305 ciphertext of the value';
COMMENT ON COLUMN devx.env_vars.value_key_id IS 'the id of the DEVX_SECRET_KEY key value_sealed is sealed under';
COMMENT ON COLUMN devx.env_vars.is_secret IS 'write-only: the value is never answered, only masked';
COMMENT ON COLUMN devx.env_vars.is_preview IS 'an override used only by preview deployments';
COMMENT ON COLUMN devx.env_vars.updated_by IS 'the audit actor of the last write';

CREATE TRIGGER env_vars_set_updated_at BEFORE UPDATE ON devx.env_vars
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER env_vars_audit AFTER INSERT OR UPDATE OR DELETE ON devx.env_vars
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();
