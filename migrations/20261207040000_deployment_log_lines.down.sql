DELETE FROM devx.system_config WHERE key = 'retention.deployment_logs';
DROP TABLE devx.deployment_log_lines;
