-- The overall result the CI system reports when it sets a validation's
-- status (`PUT /api/pr-validations/{id}/status`): an object such as
-- {overall_score, checks_passed, checks_failed}. Kept apart from
-- validation_results, which holds one entry per check and from which the
-- status is recomputed when a check is recorded.
ALTER TABLE devx.pr_validations
    ADD COLUMN summary jsonb,
    ADD CONSTRAINT pr_validations_summary_check CHECK (jsonb_typeof(summary) = 'object');
COMMENT ON COLUMN devx.pr_validations.summary IS
    'the overall result reported with the status, e.g. {overall_score, checks_passed, checks_failed}';
