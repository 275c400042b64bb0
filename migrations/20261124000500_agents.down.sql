DROP TABLE devx.error_logs;
DROP TABLE devx.pr_validations;
DROP TABLE devx.execution_logs;
DROP TABLE devx.task_executions;
DROP TABLE devx.tasks;
