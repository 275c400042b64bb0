DELETE FROM devx.system_config WHERE key = 'retention.idempotency_keys';
DROP TABLE devx.idempotency_keys;
