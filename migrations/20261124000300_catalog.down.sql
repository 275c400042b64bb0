DROP TABLE templates.templates;
DROP TABLE templates.technologies;
DROP TABLE templates.categories;
