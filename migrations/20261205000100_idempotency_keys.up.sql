-- Idempotency keys: the first answer to a POST sent with an
-- `Idempotency-Key` header, kept so that a retry with the same key gets it
-- again instead of creating a second thing. Keys belong to the caller (the
-- user behind the session or API key), so two users never share one.
--
-- A row without a response is a request still running; `locked_until` is
-- its lease, after which a retry of the same request may take the key over
-- (the process that held it is gone). Rows are pruned by retention after
-- retention.idempotency_keys. Not audited: they are a cache of answers the
-- audited tables already record, and stored bodies must not be copied into
-- the trail.
CREATE TABLE devx.idempotency_keys (
    user_id          uuid NOT NULL,
    key              text NOT NULL,
    request_method   text NOT NULL,
    request_path     text NOT NULL,
    -- SHA-256 of the method, path, caller and body: a retry must match it.
    request_hash     bytea NOT NULL,
    response_status  smallint,
    response_headers jsonb,
    response_body    bytea,
    locked_until     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, key),
    CONSTRAINT idempotency_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES devx.users (id) ON DELETE CASCADE,
    CONSTRAINT idempotency_keys_key_check CHECK (key ~ '^[!-~]{1,255}$'),
    CONSTRAINT idempotency_keys_request_hash_check CHECK (octet_length(request_hash) = 32),
    CONSTRAINT idempotency_keys_response_status_check CHECK (response_status BETWEEN 100 AND 599),
    CONSTRAINT idempotency_keys_response_headers_check CHECK (jsonb_typeof(response_headers) = 'object'),
    -- Either still running (no answer yet) or done with a whole answer.
    CONSTRAINT idempotency_keys_completed_at_check CHECK (
        (completed_at IS NULL AND response_status IS NULL AND response_body IS NULL)
        OR (completed_at IS NOT NULL AND response_status IS NOT NULL AND response_body IS NOT NULL))
);
COMMENT ON TABLE devx.idempotency_keys IS 'First answers to POSTs sent with an Idempotency-Key, replayed to retries';
COMMENT ON COLUMN devx.idempotency_keys.locked_until IS 'While running: when a retry may take the key over';
CREATE INDEX idempotency_keys_created_at_idx ON devx.idempotency_keys (created_at);

INSERT INTO devx.system_config (key, value, description) VALUES
    ('retention.idempotency_keys', '"24 hours"', 'How long idempotency keys and their stored answers are kept')
ON CONFLICT (key) DO NOTHING;
