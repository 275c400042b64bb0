ALTER TABLE devx.error_logs DROP COLUMN recovery_log;
DROP INDEX devx.error_logs_created_by_idx;
ALTER TABLE devx.error_logs DROP COLUMN created_by;
DROP INDEX devx.pr_validations_created_by_idx;
ALTER TABLE devx.pr_validations DROP COLUMN created_by;
