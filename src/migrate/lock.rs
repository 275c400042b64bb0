//! The migration lock: a session advisory lock on a fixed key, so that
//! replicas starting together migrate once. It is taken with
//! `pg_try_advisory_lock` polled until the wait timeout, so a process never
//! blocks forever and can say who it is waiting for. Advisory locks are
//! per database: migrating one database never waits for another.

use std::fmt;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::MigrateError;
use crate::db::row::{decode, single};
use crate::db::{DbError, FromRow};

/// The advisory lock key (`devxmigr` in ASCII).
pub const MIGRATION_LOCK_KEY: i64 = 0x6465_7678_6d69_6772;

/// The session that holds the migration lock.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct LockHolder {
    pub pid: i32,
    pub application_name: String,
    pub client_addr: Option<String>,
    /// What the holder is running now (its current or last statement).
    pub state: Option<String>,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if !self.application_name.is_empty() {
            write!(f, ", application {:?}", self.application_name)?;
        }
        if let Some(addr) = &self.client_addr {
            write!(f, ", from {addr}")?;
        }
        if let Some(state) = &self.state {
            write!(f, ", {state}")?;
        }
        Ok(())
    }
}

/// Who holds the lock on this database, if anyone.
pub async fn holder(client: &Client) -> Result<Option<LockHolder>, DbError> {
    // The bigint form of an advisory lock puts the high half in classid, the
    // low half in objid, and 1 in objsubid.
    let row = client
        .query_opt(
            "SELECT l.pid, coalesce(a.application_name, '') AS application_name, host(a.client_addr) AS client_addr,
                    a.state
               FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND l.classid::bigint = ($1::bigint >> 32) AND l.objid::bigint = ($1::bigint & 4294967295)
                AND l.objsubid = 1
              LIMIT 1",
            &[&MIGRATION_LOCK_KEY],
        )
        .await?;
    row.as_ref().map(decode).transpose()
}

async fn try_lock(client: &Client) -> Result<bool, DbError> {
    single(&client.query_one("SELECT pg_try_advisory_lock($1)", &[&MIGRATION_LOCK_KEY]).await?)
}

/// Takes the lock, polling every `poll` until `wait` has passed.
pub async fn acquire(client: &Client, wait: Duration, poll: Duration) -> Result<(), MigrateError> {
    let start = Instant::now();
    let mut next_report = start;
    loop {
        if try_lock(client).await? {
            if start.elapsed() >= poll {
                tracing::info!(waited_ms = start.elapsed().as_millis() as u64, "took the migration lock");
            }
            return Ok(());
        }
        let waited = start.elapsed();
        if waited >= wait {
            let holder = holder(client).await.ok().flatten();
            return Err(MigrateError::LockTimeout { waited: wait, holder });
        }
        if Instant::now() >= next_report {
            match holder(client).await.ok().flatten() {
                Some(h) => {
                    tracing::info!(holder_pid = h.pid, "waiting for another devx ({h}) holding the migration lock");
                }
                None => tracing::info!("waiting for another devx holding the migration lock"),
            }
            next_report = Instant::now() + Duration::from_secs(10);
        }
        tokio::time::sleep(poll.min(wait - waited)).await;
    }
}

/// Releases the lock. A broken connection has released it already.
pub async fn release(client: &Client) {
    if let Err(e) = client.query_one("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY]).await {
        tracing::debug!(error = %e, "releasing the migration lock failed (the session's end releases it)");
    }
}
