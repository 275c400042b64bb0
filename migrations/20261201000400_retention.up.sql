-- devx:no-transaction
-- Retention: the settings the retention job reads besides the ones the
-- foundation seeded, and an index so that deleting old execution log lines
-- in batches does not scan the whole table.
--
-- Outside a transaction so that the index is built CONCURRENTLY: appends to
-- devx.execution_logs go on while it is built. Every statement is safe to run
-- again.

INSERT INTO devx.system_config (key, value, description) VALUES
    ('retention.execution_logs', '"90 days"', 'How long task execution log lines are kept'),
    ('retention.audit_logs',     '"1 year"',  'How long audit trail rows are kept'),
    ('retention.interval',       '"1 hour"',  'How often the retention job inside devx serve runs'),
    ('retention.enabled',        'true',      'Whether devx serve runs the retention job (devx retention run works either way)')
ON CONFLICT (key) DO NOTHING;

-- An append-only table's timestamp grows with its insertion order: each new
-- entry goes to the rightmost leaf, so appending stays as cheap as before.
CREATE INDEX CONCURRENTLY IF NOT EXISTS execution_logs_logged_at_idx ON devx.execution_logs (logged_at);
