-- The shared schedule of the periodic jobs inside `devx serve` (retention,
-- the agents' reaper), so that any number of devx processes on one database
-- run each job once per period, not once per process.
--
-- A process claims a job's period with one conditional upsert: it moves
-- `last_started_at` to now() only when the stored one is at least the
-- interval old, and only the process whose statement did that runs the job.
-- Every other process reads when the next period is due and sleeps until
-- then.
--
-- Bookkeeping, not state of the platform: neither audited nor append-only
-- (a claim every few seconds would bury the trail); what each run changes
-- is audited where it changes it (actors `system:retention`,
-- `system:reaper`). No `updated_at`: `last_started_at` and
-- `last_finished_at` say when a row last changed.

CREATE TABLE devx.periodic_jobs (
    job              text PRIMARY KEY,
    -- The interval the last claim used (the job's setting then).
    interval_seconds double precision,
    runs             bigint NOT NULL DEFAULT 0,
    last_started_at  timestamptz,
    last_finished_at timestamptz,
    -- hostname:pid of the process that started the last run.
    last_process     text,
    -- Why the last run failed or did nothing; NULL when it succeeded (or runs).
    last_error       text,
    CONSTRAINT periodic_jobs_runs_check CHECK (runs >= 0),
    CONSTRAINT periodic_jobs_interval_seconds_check CHECK (interval_seconds > 0)
);
COMMENT ON TABLE devx.periodic_jobs IS
    'the shared schedule of the periodic jobs inside devx serve: one claim per period across every process';
COMMENT ON COLUMN devx.periodic_jobs.runs IS 'periods claimed so far (each by exactly one process)';
COMMENT ON COLUMN devx.periodic_jobs.last_finished_at IS
    'when the run started at last_started_at finished; NULL while it runs (or if its process died)';
