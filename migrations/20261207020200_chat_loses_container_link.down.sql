DROP TRIGGER chat_messages_append_only ON devx.chat_messages;
CREATE TRIGGER chat_messages_append_only BEFORE UPDATE ON devx.chat_messages
    FOR EACH ROW EXECUTE FUNCTION devx.refuse_update();
