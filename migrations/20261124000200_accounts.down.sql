DROP TABLE devx.api_keys;
DROP TABLE devx.sessions;
DROP TABLE devx.users;
