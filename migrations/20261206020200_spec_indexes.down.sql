-- devx:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS devx.modifications_project_id_status_idx;
DROP INDEX CONCURRENTLY IF EXISTS devx.projects_owner_id_status_idx;
DROP INDEX CONCURRENTLY IF EXISTS devx.modifications_test_results_idx;
DROP INDEX CONCURRENTLY IF EXISTS devx.modifications_impact_analysis_idx;
DROP INDEX CONCURRENTLY IF EXISTS devx.project_contexts_environment_vars_idx;
DROP INDEX CONCURRENTLY IF EXISTS devx.project_contexts_codebase_keys_idx;
