-- Categories and technologies are written through the API and the CLI
-- (`devx catalog`): each row gets the version a write's If-Match is checked
-- against, kept by the set_updated_at trigger like every other table's.
ALTER TABLE templates.categories ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE TRIGGER categories_set_updated_at BEFORE UPDATE ON templates.categories
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
ALTER TABLE templates.technologies ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE TRIGGER technologies_set_updated_at BEFORE UPDATE ON templates.technologies
    FOR EACH ROW EXECUTE FUNCTION devx.set_updated_at();
