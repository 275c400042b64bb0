//! Connections shared by concurrent short reads.
//!
//! A pooled connection serves one request at a time, so its server backend
//! goes to sleep after every answer and is woken for the next request's
//! statements. tokio-postgres pipelines the statements that tasks send on
//! one connection at the same time; on a connection that every concurrent
//! authenticated read shares, statements from many requests arrive
//! together, and one backend works through them without sleeping in
//! between. On two CPUs shared with the load generator that measured about
//! 20-40% more reads per second than the same reads on pooled connections.
//!
//! What may use it: idempotent reads of bounded cost (the credential lookup,
//! a row by its key, a page by an index), sent outside a transaction, with
//! no session state. A statement there cannot be cancelled on its own: a
//! cancel request stops whatever the backend runs at that moment, which may
//! be another request's statement. So the connection's statement and lock
//! timeouts are short (`DB_PIPELINE_TIMEOUT`), and a read that hits them,
//! or finds the connection broken, runs again on a pooled connection, where
//! it has the full timeouts and is cancelled if its client gives up (see
//! [`crate::db_read_as!`]). A read abandoned by its client runs to its end
//! (at most that short timeout), and its answer is dropped.
//!
//! Its statements always run their generic plan (`plan_cache_mode =
//! force_generic_plan`). Each is written so that its generic plan walks an
//! index to the row or the page whatever the parameters; left to choose,
//! PostgreSQL plans some of them again at every execution (a chat page of a
//! project with many messages: its custom plan looks cheaper than the
//! generic one, which assumes an average project), and that planning costs
//! more than running them.
//!
//! The connections are opened on first use, besides the pool's, and
//! reopened on the next use after one broke (a restart, a failover, a
//! terminated backend). Each process has its own; nothing is shared between
//! processes but the server.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool::managed::Manager as _;

use super::{Db, DbContext, DbError};

/// The shared connections of one pool.
pub struct Pipeline {
    slots: Box<[Slot]>,
    next: AtomicUsize,
    timeout: Duration,
    /// Set by [`Pipeline::close`]: no connection opens again.
    closed: AtomicBool,
    counts: Counts,
}

/// What the shared connections did since the process started.
#[derive(Default)]
struct Counts {
    reads: AtomicU64,
    retries: AtomicU64,
    opened: AtomicU64,
    open_failures: AtomicU64,
}

/// What the shared read connections did, as `/metrics` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineCounts {
    /// Reads (each request's statements together) sent on a shared connection.
    pub reads: u64,
    /// Of those, the ones that ran again on the pool: the connection broke,
    /// or the read outlasted the shared connection's short timeouts.
    pub retries: u64,
    /// Shared connections opened (the first, and one after each break).
    pub opened: u64,
    /// Attempts to open one that failed (reads then use the pool).
    pub open_failures: u64,
}

#[derive(Default)]
struct Slot {
    current: Mutex<Option<Arc<SharedConn>>>,
    /// Held while a connection is being opened, so that the requests that
    /// find the slot empty at once wait for one connection, not open one each.
    opening: tokio::sync::Mutex<()>,
    /// When opening last failed: for [`RETRY_OPEN_AFTER`] the slot's reads go
    /// to the pool at once rather than each waiting for another attempt.
    failed_at: Mutex<Option<Instant>>,
}

/// How long after a failed open a slot sends its reads to the pool.
const RETRY_OPEN_AFTER: Duration = Duration::from_secs(1);

impl Slot {
    fn failed_recently(&self) -> bool {
        self.failed_at.lock().expect("pipeline slot").is_some_and(|at| at.elapsed() < RETRY_OPEN_AFTER)
    }

    fn live(&self) -> Option<Arc<SharedConn>> {
        let current = self.current.lock().expect("pipeline slot");
        current.as_ref().filter(|c| c.is_live()).cloned()
    }
}

/// One shared connection; statements on it take the same instrumented path
/// as a pooled connection's ([`super::Queryable`]), without the cancel on drop.
pub struct SharedConn {
    pub(super) client: deadpool_postgres::ClientWrapper,
    pub(super) ctx: Arc<DbContext>,
    /// Set when a statement found the server read-only: the next use opens
    /// a new connection, which finds the writable host.
    pub(super) abandoned: AtomicBool,
}

impl SharedConn {
    fn is_live(&self) -> bool {
        !self.abandoned.load(Ordering::Relaxed) && !self.client.is_closed()
    }
}

impl Pipeline {
    pub(super) fn new(connections: usize, timeout: Duration) -> Pipeline {
        Pipeline {
            slots: (0..connections.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            timeout,
            closed: AtomicBool::new(false),
            counts: Counts::default(),
        }
    }

    pub(super) fn counts(&self) -> PipelineCounts {
        let c = &self.counts;
        PipelineCounts {
            reads: c.reads.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            opened: c.opened.load(Ordering::Relaxed),
            open_failures: c.open_failures.load(Ordering::Relaxed),
        }
    }

    /// A shared connection for one read, counted.
    pub(super) async fn conn(&self, db: &Db) -> Option<Arc<SharedConn>> {
        let conn = self.find_or_open(db).await;
        if conn.is_some() {
            self.counts.reads.fetch_add(1, Ordering::Relaxed);
        }
        conn
    }

    /// A shared connection, the slots taken in turn; `None` when none can be
    /// opened now (the caller uses the pool, whose errors say why).
    async fn find_or_open(&self, db: &Db) -> Option<Arc<SharedConn>> {
        if self.closed.load(Ordering::Relaxed) {
            return None;
        }
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        if let Some(conn) = slot.live() {
            return Some(conn);
        }
        if slot.failed_recently() {
            return None;
        }
        let _opening = slot.opening.lock().await;
        if let Some(conn) = slot.live() {
            return Some(conn);
        }
        if slot.failed_recently() {
            return None;
        }
        match self.open(db).await {
            Ok(conn) => {
                self.counts.opened.fetch_add(1, Ordering::Relaxed);
                *slot.current.lock().expect("pipeline slot") = Some(conn.clone());
                *slot.failed_at.lock().expect("pipeline slot") = None;
                Some(conn)
            }
            Err(e) => {
                self.counts.open_failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "could not open a pipeline connection; reads use the pool");
                *slot.failed_at.lock().expect("pipeline slot") = Some(Instant::now());
                None
            }
        }
    }

    async fn open(&self, db: &Db) -> Result<Arc<SharedConn>, DbError> {
        let breaker = &db.ctx.breaker;
        if !breaker.allow() {
            return Err(DbError::Unavailable("circuit breaker open after repeated connection failures".into()));
        }
        let create_timeout = db.ctx.settings.0.create_timeout;
        let client = match tokio::time::timeout(create_timeout, db.pool.manager().create()).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                breaker.failure();
                return Err(DbError::from(e));
            }
            Err(_) => {
                breaker.failure();
                return Err(DbError::Unavailable("timed out opening a pipeline connection".into()));
            }
        };
        breaker.success();
        let ms = self.timeout.as_millis();
        client
            .batch_execute(&format!(
                "SET statement_timeout = {ms}; SET lock_timeout = {ms}; SET plan_cache_mode = force_generic_plan; \
                 SELECT set_config('application_name', current_setting('application_name') || ' pipeline', false)"
            ))
            .await?;
        Ok(Arc::new(SharedConn { client, ctx: db.ctx.clone(), abandoned: AtomicBool::new(false) }))
    }

    /// A read on `conn` failed with `error` and runs again on the pool; a
    /// broken connection is replaced on the next use.
    pub(super) fn failed(&self, conn: &SharedConn, error: &DbError) {
        self.counts.retries.fetch_add(1, Ordering::Relaxed);
        if matches!(error, DbError::Unavailable(_)) {
            conn.abandoned.store(true, Ordering::Relaxed);
        }
        tracing::debug!(error = %error, "a pipelined read runs again on a pooled connection");
    }

    /// Closes the shared connections (reads in flight keep theirs until
    /// they finish).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        for slot in &self.slots {
            slot.current.lock().expect("pipeline slot").take();
        }
    }
}
