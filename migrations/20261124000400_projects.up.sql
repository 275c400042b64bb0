-- Projects and what runs them. Everything that belongs to a project goes
-- with it (CASCADE); history keeps its rows and loses the link (SET NULL).

CREATE TABLE devx.projects (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id         uuid NOT NULL,
    name             text NOT NULL,
    description      text,
    type             text,
    status           text NOT NULL DEFAULT 'active',
    template_id      uuid,
    metadata         jsonb NOT NULL DEFAULT '{}',
    settings         jsonb NOT NULL DEFAULT '{}',
    last_deployed_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES devx.users (id) ON DELETE CASCADE,
    CONSTRAINT projects_name_check CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT projects_type_check CHECK (type IS NULL OR char_length(type) BETWEEN 1 AND 100),
    CONSTRAINT projects_status_check CHECK (status IN ('active', 'archived', 'deleted')),
    CONSTRAINT projects_template_id_fkey FOREIGN KEY (template_id)
        REFERENCES templates.templates (id) ON DELETE SET NULL,
    CONSTRAINT projects_metadata_check CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT projects_settings_check CHECK (jsonb_typeof(settings) = 'object')
);
COMMENT ON COLUMN devx.projects.type IS 'kind of project: nextjs, react, api, web_app, ...';
CREATE INDEX projects_owner_id_created_at_id_idx ON devx.projects (owner_id, created_at DESC, id DESC);
CREATE INDEX projects_created_at_id_idx ON devx.projects (created_at DESC, id DESC);
CREATE INDEX projects_status_idx ON devx.projects (status);
CREATE INDEX projects_type_idx ON devx.projects (type);
CREATE INDEX projects_template_id_idx ON devx.projects (template_id);
CREATE INDEX projects_metadata_idx ON devx.projects USING gin (metadata jsonb_path_ops);
CREATE TRIGGER projects_set_updated_at BEFORE UPDATE ON devx.projects
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER projects_audit AFTER INSERT OR UPDATE OR DELETE ON devx.projects
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

CREATE TABLE devx.project_contexts (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id        uuid NOT NULL,
    codebase          jsonb NOT NULL DEFAULT '{}',
    dependencies      text[] NOT NULL DEFAULT '{}',
    environment_vars  jsonb NOT NULL DEFAULT '{}',
    deployment_config jsonb NOT NULL DEFAULT '{}',
    test_coverage     numeric(5,2),
    security_score    numeric(5,2),
    performance_score numeric(5,2),
    last_deployed_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT project_contexts_project_id_fkey FOREIGN KEY (project_id)
        REFERENCES devx.projects (id) ON DELETE CASCADE,
    CONSTRAINT project_contexts_project_id_key UNIQUE (project_id),
    CONSTRAINT project_contexts_codebase_check CHECK (jsonb_typeof(codebase) = 'object'),
    CONSTRAINT project_contexts_environment_vars_check CHECK (jsonb_typeof(environment_vars) = 'object'),
    CONSTRAINT project_contexts_deployment_config_check CHECK (jsonb_typeof(deployment_config) = 'object'),
    CONSTRAINT project_contexts_test_coverage_check CHECK (test_coverage BETWEEN 0 AND 100),
    CONSTRAINT project_contexts_security_score_check CHECK (security_score BETWEEN 0 AND 100),
    CONSTRAINT project_contexts_performance_score_check CHECK (performance_score BETWEEN 0 AND 100)
);
COMMENT ON TABLE devx.project_contexts IS 'The code context of a project (1:1)';
COMMENT ON COLUMN devx.project_contexts.codebase IS 'path -> file content';
CREATE INDEX project_contexts_codebase_idx ON devx.project_contexts USING gin (codebase jsonb_path_ops);
CREATE INDEX project_contexts_dependencies_idx ON devx.project_contexts USING gin (dependencies);
CREATE TRIGGER project_contexts_set_updated_at BEFORE UPDATE ON devx.project_contexts
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER project_contexts_audit AFTER INSERT OR UPDATE OR DELETE ON devx.project_contexts
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

CREATE TABLE devx.modifications (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      uuid NOT NULL,
    request         text NOT NULL,
    requested_by    uuid,
    impact_analysis jsonb NOT NULL DEFAULT '{}',
    affected_files  text[] NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'pending',
    applied_at      timestamptz,
    modified_files  jsonb NOT NULL DEFAULT '{}',
    test_results    jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT modifications_project_id_fkey FOREIGN KEY (project_id)
        REFERENCES devx.projects (id) ON DELETE CASCADE,
    CONSTRAINT modifications_request_check CHECK (char_length(btrim(request)) > 0),
    CONSTRAINT modifications_requested_by_fkey FOREIGN KEY (requested_by)
        REFERENCES devx.users (id) ON DELETE SET NULL,
    CONSTRAINT modifications_status_check CHECK (status IN ('pending', 'approved', 'rejected', 'applied', 'failed')),
    CONSTRAINT modifications_applied_at_check CHECK (applied_at IS NULL OR status IN ('applied', 'failed')),
    CONSTRAINT modifications_modified_files_check CHECK (jsonb_typeof(modified_files) = 'object')
);
COMMENT ON COLUMN devx.modifications.status IS 'pending -> approved|rejected; approved -> applied|failed';
COMMENT ON COLUMN devx.modifications.created_at IS 'when the change was requested';
CREATE INDEX modifications_project_id_created_at_idx ON devx.modifications (project_id, created_at DESC, id DESC);
CREATE INDEX modifications_requested_by_idx ON devx.modifications (requested_by);
CREATE INDEX modifications_status_idx ON devx.modifications (status);
CREATE TRIGGER modifications_set_updated_at BEFORE UPDATE ON devx.modifications
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER modifications_audit AFTER INSERT OR UPDATE OR DELETE ON devx.modifications
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

CREATE TABLE devx.services (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id        uuid,
    owner_id          uuid NOT NULL,
    template_id       uuid,
    name              text NOT NULL,
    slug              text NOT NULL,
    description       text,
    service_type      text NOT NULL DEFAULT 'api',
    port              integer,
    health_check_url  text,
    status            text NOT NULL DEFAULT 'inactive',
    deployment_config jsonb NOT NULL DEFAULT '{}',
    environment_vars  jsonb NOT NULL DEFAULT '{}',
    resource_limits   jsonb NOT NULL DEFAULT '{}',
    deployed_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT services_project_id_fkey FOREIGN KEY (project_id) REFERENCES devx.projects (id) ON DELETE CASCADE,
    CONSTRAINT services_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES devx.users (id) ON DELETE CASCADE,
    CONSTRAINT services_template_id_fkey FOREIGN KEY (template_id)
        REFERENCES templates.templates (id) ON DELETE SET NULL,
    CONSTRAINT services_name_check CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT services_slug_key UNIQUE (slug),
    CONSTRAINT services_slug_check CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    CONSTRAINT services_service_type_check CHECK (service_type ~ '^[a-z][a-z0-9_-]{0,49}$'),
    CONSTRAINT services_port_check CHECK (port BETWEEN 1 AND 65535),
    CONSTRAINT services_status_check CHECK (status IN ('inactive', 'pending', 'building', 'deploying',
                                                       'running', 'stopped', 'failed')),
    CONSTRAINT services_deployment_config_check CHECK (jsonb_typeof(deployment_config) = 'object'),
    CONSTRAINT services_environment_vars_check CHECK (jsonb_typeof(environment_vars) = 'object'),
    CONSTRAINT services_resource_limits_check CHECK (jsonb_typeof(resource_limits) = 'object')
);
COMMENT ON COLUMN devx.services.project_id IS 'NULL for a standalone service generated from a template';
CREATE INDEX services_owner_id_created_at_id_idx ON devx.services (owner_id, created_at DESC, id DESC);
CREATE INDEX services_project_id_idx ON devx.services (project_id);
CREATE INDEX services_template_id_idx ON devx.services (template_id);
CREATE INDEX services_status_idx ON devx.services (status);
CREATE TRIGGER services_set_updated_at BEFORE UPDATE ON devx.services
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER services_audit AFTER INSERT OR UPDATE OR DELETE ON devx.services
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

CREATE TABLE devx.containers (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    container_id  text NOT NULL,
    project_id    uuid NOT NULL,
    owner_id      uuid NOT NULL,
    name          text NOT NULL,
    status        text NOT NULL DEFAULT 'created',
    image_name    text,
    assigned_port integer,
    url           text,
    started_at    timestamptz,
    stopped_at    timestamptz,
    labels        jsonb NOT NULL DEFAULT '{}',
    metadata      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT containers_container_id_key UNIQUE (container_id),
    CONSTRAINT containers_container_id_check CHECK (char_length(container_id) BETWEEN 1 AND 255),
    CONSTRAINT containers_project_id_fkey FOREIGN KEY (project_id) REFERENCES devx.projects (id) ON DELETE CASCADE,
    CONSTRAINT containers_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES devx.users (id) ON DELETE CASCADE,
    CONSTRAINT containers_name_check CHECK (char_length(btrim(name)) BETWEEN 1 AND 255),
    CONSTRAINT containers_status_check CHECK (status IN ('created', 'running', 'stopped', 'deleted')),
    CONSTRAINT containers_assigned_port_check CHECK (assigned_port BETWEEN 1 AND 65535),
    CONSTRAINT containers_labels_check CHECK (jsonb_typeof(labels) = 'object'),
    CONSTRAINT containers_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);
COMMENT ON COLUMN devx.containers.container_id IS 'the runtime''s container id';
CREATE UNIQUE INDEX containers_running_port_key ON devx.containers (assigned_port) WHERE status = 'running';
CREATE INDEX containers_owner_id_status_idx ON devx.containers (owner_id, status);
CREATE INDEX containers_owner_id_created_at_id_idx ON devx.containers (owner_id, created_at DESC, id DESC);
CREATE INDEX containers_project_id_idx ON devx.containers (project_id);
CREATE INDEX containers_status_updated_at_idx ON devx.containers (status, updated_at);
CREATE INDEX containers_labels_idx ON devx.containers USING gin (labels jsonb_path_ops);
CREATE TRIGGER containers_set_updated_at BEFORE UPDATE ON devx.containers
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER containers_audit AFTER INSERT OR UPDATE OR DELETE ON devx.containers
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

CREATE TABLE devx.deployments (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id         uuid NOT NULL,
    service_id         uuid,
    app_sandbox_id     text,
    public_url         text,
    db_sandbox_id      text,
    db_connection_info bytea,
    environment_vars   bytea,
    status             text NOT NULL DEFAULT 'pending',
    runtime_type       text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deployments_project_id_fkey FOREIGN KEY (project_id) REFERENCES devx.projects (id) ON DELETE CASCADE,
    CONSTRAINT deployments_service_id_fkey FOREIGN KEY (service_id) REFERENCES devx.services (id) ON DELETE SET NULL,
    CONSTRAINT deployments_status_check CHECK (status IN ('pending', 'building', 'deploying', 'running',
                                                          'stopped', 'failed')),
    CONSTRAINT deployments_runtime_type_check CHECK (runtime_type IS NULL OR char_length(runtime_type) BETWEEN 1 AND 100)
);
COMMENT ON COLUMN devx.deployments.db_connection_info IS 'encrypted by the application';
COMMENT ON COLUMN devx.deployments.environment_vars IS 'encrypted by the application';
CREATE INDEX deployments_project_id_created_at_idx ON devx.deployments (project_id, created_at DESC, id DESC);
CREATE INDEX deployments_service_id_idx ON devx.deployments (service_id);
CREATE INDEX deployments_status_created_at_idx ON devx.deployments (status, created_at DESC);
CREATE TRIGGER deployments_set_updated_at BEFORE UPDATE ON devx.deployments
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER deployments_audit AFTER INSERT OR UPDATE OR DELETE ON devx.deployments
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

CREATE TABLE devx.generation_history (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           uuid,
    template_id       uuid,
    project_id        uuid,
    service_id        uuid,
    generation_type   text NOT NULL,
    input_params      jsonb NOT NULL DEFAULT '{}',
    output_files      jsonb NOT NULL DEFAULT '[]',
    status            text NOT NULL DEFAULT 'pending',
    error_message     text,
    execution_time_ms integer,
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    CONSTRAINT generation_history_user_id_fkey FOREIGN KEY (user_id) REFERENCES devx.users (id) ON DELETE SET NULL,
    CONSTRAINT generation_history_template_id_fkey FOREIGN KEY (template_id)
        REFERENCES templates.templates (id) ON DELETE SET NULL,
    CONSTRAINT generation_history_project_id_fkey FOREIGN KEY (project_id)
        REFERENCES devx.projects (id) ON DELETE SET NULL,
    CONSTRAINT generation_history_service_id_fkey FOREIGN KEY (service_id)
        REFERENCES devx.services (id) ON DELETE SET NULL,
    CONSTRAINT generation_history_generation_type_check CHECK (generation_type ~ '^[a-z][a-z0-9_-]{0,49}$'),
    CONSTRAINT generation_history_input_params_check CHECK (jsonb_typeof(input_params) = 'object'),
    CONSTRAINT generation_history_status_check CHECK (status IN ('pending', 'running', 'completed', 'failed',
                                                                 'cancelled')),
    CONSTRAINT generation_history_execution_time_ms_check CHECK (execution_time_ms >= 0)
);
CREATE INDEX generation_history_user_id_created_at_idx ON devx.generation_history (user_id, created_at DESC, id DESC);
CREATE INDEX generation_history_template_id_idx ON devx.generation_history (template_id);
CREATE INDEX generation_history_project_id_idx ON devx.generation_history (project_id);
CREATE INDEX generation_history_service_id_idx ON devx.generation_history (service_id);
CREATE INDEX generation_history_status_idx ON devx.generation_history (status);

CREATE TABLE devx.chat_messages (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id   uuid NOT NULL,
    container_id uuid,
    session_id   text NOT NULL,
    role         text NOT NULL,
    content      text NOT NULL,
    attachments  jsonb NOT NULL DEFAULT '[]',
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chat_messages_project_id_fkey FOREIGN KEY (project_id) REFERENCES devx.projects (id) ON DELETE CASCADE,
    CONSTRAINT chat_messages_container_id_fkey FOREIGN KEY (container_id)
        REFERENCES devx.containers (id) ON DELETE SET NULL,
    CONSTRAINT chat_messages_session_id_check CHECK (char_length(session_id) BETWEEN 1 AND 255),
    CONSTRAINT chat_messages_role_check CHECK (role IN ('user', 'assistant', 'system')),
    CONSTRAINT chat_messages_attachments_check CHECK (jsonb_typeof(attachments) = 'array'),
    CONSTRAINT chat_messages_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);
COMMENT ON COLUMN devx.chat_messages.session_id IS 'the conversation (not an auth session)';
CREATE INDEX chat_messages_project_id_created_at_idx ON devx.chat_messages (project_id, created_at, id);
CREATE INDEX chat_messages_container_id_idx ON devx.chat_messages (container_id);
CREATE INDEX chat_messages_session_id_created_at_idx ON devx.chat_messages (session_id, created_at);
CREATE INDEX chat_messages_created_at_idx ON devx.chat_messages (created_at);

CREATE TABLE devx.file_storage (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id   uuid NOT NULL,
    container_id uuid,
    file_path    text NOT NULL,
    file_name    text NOT NULL,
    file_size    bigint,
    mime_type    text,
    is_deleted   boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT file_storage_project_id_fkey FOREIGN KEY (project_id) REFERENCES devx.projects (id) ON DELETE CASCADE,
    CONSTRAINT file_storage_container_id_fkey FOREIGN KEY (container_id)
        REFERENCES devx.containers (id) ON DELETE SET NULL,
    CONSTRAINT file_storage_file_path_check CHECK (char_length(file_path) BETWEEN 1 AND 4096),
    CONSTRAINT file_storage_file_name_check CHECK (char_length(file_name) BETWEEN 1 AND 255),
    CONSTRAINT file_storage_file_size_check CHECK (file_size >= 0)
);
CREATE UNIQUE INDEX file_storage_live_path_key ON devx.file_storage (project_id, file_path) WHERE NOT is_deleted;
CREATE INDEX file_storage_project_id_idx ON devx.file_storage (project_id);
CREATE INDEX file_storage_container_id_idx ON devx.file_storage (container_id);
CREATE INDEX file_storage_deleted_updated_at_idx ON devx.file_storage (updated_at) WHERE is_deleted;
CREATE TRIGGER file_storage_set_updated_at BEFORE UPDATE ON devx.file_storage
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
