-- devx:no-transaction
-- The indexes the projects design lists that devx lacked: GIN on the JSON
-- documents queried by containment or key (a context's environment, a
-- modification's impact analysis and test results), a codebase index
-- serving the key-exists operators (`?`, `?|`, `?&`; jsonb_ops: keys are
-- indexed too, long values by their hash), and the
-- composites for a user's projects by status and a project's
-- modifications by status.
--
-- Outside a transaction so that each index is built CONCURRENTLY, writes
-- going on meanwhile. Every statement is safe to run again.

-- A second index on the codebase: the jsonb_path_ops one stays for `@>`,
-- where the planner finds it much more selective than a jsonb_ops index
-- (measured: with 5,000 contexts it chose a sequential scan over jsonb_ops).
CREATE INDEX CONCURRENTLY IF NOT EXISTS project_contexts_codebase_keys_idx
    ON devx.project_contexts USING gin (codebase);

CREATE INDEX CONCURRENTLY IF NOT EXISTS project_contexts_environment_vars_idx
    ON devx.project_contexts USING gin (environment_vars);
CREATE INDEX CONCURRENTLY IF NOT EXISTS modifications_impact_analysis_idx
    ON devx.modifications USING gin (impact_analysis jsonb_path_ops);
CREATE INDEX CONCURRENTLY IF NOT EXISTS modifications_test_results_idx
    ON devx.modifications USING gin (test_results jsonb_path_ops);
CREATE INDEX CONCURRENTLY IF NOT EXISTS projects_owner_id_status_idx ON devx.projects (owner_id, status);
CREATE INDEX CONCURRENTLY IF NOT EXISTS modifications_project_id_status_idx ON devx.modifications (project_id, status);
