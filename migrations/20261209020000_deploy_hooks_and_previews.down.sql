DELETE FROM devx.system_config
 WHERE key IN ('retention.webhook_deliveries', 'deploy.previews_per_service', 'deploy.preview_ttl_hours');
DROP TABLE devx.preview_deployments;
DROP TABLE devx.webhook_deliveries;
DROP TABLE devx.service_deploy_tokens;
