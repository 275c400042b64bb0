-- bench/partitions: one audited write as devx makes it: a transaction that
-- names its actor, then an UPDATE of a project, whose AFTER trigger
-- (devx.audit_row) inserts one row into devx.audit_logs.
\set p random(1, :projects)
\set r random(1, 1000000000)
BEGIN;
SELECT set_config('devx.actor', 'user:' || md5('u1')::uuid, true);
-- A new name every time: an update that changes nothing is not audited.
UPDATE devx.projects SET name = 'renamed ' || :p || ' ' || :r || ' ' || clock_timestamp() WHERE id = md5('p' || :p)::uuid;
COMMIT;
