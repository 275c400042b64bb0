-- Agents are first-class callers: an API key can be an agent's (it names
-- the agent type it claims for), and an execution records who started it,
-- as the audit trail names actors (`agent:<type> user:<id> apikey:<id>`).

ALTER TABLE devx.api_keys
    ADD COLUMN agent_type text,
    ADD CONSTRAINT api_keys_agent_type_check CHECK (agent_type ~ '^[a-z][a-z0-9_-]{0,49}$');
COMMENT ON COLUMN devx.api_keys.agent_type IS 'set: the key is an agent''s, and claims for this agent type';

ALTER TABLE devx.task_executions ADD COLUMN started_by text;
COMMENT ON COLUMN devx.task_executions.started_by IS 'the actor that claimed or started it, as in the audit trail';
