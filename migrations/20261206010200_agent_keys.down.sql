ALTER TABLE devx.task_executions DROP COLUMN started_by;
ALTER TABLE devx.api_keys DROP COLUMN agent_type;
