DELETE FROM devx.system_config WHERE key = 'retention.activity_logs';
DROP TABLE devx.activity_logs;
