-- A chat message keeps its row when the container it is about goes (its
-- record deleted by retention, or with its user): the foreign key sets its
-- container_id to NULL. The append-only trigger refused that update, so a
-- container with chat messages could not be deleted at all. It now lets
-- through exactly that change, the link to a container going while every
-- other column stays as written, and refuses every other update as before.

DROP TRIGGER chat_messages_append_only ON devx.chat_messages;
CREATE TRIGGER chat_messages_append_only BEFORE UPDATE ON devx.chat_messages
    FOR EACH ROW
    WHEN (NOT (OLD.container_id IS NOT NULL AND NEW.container_id IS NULL
               AND (NEW.id, NEW.project_id, NEW.session_id, NEW.role, NEW.content, NEW.attachments, NEW.metadata,
                    NEW.created_at)
                   IS NOT DISTINCT FROM
                   (OLD.id, OLD.project_id, OLD.session_id, OLD.role, OLD.content, OLD.attachments, OLD.metadata,
                    OLD.created_at)))
    EXECUTE FUNCTION devx.refuse_update();
