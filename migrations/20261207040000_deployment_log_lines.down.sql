DELETE FROM devx.system_config WHERE key = 'retention.deployment_logs';
DROP TRIGGER deployments_notify_logs ON devx.deployments;
DROP FUNCTION devx.notify_deployment_status();
DROP TABLE devx.deployment_log_lines;
DROP FUNCTION devx.notify_deployment_log_lines();
