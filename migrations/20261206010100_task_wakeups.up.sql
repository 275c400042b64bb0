-- Wake-ups instead of polling, for claims that wait and live log streams.
-- A task that becomes claimable (created, retried, handed back) or an
-- execution that stops running (a slot under a limit frees up) notifies
-- `devx_tasks`, where claims that wait listen.
-- PostgreSQL folds identical notifications of one transaction into one.

CREATE FUNCTION devx.notify_tasks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('devx_tasks', '');
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION devx.notify_tasks() IS 'AFTER row trigger: NOTIFY devx_tasks (claims waiting for work listen there)';

CREATE TRIGGER tasks_notify_pending AFTER INSERT OR UPDATE OF status ON devx.tasks
    FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION devx.notify_tasks();
CREATE TRIGGER task_executions_notify_ended AFTER UPDATE OF status ON devx.task_executions
    FOR EACH ROW WHEN (OLD.status = 'running' AND NEW.status <> 'running') EXECUTE FUNCTION devx.notify_tasks();

-- Live log streams: an append (which moves last_log_seq) or the end of an
-- execution notifies `devx_logs` with the execution's id.
CREATE FUNCTION devx.notify_logs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('devx_logs', NEW.id::text);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION devx.notify_logs() IS 'AFTER row trigger: NOTIFY devx_logs with the execution id (log streams listen there)';

CREATE TRIGGER task_executions_notify_logs AFTER UPDATE OF last_log_seq, status ON devx.task_executions
    FOR EACH ROW WHEN (OLD.last_log_seq <> NEW.last_log_seq OR OLD.status <> NEW.status)
    EXECUTE FUNCTION devx.notify_logs();
