DROP VIEW devx.recent_activity;
DROP VIEW devx.error_summary;
DROP VIEW devx.pr_validation_summary;
DROP VIEW devx.task_execution_summary;
DROP VIEW devx.active_tasks;
DROP VIEW devx.user_projects;
DROP VIEW devx.active_containers;
