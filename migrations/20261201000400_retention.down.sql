-- devx:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS devx.execution_logs_logged_at_idx;

DELETE FROM devx.system_config
 WHERE key IN ('retention.execution_logs', 'retention.audit_logs', 'retention.interval', 'retention.enabled');
