-- devx:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS devx.modifications_project_id_status_idx;
DROP INDEX CONCURRENTLY IF EXISTS devx.projects_owner_id_status_idx;
DROP INDEX CONCURRENTLY IF EXISTS devx.modifications_test_results_idx;
DROP INDEX CONCURRENTLY IF EXISTS devx.modifications_impact_analysis_idx;
DROP INDEX CONCURRENTLY IF EXISTS devx.project_contexts_environment_vars_idx;
CREATE INDEX CONCURRENTLY IF NOT EXISTS project_contexts_codebase_path_idx
    ON devx.project_contexts USING gin (codebase jsonb_path_ops);
DROP INDEX CONCURRENTLY IF EXISTS devx.project_contexts_codebase_idx;
ALTER INDEX IF EXISTS devx.project_contexts_codebase_path_idx RENAME TO project_contexts_codebase_idx;
