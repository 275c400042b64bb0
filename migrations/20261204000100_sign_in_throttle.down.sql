DELETE FROM devx.system_config WHERE key = 'retention.sign_in_throttle';
DROP TABLE devx.sign_in_throttle;
