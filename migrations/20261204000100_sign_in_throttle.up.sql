-- Failed sign-ins, counted in the database so that every devx process
-- behind a load balancer shares them and a restart does not reset them.
-- One row per throttled key: `account:<email, lower case>` (a person's
-- account, tight limit), `address:<ip>` (where the attempts come from, a
-- much higher limit, so an attack on one account does not lock out its
-- neighbours behind the same NAT), `register:<ip>` (sign-ups from one place).
CREATE TABLE devx.sign_in_throttle (
    key               text PRIMARY KEY,
    failures          integer NOT NULL DEFAULT 0,
    window_started_at timestamptz NOT NULL DEFAULT now(),
    last_failure_at   timestamptz NOT NULL DEFAULT now(),
    locked_until      timestamptz,
    -- Lockouts in a row: each doubles the next one's length.
    lockouts          integer NOT NULL DEFAULT 0,
    CONSTRAINT sign_in_throttle_key_check CHECK (key ~ '^(account|address|register):.+$'),
    CONSTRAINT sign_in_throttle_failures_check CHECK (failures >= 0 AND lockouts >= 0)
);
COMMENT ON TABLE devx.sign_in_throttle IS 'Failed sign-ins per account and per address; lockouts are audited';
CREATE INDEX sign_in_throttle_last_failure_at_idx ON devx.sign_in_throttle (last_failure_at);

-- The counters change on every failed attempt; the trail records what
-- matters: a lockout beginning or ending, and an unlock (delete).
CREATE TRIGGER sign_in_throttle_audit_lockout AFTER UPDATE ON devx.sign_in_throttle
    FOR EACH ROW WHEN (OLD.locked_until IS DISTINCT FROM NEW.locked_until AND NEW.locked_until > now())
    EXECUTE FUNCTION devx.audit_row('key');
CREATE TRIGGER sign_in_throttle_audit_first_lockout AFTER INSERT ON devx.sign_in_throttle
    FOR EACH ROW WHEN (NEW.locked_until IS NOT NULL)
    EXECUTE FUNCTION devx.audit_row('key');
CREATE TRIGGER sign_in_throttle_audit_unlock AFTER DELETE ON devx.sign_in_throttle
    FOR EACH ROW WHEN (OLD.locked_until IS NOT NULL)
    EXECUTE FUNCTION devx.audit_row('key');

INSERT INTO devx.system_config (key, value, description) VALUES
    ('retention.sign_in_throttle', '"1 day"', 'How long failed sign-in counters are kept after the last failure')
ON CONFLICT (key) DO NOTHING;
