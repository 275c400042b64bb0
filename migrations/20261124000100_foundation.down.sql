DROP TABLE devx.system_config;
DROP FUNCTION devx.audit_row();
DROP TABLE devx.audit_logs;
DROP FUNCTION devx.current_actor();
DROP FUNCTION devx.set_updated_at();
DROP SCHEMA templates;
DROP SCHEMA devx;

-- The extensions go too, unless something outside devx still uses them.
DO $$
BEGIN
    BEGIN
        DROP EXTENSION IF EXISTS pg_trgm;
    EXCEPTION WHEN dependent_objects_still_exist THEN
        RAISE NOTICE 'pg_trgm kept: other objects depend on it';
    END;
    BEGIN
        DROP EXTENSION IF EXISTS pgcrypto;
    EXCEPTION WHEN dependent_objects_still_exist THEN
        RAISE NOTICE 'pgcrypto kept: other objects depend on it';
    END;
END;
$$;
