-- Accounts: users, sessions, API keys.

CREATE TABLE devx.users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    name          text,
    avatar_url    text,
    password_hash text,
    plan_type     text NOT NULL DEFAULT 'free',
    role          text NOT NULL DEFAULT 'user',
    is_active     boolean NOT NULL DEFAULT true,
    last_login    timestamptz,
    deleted_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_check CHECK (position('@' in email) > 1),
    CONSTRAINT users_plan_type_check CHECK (plan_type IN ('free', 'personal', 'team', 'enterprise')),
    CONSTRAINT users_role_check CHECK (role IN ('user', 'admin'))
);
COMMENT ON COLUMN devx.users.password_hash IS 'argon2id PHC string; NULL for external sign-in';
COMMENT ON COLUMN devx.users.deleted_at IS 'Account closed at; purged after retention.user_data';
CREATE UNIQUE INDEX users_email_lower_key ON devx.users (lower(email));
CREATE INDEX users_created_at_id_idx ON devx.users (created_at DESC, id DESC);
CREATE INDEX users_deleted_at_idx ON devx.users (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON devx.users
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER users_audit AFTER INSERT OR UPDATE OR DELETE ON devx.users
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

CREATE TABLE devx.sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL,
    token_hash    bytea NOT NULL,
    expires_at    timestamptz NOT NULL,
    last_activity timestamptz NOT NULL DEFAULT now(),
    ip_address    inet,
    user_agent    text,
    is_active     boolean NOT NULL DEFAULT true,
    revoked_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES devx.users (id) ON DELETE CASCADE,
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash),
    CONSTRAINT sessions_token_hash_check CHECK (octet_length(token_hash) = 32)
);
COMMENT ON COLUMN devx.sessions.token_hash IS 'SHA-256 of the session token; the token itself is never stored';
CREATE INDEX sessions_user_id_created_at_idx ON devx.sessions (user_id, created_at DESC);
CREATE INDEX sessions_expires_at_idx ON devx.sessions (expires_at);

CREATE TABLE devx.api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL,
    name         text NOT NULL,
    prefix       text NOT NULL,
    key_hash     bytea NOT NULL,
    scopes       text[] NOT NULL DEFAULT '{read}',
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES devx.users (id) ON DELETE CASCADE,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_key_hash_check CHECK (octet_length(key_hash) = 32),
    CONSTRAINT api_keys_name_check CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT api_keys_prefix_check CHECK (char_length(prefix) BETWEEN 1 AND 32),
    CONSTRAINT api_keys_scopes_check CHECK (scopes <@ ARRAY['read', 'write', 'admin']::text[] AND cardinality(scopes) > 0)
);
COMMENT ON COLUMN devx.api_keys.key_hash IS 'SHA-256 of the key; the key is shown once, at creation';
CREATE INDEX api_keys_user_id_created_at_idx ON devx.api_keys (user_id, created_at DESC, id DESC);
CREATE TRIGGER api_keys_audit AFTER INSERT OR UPDATE OR DELETE ON devx.api_keys
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();
