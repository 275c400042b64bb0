DROP TRIGGER technologies_set_updated_at ON templates.technologies;
ALTER TABLE templates.technologies DROP COLUMN updated_at;
DROP TRIGGER categories_set_updated_at ON templates.categories;
ALTER TABLE templates.categories DROP COLUMN updated_at;
