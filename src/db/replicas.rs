//! Read replicas: which server a read goes to, and read-your-writes.
//!
//! With `DATABASE_REPLICA_URLS` set, [`ReplicaSet`] holds a pool per
//! streaming replica beside the primary's. A read taken with
//! [`Db::read_client`](super::Db::read_client) (`db_read!`) goes to a replica
//! only when all of these hold, else to the primary:
//!
//! - the request allows it: the HTTP layer runs every request inside
//!   [`in_request`], and a request that is not a `GET` (or is a route pinned
//!   by `DB_PRIMARY_ROUTES`) reads on the primary, as does any work outside a
//!   request (jobs, the CLI) and every transaction;
//! - the caller is known ([`note_caller`], by the credential check, which
//!   itself always reads the primary so that a revocation counts at once);
//! - a replica is usable: the last probe (every `DB_REPLICA_PROBE_INTERVAL`)
//!   found it in recovery, within `DB_REPLICA_MAX_LAG` and
//!   `DB_REPLICA_MAX_LAG_BYTES` of the primary, and past the WAL position at
//!   which this process found the schema migrated (a replica still replaying
//!   a migration would not know its tables);
//! - that replica has replayed the caller's own last write.
//!
//! Read-your-writes, as GitLab's load balancer does it, but kept in
//! PostgreSQL so that every devx process sees it: after a write request the
//! HTTP layer calls [`Db::note_write`](super::Db::note_write), which stores the
//! primary's WAL position after the commit for the caller's user in
//! `devx.read_positions` (an upsert that keeps the greater position, expiring
//! after `DB_READ_YOUR_WRITES_WINDOW`; `synchronous_commit` off for it, as
//! the write it points past was flushed already). The credential lookup on
//! the primary returns that position in the same statement, so choosing a
//! replica costs no round trip: a replica whose last probed replay position
//! is at or past it may serve the caller; none has, and the read goes to the
//! primary (a "sticky" read). The probe's position is one the replica had
//! replayed at the time, so it is never ahead of what it serves.
//!
//! A replica that fails a read is taken out at once and probed back in; the
//! read is retried on the primary. The lag in time is `now()` minus the last
//! replayed transaction's time while WAL received is still waiting to be
//! replayed (zero once everything received is replayed), so a replica that
//! was idle is not counted as behind.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio_postgres::types::PgLsn;
use uuid::Uuid;

use super::{Db, DbError, Queryable};
use crate::config::{DatabaseConfig, ReplicaConfig, masked_target};

tokio::task_local! {
    static REQUEST: Arc<ReadContext>;
}

/// What a request allows its reads: set by the HTTP layer around the
/// handler, filled in by the credential check.
#[derive(Debug, Default)]
pub struct ReadContext {
    replica_ok: bool,
    caller: Mutex<Option<Caller>>,
}

#[derive(Debug, Clone, Copy)]
struct Caller {
    user: Option<Uuid>,
    /// The caller's last write position, if it is still within the window.
    after: Option<u64>,
}

impl ReadContext {
    /// `replica_ok`: the request's reads may go to a replica at all.
    pub fn new(replica_ok: bool) -> Arc<ReadContext> {
        Arc::new(ReadContext { replica_ok, caller: Mutex::new(None) })
    }

    /// The signed-in user the request acted for, once its credential was checked.
    pub fn user(&self) -> Option<Uuid> {
        self.caller.lock().expect("read context").and_then(|c| c.user)
    }

    fn caller(&self) -> Option<Caller> {
        *self.caller.lock().expect("read context")
    }
}

/// Runs a request's handling with its read context.
pub async fn in_request<F: Future>(context: Arc<ReadContext>, handling: F) -> F::Output {
    REQUEST.scope(context, handling).await
}

/// The caller of the current request is known: `user` (none for an
/// anonymous caller) and its last write position still in the window.
/// Outside a request, does nothing.
pub fn note_caller(user: Option<Uuid>, after: Option<PgLsn>) {
    let _ = REQUEST.try_with(|c| {
        *c.caller.lock().expect("read context") = Some(Caller { user, after: after.map(u64::from) });
    });
}

/// Where a read went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadTarget {
    Primary,
    Replica(usize),
}

/// The replicas, their last probe, and the read counters.
pub struct ReplicaSet {
    replicas: Vec<Replica>,
    limits: ReplicaConfig,
    /// The primary's WAL position once the schema was migrated: a replica
    /// behind it may lack a table.
    schema_lsn: AtomicU64,
    next: AtomicUsize,
    primary_reads: AtomicU64,
    /// Reads that went to the primary because no replica was usable.
    fallbacks: AtomicU64,
    /// Reads that went to the primary because no usable replica had
    /// replayed the caller's own last write.
    sticky: AtomicU64,
    probe: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct Replica {
    name: String,
    db: Db,
    /// A connection of its own for the probe, so that a replica whose pool
    /// is busy with reads is not taken for one that does not answer.
    probe: Db,
    usable: AtomicBool,
    replay_lsn: AtomicU64,
    reads: AtomicU64,
    state: Mutex<ProbeState>,
}

#[derive(Debug, Clone, Default)]
struct ProbeState {
    /// Why it is not read from; `None` when usable.
    reason: Option<String>,
    lag_seconds: Option<f64>,
    lag_bytes: Option<u64>,
    probed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One replica as `/api/database/status` and the metrics show it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ReplicaStatus {
    /// The replica's URL, password masked.
    pub name: String,
    /// Reads may go to it now.
    pub usable: bool,
    /// Why it is out (lag, failure, not a standby), when it is.
    pub reason: Option<String>,
    /// Seconds of WAL received but not yet replayed, at the last probe.
    pub lag_seconds: Option<f64>,
    /// WAL bytes between the primary and the replica's replay, at the last probe.
    pub lag_bytes: Option<u64>,
    /// The replica's replay position at the last probe (`0/16B3748`).
    pub replay_lsn: Option<String>,
    pub probed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Reads it served since this process started.
    pub reads: u64,
}

/// Where reads went since this process started.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, utoipa::ToSchema)]
pub struct ReadCounts {
    /// Reads served by the primary (including sticky reads and fallbacks).
    pub primary: u64,
    /// Reads served by replicas.
    pub replicas: u64,
    /// Reads that went to the primary because no replica was usable.
    pub fallbacks: u64,
    /// Reads that went to the primary because no usable replica had yet
    /// replayed the caller's own last write.
    pub sticky: u64,
}

impl ReplicaSet {
    /// A pool per replica (opened lazily: a replica down at start is only
    /// out until a probe reaches it), and the probe task, which stops when
    /// the set is dropped.
    pub(super) fn start(cfg: &DatabaseConfig, primary: &Db) -> Result<Arc<ReplicaSet>, DbError> {
        let limits = cfg.replicas.clone();
        let mut replicas = Vec::with_capacity(limits.targets.len());
        for target in &limits.targets {
            let db =
                Db::build(cfg, target, cfg.pool_max, cfg.acquire_timeout, cfg.connect_timeout, cfg.create_timeout)?;
            let probe = db.probe_pool(cfg.connect_timeout)?;
            replicas.push(Replica {
                name: masked_target(target),
                db,
                probe,
                usable: AtomicBool::new(false),
                replay_lsn: AtomicU64::new(0),
                reads: AtomicU64::new(0),
                state: Mutex::new(ProbeState { reason: Some("not probed yet".into()), ..ProbeState::default() }),
            });
        }
        let set = Arc::new(ReplicaSet {
            replicas,
            limits,
            schema_lsn: AtomicU64::new(u64::MAX),
            next: AtomicUsize::new(0),
            primary_reads: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            sticky: AtomicU64::new(0),
            probe: Mutex::new(None),
        });
        let probes = primary.probe_pool(cfg.connect_timeout)?;
        let task = tokio::spawn(probe_loop(probes, Arc::downgrade(&set)));
        *set.probe.lock().expect("probe handle") = Some(task);
        Ok(set)
    }

    pub fn limits(&self) -> &ReplicaConfig {
        &self.limits
    }

    /// Where a read of the current request goes.
    pub(super) fn choose(&self) -> ReadTarget {
        let caller = REQUEST.try_with(|c| c.replica_ok.then(|| c.caller()).flatten()).ok().flatten();
        let Some(caller) = caller else {
            self.primary_reads.fetch_add(1, Ordering::Relaxed);
            return ReadTarget::Primary;
        };
        // A usable replica has replayed the migrated schema (the probe
        // checks); it must also have replayed the caller's last write.
        let needed = caller.after.unwrap_or(0);
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut any_usable = false;
        for i in 0..n {
            let at = (start + i) % n;
            let replica = &self.replicas[at];
            if !replica.usable.load(Ordering::Relaxed) {
                continue;
            }
            any_usable = true;
            if replica.replay_lsn.load(Ordering::Relaxed) >= needed {
                replica.reads.fetch_add(1, Ordering::Relaxed);
                return ReadTarget::Replica(at);
            }
        }
        self.primary_reads.fetch_add(1, Ordering::Relaxed);
        if any_usable {
            self.sticky.fetch_add(1, Ordering::Relaxed);
        } else {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        ReadTarget::Primary
    }

    pub(super) fn replica_db(&self, at: usize) -> &Db {
        &self.replicas[at].db
    }

    /// A read on replica `at` failed on the connection or the server: it is
    /// out until a probe finds it well again.
    pub(super) fn failed(&self, at: usize, error: &DbError) {
        let replica = &self.replicas[at];
        if replica.usable.swap(false, Ordering::Relaxed) {
            tracing::warn!(replica = %replica.name, %error, "a read on a replica failed; it is out until a probe finds it well");
        }
        replica.state.lock().expect("probe state").reason = Some(format!("a read failed: {error}"));
        if matches!(error, DbError::Unavailable(_)) {
            replica.db.forget_idle();
        }
    }

    /// The primary's WAL position at which devx's schema is in place:
    /// replicas are read from once they have replayed it.
    pub fn schema_ready_at(&self, lsn: PgLsn) {
        self.schema_lsn.store(u64::from(lsn), Ordering::Relaxed);
    }

    pub fn status(&self) -> Vec<ReplicaStatus> {
        self.replicas
            .iter()
            .map(|r| {
                let state = r.state.lock().expect("probe state").clone();
                let lsn = r.replay_lsn.load(Ordering::Relaxed);
                ReplicaStatus {
                    name: r.name.clone(),
                    usable: r.usable.load(Ordering::Relaxed),
                    reason: state.reason,
                    lag_seconds: state.lag_seconds,
                    lag_bytes: state.lag_bytes,
                    replay_lsn: (lsn > 0).then(|| PgLsn::from(lsn).to_string()),
                    probed_at: state.probed_at,
                    reads: r.reads.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    pub fn counts(&self) -> ReadCounts {
        ReadCounts {
            primary: self.primary_reads.load(Ordering::Relaxed),
            replicas: self.replicas.iter().map(|r| r.reads.load(Ordering::Relaxed)).sum(),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
            sticky: self.sticky.load(Ordering::Relaxed),
        }
    }

    /// Closes every replica pool and stops the probe.
    pub fn close(&self) {
        if let Some(task) = self.probe.lock().expect("probe handle").take() {
            task.abort();
        }
        for r in &self.replicas {
            r.db.close();
            r.probe.close();
        }
    }

    /// Reads each replica's position and lag once, and takes it in or out.
    async fn probe_once(&self, primary: &Db) {
        let primary_lsn = match primary_position(primary).await {
            Ok(lsn) => Some(u64::from(lsn)),
            Err(e) => {
                tracing::debug!(error = %e, "replica probe: cannot read the primary's WAL position");
                None
            }
        };
        let wait = self.limits.probe_interval.max(Duration::from_millis(500)) * 4;
        for r in &self.replicas {
            let probed = tokio::time::timeout(wait, replica_position(&r.probe)).await;
            let now = chrono::Utc::now();
            let mut state = r.state.lock().expect("probe state");
            state.probed_at = Some(now);
            let unreachable = matches!(&probed, Ok(Err(DbError::Unavailable(_))) | Err(_));
            let reason = match probed {
                Err(_) => Some(format!("did not answer the probe within {}", humantime::format_duration(wait))),
                Ok(Err(e)) => Some(format!("probe failed: {e}")),
                Ok(Ok(p)) => {
                    let replay = p.replay_lsn.map_or(0, u64::from);
                    r.replay_lsn.store(replay, Ordering::Relaxed);
                    let lag_bytes = primary_lsn.map(|at| at.saturating_sub(replay));
                    state.lag_seconds = Some(p.lag_seconds);
                    state.lag_bytes = lag_bytes;
                    why_out(&p, lag_bytes, self.schema_lsn.load(Ordering::Relaxed), &self.limits)
                }
            };
            let was = r.usable.swap(reason.is_none(), Ordering::Relaxed);
            match (&reason, was) {
                (Some(why), true) => tracing::warn!(replica = %r.name, reason = %why, "replica taken out of reads"),
                (None, false) => tracing::info!(replica = %r.name, "replica takes reads"),
                _ => {}
            }
            if reason.is_some() && unreachable {
                r.db.forget_idle();
                r.probe.forget_idle();
            }
            state.reason = reason;
        }
    }
}

/// Why a replica the probe reached may not take reads (`None`: it may):
/// not a standby, nothing replayed, beyond either lag limit, or behind the
/// schema this process migrated to (`schema`, a WAL position).
fn why_out(p: &ReplicaPosition, lag_bytes: Option<u64>, schema: u64, limits: &ReplicaConfig) -> Option<String> {
    let replay = p.replay_lsn.map_or(0, u64::from);
    if !p.in_recovery {
        Some("not a standby (pg_is_in_recovery() is false): promoted, or not a replica".into())
    } else if p.replay_lsn.is_none() {
        Some("has replayed no WAL yet".into())
    } else if p.lag_seconds > limits.max_lag.as_secs_f64() {
        Some(format!(
            "{:.1}s behind the primary, more than DB_REPLICA_MAX_LAG ({})",
            p.lag_seconds,
            humantime::format_duration(limits.max_lag)
        ))
    } else if let Some(bytes) = lag_bytes.filter(|b| *b > limits.max_lag_bytes) {
        Some(format!(
            "{bytes} WAL bytes behind the primary, more than DB_REPLICA_MAX_LAG_BYTES ({})",
            limits.max_lag_bytes
        ))
    } else if replay < schema {
        Some("has not yet replayed the migrated schema".into())
    } else {
        None
    }
}

impl Drop for ReplicaSet {
    fn drop(&mut self) {
        self.close();
    }
}

async fn probe_loop(primary: Db, set: Weak<ReplicaSet>) {
    let every = match set.upgrade() {
        Some(set) => set.limits.probe_interval,
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(set) = set.upgrade() else { return };
        let started = Instant::now();
        set.probe_once(&primary).await;
        tracing::trace!(elapsed_ms = started.elapsed().as_millis() as u64, "probed the replicas");
    }
}

/// The primary's current WAL write position.
pub async fn primary_position(primary: &Db) -> Result<PgLsn, DbError> {
    let client = primary.client().await?;
    client.query_scalar("SELECT pg_current_wal_lsn()", &[]).await
}

struct ReplicaPosition {
    in_recovery: bool,
    replay_lsn: Option<PgLsn>,
    lag_seconds: f64,
}

async fn replica_position(replica: &Db) -> Result<ReplicaPosition, DbError> {
    let client = replica.client().await?;
    let row = client
        .query_one(
            "SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_replay_lsn() AS replay_lsn,
                    CASE WHEN pg_last_wal_receive_lsn() IS NULL
                           OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
                         ELSE COALESCE(EXTRACT(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
                    END::float8 AS lag_seconds",
            &[],
        )
        .await?;
    Ok(ReplicaPosition {
        in_recovery: super::column(&row, "in_recovery")?,
        replay_lsn: super::column(&row, "replay_lsn")?,
        lag_seconds: super::column(&row, "lag_seconds")?,
    })
}

/// Stores the primary's WAL position now as `user`'s last write, kept for
/// `window` (the greater of it and a stored one still in its window).
pub(super) async fn record_write(primary: &Db, user: Uuid, window: Duration) -> Result<(), DbError> {
    let client = primary.client().await?;
    // One round trip (simple protocol, so the values are literals: a UUID
    // and a whole number of milliseconds, neither of which can quote).
    let ms = window.as_millis();
    let recorded = client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL synchronous_commit = off;
             INSERT INTO devx.read_positions AS p (user_id, lsn, expires_at)
             VALUES ('{user}', pg_current_wal_lsn(), now() + interval '{ms} milliseconds')
             ON CONFLICT (user_id) DO UPDATE
                SET lsn = CASE WHEN p.expires_at > now() THEN greatest(p.lsn, excluded.lsn) ELSE excluded.lsn END,
                    expires_at = excluded.expires_at;
             COMMIT"
        ))
        .await;
    if recorded.is_err() {
        // The script stopped inside its transaction: the connection must
        // not go back to the pool in it.
        client.discard();
    }
    recorded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(in_recovery: bool, replay: Option<u64>, lag_seconds: f64) -> ReplicaPosition {
        ReplicaPosition { in_recovery, replay_lsn: replay.map(PgLsn::from), lag_seconds }
    }

    #[test]
    fn a_replica_takes_reads_only_within_every_limit() {
        let limits = ReplicaConfig::default();
        let max_bytes = limits.max_lag_bytes;
        assert_eq!(why_out(&at(true, Some(500), 0.5), Some(100), 400, &limits), None, "within every limit");
        let out = |p: &ReplicaPosition, bytes: Option<u64>, schema: u64| {
            why_out(p, bytes, schema, &limits).expect("taken out")
        };
        assert!(out(&at(false, Some(500), 0.0), Some(0), 0).contains("not a standby"));
        assert!(out(&at(true, None, 0.0), None, 0).contains("no WAL"));
        assert!(out(&at(true, Some(500), 10.5), Some(0), 0).contains("DB_REPLICA_MAX_LAG ("));
        assert!(out(&at(true, Some(500), 0.0), Some(max_bytes + 1), 0).contains("DB_REPLICA_MAX_LAG_BYTES"));
        assert!(out(&at(true, Some(500), 0.0), Some(0), 501).contains("schema"));
        // Exactly at a limit is still within it; an unknown primary position
        // (the primary did not answer) does not take a replica out.
        assert_eq!(why_out(&at(true, Some(500), 10.0), Some(max_bytes), 500, &limits), None);
        assert_eq!(why_out(&at(true, Some(500), 0.0), None, 0, &limits), None);
    }
}
