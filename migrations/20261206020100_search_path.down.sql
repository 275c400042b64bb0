DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I RESET search_path', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'search_path not reset: % does not own database %', current_user, current_database();
END;
$$;
