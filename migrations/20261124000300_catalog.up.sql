-- The template catalog (schema templates).

CREATE TABLE templates.categories (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        text NOT NULL,
    name        text NOT NULL,
    description text,
    sort_order  integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT categories_slug_key UNIQUE (slug),
    CONSTRAINT categories_slug_check CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    CONSTRAINT categories_name_check CHECK (char_length(btrim(name)) > 0)
);
CREATE TRIGGER categories_audit AFTER INSERT OR UPDATE OR DELETE ON templates.categories
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();

CREATE TABLE templates.technologies (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug       text NOT NULL,
    name       text NOT NULL,
    kind       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT technologies_slug_key UNIQUE (slug),
    CONSTRAINT technologies_slug_check CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    CONSTRAINT technologies_name_check CHECK (char_length(btrim(name)) > 0),
    CONSTRAINT technologies_kind_check CHECK (kind IN ('language', 'framework', 'database', 'tool', 'platform',
                                                       'library', 'runtime', 'service', 'cloud', 'testing', 'other'))
);
CREATE INDEX technologies_kind_idx ON templates.technologies (kind);

CREATE TABLE templates.templates (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug                 text NOT NULL,
    name                 text NOT NULL,
    description          text,
    category_id          uuid NOT NULL,
    files                jsonb NOT NULL DEFAULT '{}',
    required_vars        text[] NOT NULL DEFAULT '{}',
    optional_vars        jsonb NOT NULL DEFAULT '[]',
    tech_stack           text[] NOT NULL DEFAULT '{}',
    tags                 text[] NOT NULL DEFAULT '{}',
    estimated_setup_time integer NOT NULL DEFAULT 5,
    complexity           text NOT NULL DEFAULT 'simple',
    is_public            boolean NOT NULL DEFAULT true,
    is_builtin           boolean NOT NULL DEFAULT false,
    author               text,
    usage_count          integer NOT NULL DEFAULT 0,
    created_by           uuid,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT templates_slug_key UNIQUE (slug),
    CONSTRAINT templates_slug_check CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    CONSTRAINT templates_name_check CHECK (char_length(btrim(name)) > 0),
    CONSTRAINT templates_category_id_fkey FOREIGN KEY (category_id)
        REFERENCES templates.categories (id) ON DELETE RESTRICT,
    CONSTRAINT templates_files_check CHECK (jsonb_typeof(files) = 'object'),
    CONSTRAINT templates_optional_vars_check CHECK (jsonb_typeof(optional_vars) = 'array'),
    CONSTRAINT templates_estimated_setup_time_check CHECK (estimated_setup_time >= 0),
    CONSTRAINT templates_complexity_check CHECK (complexity IN ('simple', 'medium', 'complex')),
    CONSTRAINT templates_usage_count_check CHECK (usage_count >= 0),
    CONSTRAINT templates_created_by_fkey FOREIGN KEY (created_by) REFERENCES devx.users (id) ON DELETE SET NULL
);
COMMENT ON COLUMN templates.templates.files IS 'path -> file content';
COMMENT ON COLUMN templates.templates.optional_vars IS 'array of {name, default, description}';
COMMENT ON COLUMN templates.templates.estimated_setup_time IS 'minutes';
CREATE INDEX templates_category_id_idx ON templates.templates (category_id);
CREATE INDEX templates_created_by_idx ON templates.templates (created_by);
CREATE INDEX templates_complexity_idx ON templates.templates (complexity);
CREATE INDEX templates_created_at_idx ON templates.templates (created_at DESC);
CREATE INDEX templates_files_idx ON templates.templates USING gin (files jsonb_path_ops);
CREATE INDEX templates_tech_stack_idx ON templates.templates USING gin (tech_stack);
CREATE INDEX templates_tags_idx ON templates.templates USING gin (tags);
CREATE INDEX templates_name_trgm_idx ON templates.templates USING gin (name gin_trgm_ops);
CREATE INDEX templates_description_trgm_idx ON templates.templates USING gin (description gin_trgm_ops);
CREATE TRIGGER templates_set_updated_at BEFORE UPDATE ON templates.templates
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
CREATE TRIGGER templates_audit AFTER INSERT OR UPDATE OR DELETE ON templates.templates
    FOR EACH ROW EXECUTE FUNCTION devx.audit_row();
