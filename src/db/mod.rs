//! The database layer: the connection pool, the one instrumented path that
//! every statement takes (prepared once per connection, or unnamed behind
//! PgBouncer; timed, counted, slow ones logged), transactions that carry the audit actor, LISTEN/NOTIFY
//! (`listen`: one connection per pool), the mapping of PostgreSQL errors, and where the database is (`embedded`).
//!
//! SQL itself lives next to the types it fills, in each capability's
//! `queries` module, as small functions taking `&impl Queryable` so that a
//! handler can run several of them in one transaction. A list with optional
//! filters builds its statement from the filters given ([`Statement`]).

mod breaker;
mod error;
mod listen;
mod pipeline;
pub mod replicas;
pub mod row;
mod statement;
mod stats;
mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

pub use error::{DbError, describe, is_unreachable};
pub use listen::wakeup;
pub use pipeline::{PipelineCounts, SharedConn};
pub use row::{FromRow, column};
pub use statement::{Statement, Visibility, escape_like};
pub use stats::{Counters, LatencyHistogram, QueryStats, SlowQuery, StatsSnapshot, normalize_sql};

use crate::config::{DatabaseConfig, StatementMode};

/// Statement parameters, as tokio-postgres takes them.
pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

struct DbContext {
    stats: QueryStats,
    /// How a cancel request reaches the server (the pool's TLS setting).
    cancel_tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    slow_threshold: Duration,
    /// Which statements are logged (`DB_LOG_QUERIES`, `DB_LOG_SLOW_QUERIES`).
    statement_log: crate::config::StatementLog,
    breaker: breaker::Breaker,
    mode: StatementMode,
    /// Unnamed mode (behind PgBouncer, where startup options cannot carry
    /// them): the session timeouts as `SET LOCAL`s run at the start of every
    /// transaction.
    local_settings: Option<String>,
    /// What the pool was built from, for [`Db::probe_pool`].
    settings: Box<(DatabaseConfig, tokio_postgres::Config)>,
    /// Unnamed mode: the parameter types the server inferred for each SQL
    /// text, learned once per process (see [`param_types`]).
    param_types: Mutex<HashMap<String, Arc<[Type]>>>,
    /// LISTEN/NOTIFY: one connection for the pool (see [`Db::subscribe`]).
    hub: listen::Hub,
    /// Set when a statement found its server read-only (a standby, or a
    /// primary demoted by a failover): the pool's idle connections go to
    /// the same server, so the next checkout drops them all and new
    /// connections find the writable host (`target_session_attrs`).
    read_only_seen: AtomicBool,
}

impl DbContext {
    /// A statement refused because its server is read-only: this
    /// connection leaves the pool, and the next checkout drops its idle
    /// siblings (see `read_only_seen`).
    fn note_read_only(&self, e: &tokio_postgres::Error, abandoned: &AtomicBool) {
        if e.code() == Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION) {
            abandoned.store(true, Ordering::Relaxed);
            self.read_only_seen.store(true, Ordering::Relaxed);
        }
    }

    /// Times and counts one statement, and logs it as `statement_log` says.
    fn record(&self, sql: &str, elapsed: Duration, ok: bool) {
        let slow = self.stats.record(sql, elapsed, ok, self.slow_threshold);
        let log = self.statement_log;
        if !(log.all || (slow && log.slow)) {
            return;
        }
        // Whole microseconds: finer clock readings are noise in a log.
        let ms = elapsed.as_micros() as f64 / 1000.0;
        let sql = normalize_sql(sql);
        if slow && log.slow {
            tracing::warn!(sql = %sql, duration_ms = ms, ok, "slow query");
            return;
        }
        use crate::config::LogLevel;
        match log.level {
            LogLevel::Trace => tracing::trace!(sql = %sql, duration_ms = ms, ok, "statement"),
            LogLevel::Debug => tracing::debug!(sql = %sql, duration_ms = ms, ok, "statement"),
            LogLevel::Info => tracing::info!(sql = %sql, duration_ms = ms, ok, "statement"),
            LogLevel::Warn => tracing::warn!(sql = %sql, duration_ms = ms, ok, "statement"),
        }
    }
}

/// Distinct SQL texts whose parameter types are remembered; past this the
/// cache starts over (SQL texts are static, or built from a few optional
/// filters by [`Statement`]: some hundreds in all, so this is never reached
/// in practice).
const PARAM_TYPES_CAPACITY: usize = 4096;

/// The pool and its instrumentation. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    ctx: Arc<DbContext>,
    /// Streaming replicas for reads (`DATABASE_REPLICA_URLS`); `None` on
    /// the replicas' own pools and the probes' pool.
    replicas: Option<Arc<replicas::ReplicaSet>>,
    /// Connections shared by concurrent short reads (`DB_PIPELINE_CONNECTIONS`);
    /// `None` when off, behind PgBouncer, and on the replicas' and the probes' pools.
    pipeline: Option<Arc<pipeline::Pipeline>>,
}

#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct PoolStatus {
    pub max_size: usize,
    /// Connections open now.
    pub size: usize,
    pub idle: usize,
    pub in_use: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
}

/// Applies the settings every devx connection gets to a connection target.
/// `direct`: the target is a PostgreSQL server, not PgBouncer in transaction
/// mode, which rejects the `options` startup parameter (unless configured to
/// ignore it, and then it would not apply anyway): there the statement
/// timeout belongs on the role (`ALTER ROLE devx SET statement_timeout`).
fn session_target(cfg: &DatabaseConfig, target: &tokio_postgres::Config, direct: bool) -> tokio_postgres::Config {
    let mut t = target.clone();
    t.connect_timeout(cfg.connect_timeout);
    // The mode decides the connector; tokio-postgres must also refuse a
    // server that answers without TLS when the mode requires it.
    t.ssl_mode(match cfg.effective_ssl_mode(target) {
        crate::config::SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        crate::config::SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        crate::config::SslMode::Require | crate::config::SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    });
    if t.get_application_name().is_none() {
        t.application_name("devx");
    }
    if direct {
        let settings = session_settings(cfg);
        if !settings.is_empty() {
            let mut options = t.get_options().map(|o| format!("{o} ")).unwrap_or_default();
            let settings: Vec<String> = settings.iter().map(|(name, ms)| format!("-c {name}={ms}")).collect();
            options.push_str(&settings.join(" "));
            t.options(options);
        }
    }
    t
}

/// The timeouts every devx session runs with, in milliseconds (zero: off,
/// left to the server's or the role's setting). A statement never waits on
/// a lock for longer than `lock_timeout`, never runs longer than
/// `statement_timeout`, and a transaction left open by a stuck caller ends
/// after `idle_in_transaction_session_timeout`.
fn session_settings(cfg: &DatabaseConfig) -> Vec<(&'static str, u128)> {
    [
        ("statement_timeout", cfg.statement_timeout),
        ("lock_timeout", cfg.lock_timeout),
        ("idle_in_transaction_session_timeout", cfg.idle_in_transaction_timeout),
    ]
    .into_iter()
    .filter(|(_, d)| !d.is_zero())
    .map(|(name, d)| (name, d.as_millis()))
    .collect()
}

/// Opens one connection outside the pool (migrations need a session of their
/// own for the advisory lock) to a server. The connection task runs until the
/// client drops.
pub async fn connect_one(
    cfg: &DatabaseConfig,
    target: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, DbError> {
    connect_one_via(cfg, target, true).await
}

/// [`connect_one`], saying whether `target` is a server (`direct`) or may be
/// PgBouncer (then no startup options are sent).
pub async fn connect_one_via(
    cfg: &DatabaseConfig,
    target: &tokio_postgres::Config,
    direct: bool,
) -> Result<tokio_postgres::Client, DbError> {
    Ok(connect_raw(cfg, target, direct).await?)
}

/// Why a connection could not be opened, as an operator reads it, and
/// whether trying again later may help (no server answered yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectFailure {
    pub reason: String,
    pub unreachable: bool,
}

/// Opens one connection to `target` as [`connect_one_via`] would, and closes
/// it: whether devx can get in, and if not why.
pub async fn try_connect(
    cfg: &DatabaseConfig,
    target: &tokio_postgres::Config,
    direct: bool,
) -> Result<(), ConnectFailure> {
    match connect_raw(cfg, target, direct).await {
        Ok(_client) => Ok(()),
        Err(e) => Err(ConnectFailure { reason: describe(&e), unreachable: is_unreachable(&e) }),
    }
}

async fn connect_raw(
    cfg: &DatabaseConfig,
    target: &tokio_postgres::Config,
    direct: bool,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let t = session_target(cfg, target, direct);
    macro_rules! spawn {
        ($connect:expr) => {{
            let (client, connection) = $connect.await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %describe(&e), "direct database connection ended");
                }
            });
            Ok(client)
        }};
    }
    match tls::connector(cfg.effective_ssl_mode(target), &cfg.tls_files) {
        None => spawn!(t.connect(tokio_postgres::NoTls)),
        Some(tls) => spawn!(t.connect(tls)),
    }
}

impl Db {
    /// Builds the pool and opens `pool_min` connections, so that a bad target
    /// fails here, at start, and not on the first request.
    pub async fn connect(cfg: &DatabaseConfig, target: &tokio_postgres::Config) -> Result<Db, DbError> {
        let mut db =
            Db::build(cfg, target, cfg.pool_max, cfg.acquire_timeout, cfg.connect_timeout, cfg.create_timeout)?;
        db.warm(cfg.pool_min.max(1)).await?;
        if cfg.pipeline_connections > 0 && cfg.statement_mode == StatementMode::Prepared {
            db.pipeline = Some(Arc::new(pipeline::Pipeline::new(cfg.pipeline_connections, cfg.pipeline_timeout)));
        }
        if !cfg.replicas.targets.is_empty() {
            // The pool opens once the schema is migrated: replicas take reads
            // once they have replayed the primary's position now.
            let set = replicas::ReplicaSet::start(cfg, &db)?;
            set.schema_ready_at(replicas::primary_position(&db).await?);
            db.replicas = Some(set);
        }
        Ok(db)
    }

    fn build(
        cfg: &DatabaseConfig,
        target: &tokio_postgres::Config,
        max_size: usize,
        wait: Duration,
        connect_timeout: Duration,
        create_timeout: Duration,
    ) -> Result<Db, DbError> {
        let mut cfg = cfg.clone();
        cfg.connect_timeout = connect_timeout;
        let t = session_target(&cfg, target, cfg.statement_mode == StatementMode::Prepared);
        // Fast recycling checks only that the connection is open: no query,
        // nothing that depends on session state.
        let mgr_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let cancel_tls = tls::connector(cfg.effective_ssl_mode(target), &cfg.tls_files);
        let manager = match cancel_tls.clone() {
            None => Manager::from_config(t, tokio_postgres::NoTls, mgr_config),
            Some(tls) => Manager::from_config(t, tls, mgr_config),
        };
        let pool = Pool::builder(manager)
            .max_size(max_size)
            .wait_timeout(Some(wait))
            .create_timeout(Some(create_timeout))
            .recycle_timeout(Some(connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        Ok(Db {
            pool,
            ctx: Arc::new(DbContext {
                stats: QueryStats::default(),
                cancel_tls,
                slow_threshold: cfg.slow_query_threshold,
                statement_log: cfg.statement_log,
                // Five failed connects in a row open it; it probes after a
                // quarter second, backing off to one probe per five seconds.
                breaker: breaker::Breaker::new(5, Duration::from_millis(250), Duration::from_secs(5)),
                mode: cfg.statement_mode,
                local_settings: match cfg.statement_mode {
                    StatementMode::Prepared => None,
                    StatementMode::Unnamed => Some(
                        session_settings(&cfg)
                            .iter()
                            .map(|(name, ms)| format!("SET LOCAL {name} = {ms}"))
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                    .filter(|sql| !sql.is_empty()),
                },
                param_types: Mutex::new(HashMap::new()),
                hub: listen::Hub::default(),
                read_only_seen: AtomicBool::new(false),
                settings: Box::new((cfg, target.clone())),
            }),
            replicas: None,
            pipeline: None,
        })
    }

    /// A pool of one connection to the same database, for the probes
    /// (`/readyz`, `/health`, the metrics scrape): they never wait behind
    /// requests for a connection from the main pool, and give up after
    /// `wait` rather than the request pool's acquire timeout. Its connection
    /// opens on first use.
    pub fn probe_pool(&self, wait: Duration) -> Result<Db, DbError> {
        let (cfg, target) = &*self.ctx.settings;
        let connect = cfg.connect_timeout.min(wait.max(Duration::from_millis(250)));
        Db::build(cfg, target, 1, wait, connect, connect)
    }

    /// Opens up to `n` connections (fewer if some are open already).
    pub async fn warm(&self, n: usize) -> Result<(), DbError> {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(self.pool.get().await?);
        }
        Ok(())
    }

    /// A pooled connection, or `Unavailable` once the acquire timeout passes
    /// (or at once while the circuit breaker is open).
    pub async fn client(&self) -> Result<PgClient, DbError> {
        if self.ctx.read_only_seen.swap(false, Ordering::Relaxed) {
            tracing::warn!("the database server turned read-only: reconnecting to find the writable one");
            self.forget_idle();
            // The listener is on the same server, which will see no NOTIFY again.
            let db = self.clone();
            tokio::spawn(async move { db.refresh_listener().await });
        }
        let breaker = &self.ctx.breaker;
        if !breaker.allow() {
            return Err(DbError::Unavailable("circuit breaker open after repeated connection failures".into()));
        }
        match self.pool.get().await {
            Ok(obj) => {
                breaker.success();
                Ok(PgClient { obj: Some(obj), ctx: self.ctx.clone(), abandoned: AtomicBool::new(false) })
            }
            // Waiting for a busy pool says nothing about the server's health.
            Err(deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait)) => {
                breaker.success_if_probing();
                Err(DbError::Unavailable("timed out waiting for a free database connection".into()))
            }
            Err(e) => {
                breaker.failure();
                Err(e.into())
            }
        }
    }

    pub fn statement_mode(&self) -> StatementMode {
        self.ctx.mode
    }

    pub fn breaker_open(&self) -> bool {
        self.ctx.breaker.is_open()
    }

    pub fn status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus {
            max_size: s.max_size,
            size: s.size,
            idle: s.available,
            in_use: s.size.saturating_sub(s.available),
            waiting: s.waiting,
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.ctx.stats.snapshot()
    }

    /// The statement totals since the pool was built (for the metrics history).
    pub fn counters(&self) -> Counters {
        self.ctx.stats.counters()
    }

    /// Statement latencies since the pool was built (for `/metrics`).
    pub fn latency_histogram(&self) -> LatencyHistogram {
        self.ctx.stats.histogram()
    }

    /// Closes every idle connection: after one was found broken, the others
    /// opened before the same event are likely broken too, and the retry
    /// must get a new one.
    pub fn forget_idle(&self) {
        self.pool.retain(|_, _| false);
    }

    /// Closes connections idle longer than `idle`, keeping at least `keep`.
    pub fn reap_idle(&self, idle: Duration, keep: usize) {
        let mut kept = 0usize;
        let size = self.pool.status().size;
        self.pool.retain(|_, metrics| {
            if size - kept.min(size) <= keep || metrics.last_used() < idle {
                kept += 1;
                true
            } else {
                false
            }
        });
    }

    /// Closes the pool (and the replicas'): waiting and future requests
    /// fail, open connections close.
    pub fn close(&self) {
        self.pool.close();
        if let Some(pipeline) = &self.pipeline {
            pipeline.close();
        }
        if let Some(set) = &self.replicas {
            set.close();
        }
    }

    /// A connection shared by concurrent short reads (see `db::pipeline`), or
    /// `None` when they are off or none can be opened now (use the pool).
    pub async fn pipeline_conn(&self) -> Option<Arc<SharedConn>> {
        match &self.pipeline {
            Some(pipeline) => pipeline.conn(self).await,
            None => None,
        }
    }

    /// What the shared read connections did (all zero when they are off).
    pub fn pipeline_counts(&self) -> PipelineCounts {
        self.pipeline.as_ref().map(|p| p.counts()).unwrap_or_default()
    }

    /// Whether a read that failed with `error` on a shared connection should
    /// run again on a pooled one (the connection broke, or the read hit the
    /// shared connection's short timeouts); a broken connection is replaced.
    pub fn pipeline_failed(&self, conn: &SharedConn, error: &DbError) -> bool {
        let retry = error.is_transient() || matches!(error, DbError::Timeout);
        if retry && let Some(pipeline) = &self.pipeline {
            pipeline.failed(conn, error);
        }
        retry
    }

    /// The replicas, when `DATABASE_REPLICA_URLS` names any.
    pub fn replicas(&self) -> Option<&replicas::ReplicaSet> {
        self.replicas.as_deref()
    }

    /// A connection for an idempotent read of the current request: a
    /// replica's when the request, the caller and a replica allow it (see
    /// [`replicas`]), else the primary's.
    pub async fn read_client(&self) -> Result<(PgClient, replicas::ReadTarget), DbError> {
        if let Some(set) = &self.replicas
            && let replicas::ReadTarget::Replica(at) = set.choose()
        {
            match set.replica_db(at).client().await {
                Ok(client) => return Ok((client, replicas::ReadTarget::Replica(at))),
                Err(e) => set.failed(at, &e),
            }
        }
        Ok((self.client().await?, replicas::ReadTarget::Primary))
    }

    /// A read on `target` met a transient failure: a replica is taken out
    /// (the retry goes to the primary); the primary's idle connections are
    /// dropped when the server went away.
    pub fn read_failed(&self, client: PgClient, target: replicas::ReadTarget, error: &DbError) {
        match (target, &self.replicas) {
            (replicas::ReadTarget::Replica(at), Some(set)) => {
                if matches!(error, DbError::Unavailable(_)) {
                    client.discard();
                }
                set.failed(at, error);
            }
            _ => {
                if matches!(error, DbError::Unavailable(_)) {
                    // What killed this connection (a restart, a failover,
                    // pg_terminate_backend) killed its idle siblings too.
                    client.discard();
                    self.forget_idle();
                }
            }
        }
    }

    /// After a write for `user`: with replicas, records the primary's WAL
    /// position as the user's last write, so that the user's reads go only
    /// to a replica that has replayed it. Without replicas, nothing.
    pub async fn note_write(&self, user: uuid::Uuid) -> Result<(), DbError> {
        match &self.replicas {
            Some(set) => replicas::record_write(self, user, set.limits().read_your_writes_window).await,
            None => Ok(()),
        }
    }
}

/// Runs an idempotent read on a pooled connection, and once more on a fresh
/// connection if the first attempt met a transient failure (a connection
/// killed by `pg_terminate_backend`, a server restart). Failing to get a
/// connection at all is not retried: the circuit breaker handles that.
/// With replicas, the first attempt goes where [`Db::read_client`] says (a
/// replica when the request and its caller allow it); the retry goes to the
/// primary, and a replica that failed is out until probed back in.
///
/// `db_read!(state.db, |c| queries::get_user(c, id))` evaluates to
/// `Result<T, DbError>`. (A macro rather than a method taking an async
/// closure: such closures cannot yet promise a `Send` future to axum.)
#[macro_export]
macro_rules! db_read {
    ($db:expr, |$c:ident| $body:expr) => {{
        let db: &$crate::db::Db = &$db;
        let mut first = true;
        loop {
            // The first attempt may go to a replica; a retry, to the primary.
            let attempt = if first {
                db.read_client().await
            } else {
                db.client().await.map(|c| (c, $crate::db::replicas::ReadTarget::Primary))
            };
            let (client, target) = match attempt {
                Ok(taken) => taken,
                Err(e) => break Err(e),
            };
            let result = {
                let $c = &client;
                $body.await
            };
            match result {
                Err(e) if first && $crate::db::DbError::is_transient(&e) => {
                    ::tracing::debug!(error = %e, "retrying a read on a fresh connection");
                    db.read_failed(client, target, &e);
                    first = false;
                }
                other => break other,
            }
        }
    }};
}

/// [`db_read!`] for a read of bounded cost (a row by its key, a page down
/// an index) whose caller is already known: first on a connection shared
/// with other requests' reads ([`Db::pipeline_conn`]), and when that one
/// broke or the read outlasted its short timeouts, again as `db_read!` runs
/// it, on the pool. With read replicas it is `db_read!` (a replica may serve
/// the read; the shared connection is the primary's).
#[macro_export]
macro_rules! db_read_shared {
    ($db:expr, |$c:ident| $body:expr) => {{
        let db: &$crate::db::Db = &$db;
        let mut shared = None;
        if db.replicas().is_none()
            && let Some(conn) = db.pipeline_conn().await
        {
            let result = {
                let $c = &*conn;
                $body.await
            };
            match result {
                Err(e) if db.pipeline_failed(&conn, &e) => {}
                done => shared = Some(done),
            }
        }
        match shared {
            Some(done) => done,
            None => $crate::db_read!(db, |$c| $body),
        }
    }};
}

/// A pooled connection whose statements go through the instrumented path.
///
/// If a statement is still running when its caller gives up (the request
/// timed out, or its client went away, and the future was dropped), the
/// statement is cancelled on the server and the connection leaves the pool
/// instead of going back to it busy: the next request must not queue behind
/// abandoned work.
pub struct PgClient {
    /// Always `Some` until dropped.
    obj: Option<deadpool_postgres::Object>,
    ctx: Arc<DbContext>,
    /// Set when a statement was abandoned in flight.
    abandoned: AtomicBool,
}

impl PgClient {
    fn conn(&self) -> &deadpool_postgres::Object {
        self.obj.as_ref().expect("a PgClient holds its connection until dropped")
    }

    pub fn statement_mode(&self) -> StatementMode {
        self.ctx.mode
    }

    /// Closes this connection instead of returning it to the pool (it was
    /// found broken, and may not know it yet).
    pub fn discard(self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }

    pub async fn transaction(&mut self) -> Result<PgTx<'_>, DbError> {
        let PgClient { obj, ctx, abandoned } = self;
        let obj = obj.as_mut().expect("a PgClient holds its connection until dropped");
        let guard = InFlight::with_token(obj.cancel_token(), abandoned, ctx);
        let tx = obj.transaction().await;
        guard.done();
        let tx = PgTx { tx: tx?, ctx, abandoned };
        if let Some(settings) = &ctx.local_settings {
            tx.batch_execute(settings).await?;
        }
        Ok(tx)
    }

    /// A transaction whose changes the audit triggers attribute to `actor`
    /// (`user:<uuid>`, `apikey:<uuid>`, `system:<job>`).
    pub async fn transaction_as(&mut self, actor: &str) -> Result<PgTx<'_>, DbError> {
        let tx = self.transaction().await?;
        tx.set_actor(actor).await?;
        Ok(tx)
    }

    /// Runs a script of statements without parameters (simple protocol).
    pub async fn batch_execute(&self, sql: &str) -> Result<(), DbError> {
        let start = Instant::now();
        let guard = InFlight::new(&***self.conn(), &self.abandoned, &self.ctx);
        let result = self.conn().batch_execute(sql).await;
        guard.done();
        self.ctx.record(sql, start.elapsed(), result.is_ok());
        if let Err(e) = &result {
            self.ctx.note_read_only(e, &self.abandoned);
        }
        Ok(result?)
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        if self.abandoned.load(Ordering::Relaxed)
            && let Some(obj) = self.obj.take()
        {
            // Out of the pool; the connection closes once the cancelled
            // statement has answered.
            drop(deadpool_postgres::Object::take(obj));
        }
    }
}

/// What can cancel the statement running on its connection.
trait Cancellable: Sync {
    fn cancel_token(&self) -> tokio_postgres::CancelToken;
}

impl Cancellable for tokio_postgres::Client {
    fn cancel_token(&self) -> tokio_postgres::CancelToken {
        tokio_postgres::Client::cancel_token(self)
    }
}

impl Cancellable for tokio_postgres::Transaction<'_> {
    fn cancel_token(&self) -> tokio_postgres::CancelToken {
        tokio_postgres::Transaction::cancel_token(self)
    }
}

/// Where the cancel token comes from: taken from the connection only when
/// needed, since a token copies the connection's settings.
enum CancelSource<'a> {
    Connection(&'a dyn Cancellable),
    Token(tokio_postgres::CancelToken),
}

/// Armed while a statement is on its way; dropped armed (its future was
/// dropped before the answer came), it cancels the statement and marks the
/// connection abandoned.
struct InFlight<'a> {
    conn: CancelSource<'a>,
    abandoned: &'a AtomicBool,
    ctx: &'a DbContext,
    armed: bool,
}

impl<'a> InFlight<'a> {
    fn new(conn: &'a dyn Cancellable, abandoned: &'a AtomicBool, ctx: &'a DbContext) -> Self {
        InFlight { conn: CancelSource::Connection(conn), abandoned, ctx, armed: true }
    }

    /// For a statement that consumes its connection handle (commit, rollback).
    fn with_token(token: tokio_postgres::CancelToken, abandoned: &'a AtomicBool, ctx: &'a DbContext) -> Self {
        InFlight { conn: CancelSource::Token(token), abandoned, ctx, armed: true }
    }

    fn done(mut self) {
        self.armed = false;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.abandoned.store(true, Ordering::Relaxed);
        let token = match &self.conn {
            CancelSource::Connection(conn) => conn.cancel_token(),
            CancelSource::Token(token) => token.clone(),
        };
        let tls = self.ctx.cancel_tls.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let sent = match tls {
                None => token.cancel_query(tokio_postgres::NoTls).await,
                Some(tls) => token.cancel_query(tls).await,
            };
            match sent {
                Ok(()) => tracing::debug!("cancelled a statement whose caller gave up"),
                Err(e) => tracing::warn!(error = %e, "could not cancel a statement whose caller gave up"),
            }
        });
    }
}

/// A transaction on a pooled connection; rolled back if dropped uncommitted.
pub struct PgTx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    ctx: &'a DbContext,
    abandoned: &'a AtomicBool,
}

impl PgTx<'_> {
    pub async fn set_actor(&self, actor: &str) -> Result<(), DbError> {
        self.query("SELECT set_config('devx.actor', $1, true)", &[&actor]).await?;
        Ok(())
    }

    /// Runs a script of statements without parameters (simple protocol).
    pub async fn batch_execute(&self, sql: &str) -> Result<(), DbError> {
        let start = Instant::now();
        let guard = InFlight::new(&*self.tx, self.abandoned, self.ctx);
        let result = self.tx.batch_execute(sql).await;
        guard.done();
        self.ctx.record(sql, start.elapsed(), result.is_ok());
        if let Err(e) = &result {
            self.ctx.note_read_only(e, self.abandoned);
        }
        Ok(result?)
    }

    /// Commits. A connection that breaks here leaves the outcome unknown
    /// ([`DbError::InDoubt`]), unlike one that breaks earlier in the
    /// transaction (nothing was committed, and the work may run again).
    pub async fn commit(self) -> Result<(), DbError> {
        let guard = InFlight::with_token(self.tx.cancel_token(), self.abandoned, self.ctx);
        let result = self.tx.commit().await;
        guard.done();
        result.map_err(|e| match DbError::from(e) {
            DbError::Unavailable(reason) => DbError::InDoubt(reason),
            other => other,
        })
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        let guard = InFlight::with_token(self.tx.cancel_token(), self.abandoned, self.ctx);
        let result = self.tx.rollback().await;
        guard.done();
        Ok(result?)
    }
}

/// Where a connection keeps the statements it prepared (deadpool's cache).
trait CachedStatements: Sync {
    fn prepare_cached(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<tokio_postgres::Statement, tokio_postgres::Error>> + Send;
}

impl CachedStatements for deadpool_postgres::ClientWrapper {
    fn prepare_cached(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<tokio_postgres::Statement, tokio_postgres::Error>> + Send {
        deadpool_postgres::ClientWrapper::prepare_cached(self, sql)
    }
}

impl CachedStatements for deadpool_postgres::Transaction<'_> {
    fn prepare_cached(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<tokio_postgres::Statement, tokio_postgres::Error>> + Send {
        deadpool_postgres::Transaction::prepare_cached(self, sql)
    }
}

enum Op {
    Query,
    Execute,
}

enum Output {
    Rows(Vec<Row>),
    Count(u64),
}

/// The one path every parameterized statement takes. `raw` is the same
/// connection or transaction as `client`, seen as tokio-postgres's own type;
/// `in_tx`: it is inside a transaction; `cancellable`: a statement whose
/// caller gives up is cancelled (not on a shared connection, where the
/// cancel would hit whichever statement runs).
#[allow(clippy::too_many_arguments)]
async fn run<C, R>(
    client: &C,
    raw: &R,
    in_tx: bool,
    cancellable: bool,
    ctx: &DbContext,
    abandoned: &AtomicBool,
    sql: &str,
    params: Params<'_>,
    op: Op,
) -> Result<Output, DbError>
where
    C: CachedStatements,
    R: tokio_postgres::GenericClient + Cancellable + Sync,
{
    let start = Instant::now();
    let guard = cancellable.then(|| InFlight::new(raw, abandoned, ctx));
    let result = async {
        match ctx.mode {
            StatementMode::Prepared => {
                let statement = client.prepare_cached(sql).await?;
                match op {
                    Op::Query => raw.query(&statement, params).await.map(Output::Rows),
                    Op::Execute => raw.execute(&statement, params).await.map(Output::Count),
                }
            }
            StatementMode::Unnamed => {
                let types = param_types(raw, in_tx, ctx, sql).await?;
                // Parameters beyond the statement's (a caller's bug) go
                // untyped, and the server rejects the count as it would a
                // prepared statement's.
                let typed: Vec<(&(dyn ToSql + Sync), Type)> =
                    params.iter().copied().zip(types.iter().cloned().chain(std::iter::repeat(Type::UNKNOWN))).collect();
                match op {
                    Op::Query => raw.query_typed(sql, &typed).await.map(Output::Rows),
                    Op::Execute => raw.execute_typed(sql, &typed).await.map(Output::Count),
                }
            }
        }
    }
    .await;
    if let Some(guard) = guard {
        guard.done();
    }
    ctx.record(sql, start.elapsed(), result.is_ok());
    result.map_err(|e| {
        ctx.note_read_only(&e, abandoned);
        let err = DbError::from(e);
        tracing::debug!(sql = %normalize_sql(sql), error = %err, "statement failed");
        err
    })
}

/// Unnamed mode: the parameter types of `sql` as the server infers them,
/// exactly what prepared mode would bind with. Learned once per SQL text by
/// preparing it inside a transaction and closing it before the transaction
/// ends, so that behind PgBouncer in transaction mode the named statement
/// lives and dies on one server connection and never outlives it.
async fn param_types<R: tokio_postgres::GenericClient + Sync>(
    raw: &R,
    in_tx: bool,
    ctx: &DbContext,
    sql: &str,
) -> Result<Arc<[Type]>, tokio_postgres::Error> {
    if let Some(types) = ctx.param_types.lock().expect("param type cache").get(sql) {
        return Ok(types.clone());
    }
    let describe = async {
        let statement = raw.prepare(sql).await?;
        let types: Arc<[Type]> = statement.params().into();
        // Dropping the statement queues its Close before anything sent next.
        drop(statement);
        Ok::<_, tokio_postgres::Error>(types)
    };
    let types = if in_tx {
        describe.await?
    } else {
        raw.batch_execute("BEGIN").await?;
        match describe.await {
            Ok(types) => {
                raw.batch_execute("COMMIT").await?;
                types
            }
            Err(e) => {
                let _ = raw.batch_execute("ROLLBACK").await;
                return Err(e);
            }
        }
    };
    let mut cache = ctx.param_types.lock().expect("param type cache");
    if cache.len() >= PARAM_TYPES_CAPACITY {
        cache.clear();
    }
    cache.insert(sql.to_string(), types.clone());
    Ok(types)
}

/// Something statements can run on: a pooled connection or a transaction.
pub trait Queryable: Sync {
    fn query(&self, sql: &str, params: Params<'_>) -> impl Future<Output = Result<Vec<Row>, DbError>> + Send;
    fn execute(&self, sql: &str, params: Params<'_>) -> impl Future<Output = Result<u64, DbError>> + Send;

    fn query_opt(&self, sql: &str, params: Params<'_>) -> impl Future<Output = Result<Option<Row>, DbError>> + Send {
        async move { Ok(self.query(sql, params).await?.into_iter().next()) }
    }

    fn query_one(&self, sql: &str, params: Params<'_>) -> impl Future<Output = Result<Row, DbError>> + Send {
        async move { self.query_opt(sql, params).await?.ok_or(DbError::NoRow) }
    }

    /// Every row, read into `T` by column name.
    fn query_as<T: FromRow + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> impl Future<Output = Result<Vec<T>, DbError>> + Send {
        async move { row::decode_all(&self.query(sql, params).await?) }
    }

    /// The first row, if any, read into `T` by column name.
    fn query_opt_as<T: FromRow + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> impl Future<Output = Result<Option<T>, DbError>> + Send {
        async move { self.query_opt(sql, params).await?.as_ref().map(row::decode).transpose() }
    }

    /// The one row, read into `T` by column name; no row is [`DbError::NoRow`].
    fn query_one_as<T: FromRow + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> impl Future<Output = Result<T, DbError>> + Send {
        async move { row::decode(&self.query_one(sql, params).await?) }
    }

    /// The single column of the one row (`SELECT count(*) ...`,
    /// `... RETURNING id`): a statement of one column, so nothing can shift.
    fn query_scalar<T: for<'a> tokio_postgres::types::FromSql<'a> + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> impl Future<Output = Result<T, DbError>> + Send {
        async move { row::single(&self.query_one(sql, params).await?) }
    }

    /// The single column of the first row, if there is a row.
    fn query_scalar_opt<T: for<'a> tokio_postgres::types::FromSql<'a> + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> impl Future<Output = Result<Option<T>, DbError>> + Send {
        async move { self.query_opt(sql, params).await?.as_ref().map(row::single).transpose() }
    }
}

macro_rules! impl_queryable {
    ($ty:ty, $raw_ty:ty, $in_tx:expr, $cancellable:expr, $client:ident => $inner:expr) => {
        impl Queryable for $ty {
            async fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, DbError> {
                let $client = self;
                let raw: &$raw_ty = $inner;
                match run($inner, raw, $in_tx, $cancellable, &$client.ctx, &$client.abandoned, sql, params, Op::Query)
                    .await?
                {
                    Output::Rows(rows) => Ok(rows),
                    Output::Count(_) => unreachable!("a query returns rows"),
                }
            }

            async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, DbError> {
                let $client = self;
                let raw: &$raw_ty = $inner;
                match run($inner, raw, $in_tx, $cancellable, &$client.ctx, &$client.abandoned, sql, params, Op::Execute)
                    .await?
                {
                    Output::Count(n) => Ok(n),
                    Output::Rows(_) => unreachable!("execute returns a count"),
                }
            }
        }
    };
}

impl_queryable!(PgClient, tokio_postgres::Client, false, true, c => &**c.conn());
impl_queryable!(PgTx<'_>, tokio_postgres::Transaction<'_>, true, true, c => &c.tx);
impl_queryable!(SharedConn, tokio_postgres::Client, false, false, c => &c.client);
