-- devx:no-transaction
-- The indexes the projects design lists that devx lacked: GIN on the JSON
-- documents queried by containment or key (a context's environment, a
-- modification's impact analysis and test results), the codebase index
-- serving the key-exists operators (`?`, `?|`, `?&`) as well as `@>`
-- (jsonb_ops: keys are indexed too, long values by their hash), and the
-- composites for a user's projects by status and a project's
-- modifications by status.
--
-- Outside a transaction so that each index is built CONCURRENTLY, writes
-- going on meanwhile. Every statement is safe to run again.

CREATE INDEX CONCURRENTLY IF NOT EXISTS project_contexts_codebase_keys_idx
    ON devx.project_contexts USING gin (codebase);
-- The jsonb_path_ops index served only `@>`, which the new one serves too.
DROP INDEX CONCURRENTLY IF EXISTS devx.project_contexts_codebase_idx;
ALTER INDEX IF EXISTS devx.project_contexts_codebase_keys_idx RENAME TO project_contexts_codebase_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS project_contexts_environment_vars_idx
    ON devx.project_contexts USING gin (environment_vars);
CREATE INDEX CONCURRENTLY IF NOT EXISTS modifications_impact_analysis_idx
    ON devx.modifications USING gin (impact_analysis jsonb_path_ops);
CREATE INDEX CONCURRENTLY IF NOT EXISTS modifications_test_results_idx
    ON devx.modifications USING gin (test_results jsonb_path_ops);
CREATE INDEX CONCURRENTLY IF NOT EXISTS projects_owner_id_status_idx ON devx.projects (owner_id, status);
CREATE INDEX CONCURRENTLY IF NOT EXISTS modifications_project_id_status_idx ON devx.modifications (project_id, status);
