DROP TRIGGER technologies_audit ON templates.technologies;
DROP TRIGGER sessions_audit ON devx.sessions;
DROP TRIGGER error_logs_audit ON devx.error_logs;
DROP TRIGGER generation_history_audit ON devx.generation_history;
DROP TRIGGER file_storage_audit ON devx.file_storage;
DROP TRIGGER audit_logs_append_only ON devx.audit_logs;
DROP TRIGGER execution_logs_append_only ON devx.execution_logs;
DROP TRIGGER chat_messages_append_only ON devx.chat_messages;
DROP FUNCTION devx.refuse_update();
