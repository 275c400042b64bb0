-- CI/CD and agents: tasks, their executions and log lines, pull-request
-- validations, errors.

CREATE TABLE devx.tasks (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id     uuid NOT NULL,
    parent_task_id uuid,
    title          text NOT NULL,
    description    text,
    requirements   jsonb NOT NULL DEFAULT '{}',
    status         text NOT NULL DEFAULT 'pending',
    priority       integer NOT NULL DEFAULT 0,
    created_by     uuid,
    assigned_to    uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_id_project_key UNIQUE (id, project_id),
    CONSTRAINT tasks_project_id_fkey FOREIGN KEY (project_id) REFERENCES devx.projects (id) ON DELETE CASCADE,
    -- A subtask lives in its parent's project.
    CONSTRAINT tasks_parent_task_id_project_id_fkey FOREIGN KEY (parent_task_id, project_id)
        REFERENCES devx.tasks (id, project_id) ON DELETE CASCADE,
    CONSTRAINT tasks_parent_task_id_check CHECK (parent_task_id <> id),
    CONSTRAINT tasks_title_check CHECK (char_length(btrim(title)) BETWEEN 1 AND 500),
    CONSTRAINT tasks_requirements_check CHECK (jsonb_typeof(requirements) = 'object'),
    CONSTRAINT tasks_status_check CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled')),
    CONSTRAINT tasks_priority_check CHECK (priority BETWEEN 0 AND 10),
    CONSTRAINT tasks_created_by_fkey FOREIGN KEY (created_by) REFERENCES devx.users (id) ON DELETE SET NULL,
    CONSTRAINT tasks_assigned_to_fkey FOREIGN KEY (assigned_to) REFERENCES devx.users (id) ON DELETE SET NULL
);
COMMENT ON COLUMN devx.tasks.priority IS '0 (lowest) .. 10 (highest)';
CREATE INDEX tasks_status_priority_created_at_idx ON devx.tasks (status, priority DESC, created_at);
CREATE INDEX tasks_project_id_created_at_id_idx ON devx.tasks (project_id, created_at DESC, id DESC);
CREATE INDEX tasks_parent_task_id_project_id_idx ON devx.tasks (parent_task_id, project_id);
CREATE INDEX tasks_created_by_idx ON devx.tasks (created_by);
CREATE INDEX tasks_assigned_to_status_idx ON devx.tasks (assigned_to, status);
CREATE INDEX tasks_requirements_idx ON devx.tasks USING gin (requirements jsonb_path_ops);
CREATE TRIGGER tasks_set_updated_at BEFORE UPDATE ON devx.tasks
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER tasks_audit AFTER INSERT OR UPDATE OR DELETE ON devx.tasks
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

CREATE TABLE devx.task_executions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id       uuid NOT NULL,
    agent_type    text NOT NULL,
    agent_config  jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'pending',
    error_details jsonb,
    started_at    timestamptz,
    completed_at  timestamptz,
    last_log_seq  bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_executions_task_id_fkey FOREIGN KEY (task_id) REFERENCES devx.tasks (id) ON DELETE CASCADE,
    CONSTRAINT task_executions_agent_type_check CHECK (agent_type ~ '^[a-z][a-z0-9_-]{0,49}$'),
    CONSTRAINT task_executions_agent_config_check CHECK (jsonb_typeof(agent_config) = 'object'),
    CONSTRAINT task_executions_status_check CHECK (status IN ('pending', 'running', 'completed', 'failed',
                                                              'cancelled')),
    CONSTRAINT task_executions_completed_at_check CHECK (completed_at >= started_at),
    CONSTRAINT task_executions_last_log_seq_check CHECK (last_log_seq >= 0)
);
COMMENT ON COLUMN devx.task_executions.agent_type IS 'claude-code, codegen, webhook-handler, validation-engine, ...';
COMMENT ON COLUMN devx.task_executions.last_log_seq IS 'seq of the last line in devx.execution_logs; bump it to append';
CREATE INDEX task_executions_task_id_created_at_idx ON devx.task_executions (task_id, created_at DESC);
CREATE INDEX task_executions_status_idx ON devx.task_executions (status);
CREATE INDEX task_executions_agent_type_idx ON devx.task_executions (agent_type);
CREATE TRIGGER task_executions_set_updated_at BEFORE UPDATE ON devx.task_executions
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER task_executions_audit AFTER INSERT OR UPDATE OR DELETE ON devx.task_executions
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

-- One row per log line: appending is an insert, not a rewrite of a growing array.
CREATE TABLE devx.execution_logs (
    execution_id uuid NOT NULL,
    seq          bigint NOT NULL,
    level        text NOT NULL DEFAULT 'info',
    message      text NOT NULL,
    logged_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT execution_logs_pkey PRIMARY KEY (execution_id, seq),
    CONSTRAINT execution_logs_execution_id_fkey FOREIGN KEY (execution_id)
        REFERENCES devx.task_executions (id) ON DELETE CASCADE,
    CONSTRAINT execution_logs_seq_check CHECK (seq > 0),
    CONSTRAINT execution_logs_level_check CHECK (level IN ('trace', 'debug', 'info', 'warn', 'error'))
);

CREATE TABLE devx.pr_validations (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id            uuid,
    execution_id       uuid,
    pr_number          integer NOT NULL,
    repository         text NOT NULL,
    branch_name        text,
    status             text NOT NULL DEFAULT 'pending',
    validation_results jsonb NOT NULL DEFAULT '{}',
    webhook_payload    jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pr_validations_task_id_fkey FOREIGN KEY (task_id) REFERENCES devx.tasks (id) ON DELETE CASCADE,
    CONSTRAINT pr_validations_execution_id_fkey FOREIGN KEY (execution_id)
        REFERENCES devx.task_executions (id) ON DELETE SET NULL,
    CONSTRAINT pr_validations_pr_number_check CHECK (pr_number > 0),
    CONSTRAINT pr_validations_repository_check CHECK (char_length(btrim(repository)) BETWEEN 1 AND 255),
    CONSTRAINT pr_validations_status_check CHECK (status IN ('pending', 'running', 'passed', 'failed', 'cancelled')),
    CONSTRAINT pr_validations_validation_results_check CHECK (jsonb_typeof(validation_results) = 'object')
);
COMMENT ON COLUMN devx.pr_validations.repository IS 'owner/name';
COMMENT ON COLUMN devx.pr_validations.validation_results IS 'check name -> result, one entry per check';
CREATE INDEX pr_validations_repository_pr_number_idx ON devx.pr_validations (repository, pr_number);
CREATE INDEX pr_validations_task_id_idx ON devx.pr_validations (task_id);
CREATE INDEX pr_validations_execution_id_idx ON devx.pr_validations (execution_id);
CREATE INDEX pr_validations_status_created_at_idx ON devx.pr_validations (status, created_at DESC);
CREATE TRIGGER pr_validations_set_updated_at BEFORE UPDATE ON devx.pr_validations
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER pr_validations_audit AFTER INSERT OR UPDATE OR DELETE ON devx.pr_validations
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

CREATE TABLE devx.error_logs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_id           uuid,
    execution_id      uuid,
    error_type        text NOT NULL,
    message           text NOT NULL,
    stack             text,
    context           jsonb NOT NULL DEFAULT '{}',
    recovery_attempts integer NOT NULL DEFAULT 0,
    resolved          boolean NOT NULL DEFAULT false,
    resolved_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT error_logs_task_id_fkey FOREIGN KEY (task_id) REFERENCES devx.tasks (id) ON DELETE SET NULL,
    CONSTRAINT error_logs_execution_id_fkey FOREIGN KEY (execution_id)
        REFERENCES devx.task_executions (id) ON DELETE SET NULL,
    CONSTRAINT error_logs_error_type_check CHECK (error_type IN ('database', 'api', 'validation', 'network', 'timeout',
                                                                 'authentication', 'authorization', 'system')),
    CONSTRAINT error_logs_context_check CHECK (jsonb_typeof(context) = 'object'),
    CONSTRAINT error_logs_recovery_attempts_check CHECK (recovery_attempts >= 0),
    CONSTRAINT error_logs_resolved_at_check CHECK (resolved_at IS NULL OR resolved)
);
CREATE INDEX error_logs_task_id_idx ON devx.error_logs (task_id);
CREATE INDEX error_logs_execution_id_idx ON devx.error_logs (execution_id);
CREATE INDEX error_logs_error_type_created_at_idx ON devx.error_logs (error_type, created_at DESC);
CREATE INDEX error_logs_created_at_idx ON devx.error_logs (created_at DESC);
CREATE INDEX error_logs_unresolved_created_at_idx ON devx.error_logs (created_at DESC) WHERE NOT resolved;
