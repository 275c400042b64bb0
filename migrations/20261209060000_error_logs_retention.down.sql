DELETE FROM devx.system_config WHERE key = 'retention.error_logs';
