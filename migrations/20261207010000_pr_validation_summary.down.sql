ALTER TABLE devx.pr_validations DROP COLUMN summary;
