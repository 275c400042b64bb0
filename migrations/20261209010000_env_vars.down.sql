DROP TABLE devx.env_vars;
