-- Error logs get a retention period like the other history tables: their
-- partitions (devx.error_logs is range-partitioned by created_at) are
-- dropped once their whole range is older than it, plus the grace.
-- Resolved or not: an error nobody looked at for this long is history too.
INSERT INTO devx.system_config (key, value, description) VALUES
    ('retention.error_logs', '"90 days"', 'How long error logs are kept, resolved or not')
ON CONFLICT (key) DO NOTHING;
