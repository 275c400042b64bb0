-- Read-your-writes with read replicas: each user's last write position on
-- the primary (its WAL position after the write's commit), kept for a short
-- window. A devx process sends the user's reads to a replica only when that
-- replica has replayed this position; the credential lookup reads it in the
-- same statement. Kept here rather than in a process's memory so that every
-- devx process behind a load balancer sees it.
--
-- One row per user, upserted (the greater position wins while the window
-- lasts); an expired row is ignored and overwritten by the next write, so
-- the table never holds more rows than there are users and needs no
-- retention. Not audited: it records when a user wrote, not what, and the
-- writes it points past are audited in their own tables.
CREATE TABLE devx.read_positions (
    user_id    uuid NOT NULL,
    lsn        pg_lsn NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT read_positions_pkey PRIMARY KEY (user_id),
    CONSTRAINT read_positions_user_id_fkey FOREIGN KEY (user_id) REFERENCES devx.users (id) ON DELETE CASCADE
);
COMMENT ON TABLE devx.read_positions IS
    'Each user''s last write position on the primary, for read-your-writes on replicas';
COMMENT ON COLUMN devx.read_positions.lsn IS 'pg_current_wal_lsn() after the write committed';
COMMENT ON COLUMN devx.read_positions.expires_at IS 'After this the position is ignored: any usable replica may serve';
