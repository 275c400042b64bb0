-- Who filed a PR validation or an error log, and what recovery attempts
-- found. A row tied to a task is visible to the owner of the task's project;
-- a row tied to no task is visible to the user who filed it (and to admins).

ALTER TABLE devx.pr_validations ADD COLUMN created_by uuid;
ALTER TABLE devx.pr_validations ADD CONSTRAINT pr_validations_created_by_fkey
    FOREIGN KEY (created_by) REFERENCES devx.users (id) ON DELETE SET NULL;
CREATE INDEX pr_validations_created_by_idx ON devx.pr_validations (created_by);

ALTER TABLE devx.error_logs ADD COLUMN created_by uuid;
ALTER TABLE devx.error_logs ADD CONSTRAINT error_logs_created_by_fkey
    FOREIGN KEY (created_by) REFERENCES devx.users (id) ON DELETE SET NULL;
CREATE INDEX error_logs_created_by_idx ON devx.error_logs (created_by);

-- One entry per recovery attempt: {attempt, outcome, details, at}. Bounded by
-- the errors.max_recovery_attempts setting, which the API enforces.
ALTER TABLE devx.error_logs ADD COLUMN recovery_log jsonb NOT NULL DEFAULT '[]';
ALTER TABLE devx.error_logs ADD CONSTRAINT error_logs_recovery_log_check CHECK (jsonb_typeof(recovery_log) = 'array');
