-- Unqualified names find devx's tables: a psql session (or a query written
-- as `SELECT * FROM project_contexts`) on this database searches devx, then
-- templates, then public. devx's own SQL is schema-qualified and does not
-- depend on it. The setting applies to sessions that start after this.
--
-- ALTER DATABASE needs the database's owner (or a superuser); a role that
-- may migrate but does not own the database gets a warning saying what to
-- run instead, and the migration still applies.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET search_path = devx, templates, public', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'search_path not set: % does not own database %; as its owner run: ALTER DATABASE % SET search_path = devx, templates, public',
        current_user, current_database(), quote_ident(current_database());
END;
$$;
