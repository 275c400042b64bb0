-- Application events that change no row of their own: a sign-in, a
-- sign-out, a failed sign-in, a lockout, an API key's first use, a
-- generation started. Written by the code path that does them (in the same
-- transaction as the event where there is one); append-only like the audit
-- trail, and pruned by retention (`retention.activity_logs`), which records
-- one audit row per run with the count.

CREATE TABLE devx.activity_logs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- The account concerned; none for a failed sign-in with an unknown email
    -- or a lockout of a client address.
    user_id     uuid,
    -- `user:<id>`, `user:<id> apikey:<id>`, or `anonymous`.
    actor       text NOT NULL,
    action      text NOT NULL,
    ip_address  inet,
    user_agent  text,
    details     jsonb NOT NULL DEFAULT '{}',
    -- A purged account takes its activity with it (an append-only row can
    -- be deleted, never set to NULL).
    CONSTRAINT activity_logs_user_id_fkey FOREIGN KEY (user_id) REFERENCES devx.users (id) ON DELETE CASCADE,
    CONSTRAINT activity_logs_action_check CHECK (action IN (
        'sign_in', 'sign_out', 'sign_in_failed', 'lockout', 'api_key_first_use', 'generation_started')),
    CONSTRAINT activity_logs_actor_check CHECK (length(actor) BETWEEN 1 AND 200),
    CONSTRAINT activity_logs_user_agent_check CHECK (length(user_agent) <= 1000),
    CONSTRAINT activity_logs_details_check CHECK (jsonb_typeof(details) = 'object')
);
COMMENT ON TABLE devx.activity_logs IS 'Application events (sign-in, sign-out, failures, lockouts, first key use, generations started); append-only';

-- The list is newest first, by itself or per user or action; retention
-- deletes oldest first.
CREATE INDEX activity_logs_created_at_idx ON devx.activity_logs (created_at DESC, id DESC);
CREATE INDEX activity_logs_user_id_created_at_idx ON devx.activity_logs (user_id, created_at DESC, id DESC);
CREATE INDEX activity_logs_action_created_at_idx ON devx.activity_logs (action, created_at DESC, id DESC);

CREATE TRIGGER activity_logs_append_only BEFORE UPDATE ON devx.activity_logs
    FOR EACH ROW EXECUTE FUNCTION devx.refuse_update();

INSERT INTO devx.system_config (key, value, description) VALUES
    ('retention.activity_logs', '"1 year"', 'How long activity log rows (sign-ins, failures, lockouts...) are kept')
ON CONFLICT (key) DO NOTHING;
