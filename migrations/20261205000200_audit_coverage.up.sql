-- Every change is in the audit trail: each table is either audited row by
-- row (devx.audit_row) or append-only (its rows are never changed, and the
-- only deletions are cascades from an audited parent and retention, which
-- records one audit row per run and table with the count).

CREATE FUNCTION devx.refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: its rows are written once and never changed', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'feature_not_supported';
END;
$$;
COMMENT ON FUNCTION devx.refuse_update() IS 'BEFORE UPDATE trigger of append-only tables: refuses every update';

-- Append-only: a message said, a log line written, the trail itself.
CREATE TRIGGER chat_messages_append_only BEFORE UPDATE ON devx.chat_messages
    FOR EACH ROW EXECUTE FUNCTION devx.refuse_update();
CREATE TRIGGER execution_logs_append_only BEFORE UPDATE ON devx.execution_logs
    FOR EACH ROW EXECUTE FUNCTION devx.refuse_update();
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE ON devx.audit_logs
    FOR EACH ROW EXECUTE FUNCTION devx.refuse_update();

-- Audited: rows that change after they are written. Sessions record sign-in
-- and revocation (their token hash is redacted; touches are bookkeeping).
CREATE TRIGGER file_storage_audit AFTER INSERT OR UPDATE OR DELETE ON devx.file_storage
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();
CREATE TRIGGER generation_history_audit AFTER INSERT OR UPDATE OR DELETE ON devx.generation_history
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();
CREATE TRIGGER error_logs_audit AFTER INSERT OR UPDATE OR DELETE ON devx.error_logs
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();
CREATE TRIGGER sessions_audit AFTER INSERT OR UPDATE OR DELETE ON devx.sessions
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();
CREATE TRIGGER technologies_audit AFTER INSERT OR UPDATE OR DELETE ON templates.technologies
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();
