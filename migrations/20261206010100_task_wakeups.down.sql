DROP TRIGGER task_executions_notify_logs ON devx.task_executions;
DROP FUNCTION devx.notify_logs();
DROP TRIGGER task_executions_notify_ended ON devx.task_executions;
DROP TRIGGER tasks_notify_pending ON devx.tasks;
DROP FUNCTION devx.notify_tasks();
