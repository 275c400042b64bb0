\set ON_ERROR_STOP on
VACUUM ANALYZE;

-- The retention job inside `devx serve` would delete the older chat messages
-- and audit rows mid-benchmark: off in this database.
UPDATE devx.system_config SET value = 'false' WHERE key = 'retention.enabled';
