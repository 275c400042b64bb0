//! Prometheus metrics, served at `GET /metrics` in the text exposition format.
//!
//! Crate: `prometheus` (TiKV's rust-prometheus, 0.14, without its protobuf
//! feature) rather than `metrics` + `metrics-exporter-prometheus`. The
//! `metrics` facade records into one global recorder per process, while devx
//! builds a registry per server ([`Metrics`] lives in `AppState`): the tests
//! run many servers in one process and each must count its own requests.
//! `prometheus` also lets a custom `Collector` mirror counters that already
//! exist (the instrumented query layer's atomics in `db::stats`) at scrape
//! time, so recording a statement costs nothing more than it did, and it
//! ships the standard `process_*` collector. Its text encoder is the
//! reference implementation of the format.
//!
//! What is exported:
//! - `devx_http_requests_total` and `devx_http_request_duration_seconds`, by
//!   `method`, `route` (the route template, `/api/templates/{slug}`, never the
//!   raw path; `unmatched` when no route matched) and `status`: `observe`, a
//!   middleware layer in `http::middleware`;
//! - `devx_db_pool_{max_size,size,available,in_use,waiting}`,
//!   `devx_db_circuit_breaker_open`, `devx_db_queries_total`,
//!   `devx_db_query_errors_total`, `devx_db_slow_queries_total` and the
//!   `devx_db_query_duration_seconds` histogram: read from the pool and the
//!   instrumented layer at each scrape;
//! - `devx_db_pipeline_{reads,retries,opened,open_failures}_total`: the
//!   shared read connection's reads, those that ran again on the pool, and
//!   its opens (one more after every break);
//! - with read replicas: `devx_db_reads_total{target}` (`primary`, or the
//!   replica's masked URL), `devx_db_read_fallbacks_total` (no replica
//!   usable), `devx_db_read_sticky_total` (no usable replica had replayed the
//!   caller's own last write), and per replica `devx_db_replica_usable`,
//!   `devx_db_replica_lag_seconds` and `devx_db_replica_lag_bytes` as the last
//!   probe found them;
//! - `devx_database_up`, `devx_migrations_pending` and
//!   `devx_tasks{status}` (task queue depth): queried at each scrape (two
//!   cheap statements, bounded by a short timeout); when the database does
//!   not answer the scrape still succeeds, with `devx_database_up 0`;
//! - `devx_database_health_check_up` and
//!   `devx_database_health_check_duration_seconds`: the last periodic
//!   health check (`DB_HEALTH_CHECK_ENABLED`), recorded by
//!   [`Metrics::record_health_check`];
//! - `devx_retention_deleted_rows_total{table}`: process-wide, counted by
//!   [`record_retention_deleted`];
//! - `devx_build_info{version}` and the `process_*` metrics (memory, CPU,
//!   file descriptors, start time).
//!
//! The route itself (`GET /metrics`, with its `DEVX_METRICS_TOKEN` check)
//! is `health::scrape`; this module only records and renders.
//!
//! Beside the registry, [`history`] keeps the last 24 hours of this
//! process's request and database statistics in memory, sampled every
//! `DEVX_METRICS_SAMPLE_INTERVAL` by [`Metrics::sample_every`] (a task the
//! application starts and stops), for the dashboard's charts
//! (`GET /api/admin/metrics/history`).

pub mod history;

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::core::{Collector, Desc};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder, proto,
};

use crate::db::{Db, DbError, FromRow, Queryable};
use history::{History, HttpTotals, Reading};

/// Task statuses always exported (at 0 when none), so a dashboard's series
/// do not come and go.
const TASK_STATUSES: [&str; 5] = ["pending", "in_progress", "completed", "failed", "cancelled"];

/// How long a scrape waits for the database before answering without it.
const SCRAPE_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// HTTP latency buckets, in seconds.
const HTTP_BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static RETENTION_DELETED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new("devx_retention_deleted_rows_total", "Rows deleted by retention, by table"),
        &["table"],
    )
    .expect("a valid metric definition")
});

/// Counts rows the retention job deleted from `table` (process-wide, so the
/// job needs no handle to the server's state).
pub fn record_retention_deleted(table: &str, rows: u64) {
    RETENTION_DELETED.with_label_values(&[table]).inc_by(rows);
}

/// One server's metrics: its registry and the series it records itself.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    database_up: IntGauge,
    migrations_pending: IntGauge,
    tasks: IntGaugeVec,
    /// Every request's count, 5xx and time, summed over the labels (for the
    /// history: three atomic adds per request).
    http_requests_total: AtomicU64,
    http_errors_total: AtomicU64,
    http_micros_total: AtomicU64,
    history: History,
    health_check_up: IntGauge,
    health_check_seconds: prometheus::Gauge,
    /// The last periodic health check: when, and why it failed if it did.
    health_check: std::sync::Mutex<Option<HealthCheck>>,
}

/// The outcome of one periodic health check (`DB_HEALTH_CHECK_ENABLED`).
#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub at: std::time::Instant,
    /// `None`: the database answered.
    pub error: Option<String>,
}

impl Metrics {
    /// `sample_interval`: how often [`Metrics::sample_every`] adds to the history.
    pub fn new(db: Db, sample_interval: Duration) -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("devx_http_requests_total", "HTTP requests answered, by method, route template and status"),
            &["method", "route", "status"],
        )
        .expect("a valid metric definition");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "devx_http_request_duration_seconds",
                "Time to answer an HTTP request (until the response head), by method, route template and status",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["method", "route", "status"],
        )
        .expect("a valid metric definition");
        let database_up = IntGauge::new("devx_database_up", "1 when the last scrape could query the database, else 0")
            .expect("a valid metric definition");
        let migrations_pending = IntGauge::new(
            "devx_migrations_pending",
            "Embedded migrations not applied to the database (last value read)",
        )
        .expect("a valid metric definition");
        let tasks =
            IntGaugeVec::new(Opts::new("devx_tasks", "Tasks in the queue (devx.tasks), by status"), &["status"])
                .expect("a valid metric definition");
        let health_check_up = IntGauge::new(
            "devx_database_health_check_up",
            "1 when the last periodic health check (DB_HEALTH_CHECK_ENABLED) reached the database, else 0",
        )
        .expect("a valid metric definition");
        let health_check_seconds = prometheus::Gauge::new(
            "devx_database_health_check_duration_seconds",
            "How long the last periodic health check took",
        )
        .expect("a valid metric definition");
        let build_info =
            IntGaugeVec::new(Opts::new("devx_build_info", "Always 1; the version as a label"), &["version"])
                .expect("a valid metric definition");
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);

        let mut collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(http_requests.clone()),
            Box::new(http_duration.clone()),
            Box::new(database_up.clone()),
            Box::new(migrations_pending.clone()),
            Box::new(tasks.clone()),
            Box::new(health_check_up.clone()),
            Box::new(health_check_seconds.clone()),
            Box::new(build_info),
            Box::new(RETENTION_DELETED.clone()),
            Box::new(DbCollector::new(db.clone())),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ];
        if db.replicas().is_some() {
            collectors.push(Box::new(ReplicaCollector::new(db)));
        }
        for c in collectors {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            database_up,
            migrations_pending,
            tasks,
            http_requests_total: AtomicU64::new(0),
            http_errors_total: AtomicU64::new(0),
            http_micros_total: AtomicU64::new(0),
            history: History::new(sample_interval),
            health_check_up,
            health_check_seconds,
            health_check: std::sync::Mutex::new(None),
        }
    }

    /// Records a periodic health check: its metrics, and the outcome
    /// `/readyz` reads.
    pub fn record_health_check(&self, elapsed: Duration, error: Option<String>) {
        self.health_check_up.set(i64::from(error.is_none()));
        self.health_check_seconds.set(elapsed.as_secs_f64());
        let check = HealthCheck { at: std::time::Instant::now(), error };
        *self.health_check.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(check);
    }

    /// The last periodic health check, if one ran.
    pub fn last_health_check(&self) -> Option<HealthCheck> {
        self.health_check.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The recent history of this process's statistics.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Adds one sample to the history: the request totals, `db`'s statement
    /// totals and its pool, now.
    pub fn sample(&self, db: &Db) {
        self.history.record(Reading {
            at: chrono::Utc::now(),
            instant: Instant::now(),
            http: HttpTotals {
                requests: self.http_requests_total.load(Ordering::Relaxed),
                errors: self.http_errors_total.load(Ordering::Relaxed),
                micros: self.http_micros_total.load(Ordering::Relaxed),
            },
            db: db.counters(),
            pool: db.status(),
        });
    }

    /// Samples `db` into the history every interval, forever: the task the
    /// application runs beside the server and aborts at shutdown. The first
    /// sample comes one interval after the start. Per process by nature (it
    /// samples this process's counters and pool), so every `serve` process
    /// runs it, unlike the shared periodic jobs of `jobs`.
    pub async fn sample_every(&self, db: &Db) {
        let interval = self.history.interval();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.sample(db);
        }
    }

    pub fn observe_http(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let code = status.to_string();
        let labels = [method, route, code.as_str()];
        self.http_requests.with_label_values(&labels).inc();
        self.http_duration.with_label_values(&labels).observe(elapsed.as_secs_f64());
        self.http_requests_total.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.http_errors_total.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.http_micros_total.fetch_add(micros, Ordering::Relaxed);
    }

    /// Refreshes what is read from the database, then renders every series.
    pub async fn render(&self, db: &Db) -> String {
        self.refresh(db).await;
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "could not encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    async fn refresh(&self, db: &Db) {
        let probe = async {
            let client = db.client().await?;
            let pending = crate::migrate::pending_ids(&client).await?.len();
            // The tasks table may not exist yet (migrations pending): that
            // does not make the database down.
            let tasks = client
                .query_as::<TaskCount>("SELECT status, count(*) AS count FROM devx.tasks GROUP BY status", &[])
                .await;
            Ok::<_, DbError>((pending, tasks))
        };
        match tokio::time::timeout(SCRAPE_DB_TIMEOUT, probe).await {
            Ok(Ok((pending, tasks))) => {
                self.database_up.set(1);
                self.migrations_pending.set(i64::try_from(pending).unwrap_or(i64::MAX));
                self.tasks.reset();
                if let Ok(rows) = tasks {
                    for status in TASK_STATUSES {
                        self.tasks.with_label_values(&[status]).set(0);
                    }
                    for row in rows {
                        self.tasks.with_label_values(&[row.status.as_str()]).set(row.count);
                    }
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "metrics scrape: database unavailable");
                self.database_up.set(0);
            }
            Err(_) => {
                tracing::debug!("metrics scrape: the database did not answer in time");
                self.database_up.set(0);
            }
        }
    }
}

/// One row of the tasks-by-status gauge's query.
#[derive(FromRow)]
struct TaskCount {
    status: String,
    count: i64,
}

/// Mirrors the pool and the instrumented query layer at scrape time.
struct DbCollector {
    db: Db,
    descs: Vec<Desc>,
}

const DB_SERIES: [(&str, &str); 14] = [
    ("devx_db_pool_max_size", "Most connections the pool opens"),
    ("devx_db_pool_size", "Connections the pool has open"),
    ("devx_db_pool_available", "Open connections idle in the pool"),
    ("devx_db_pool_in_use", "Open connections lent out"),
    ("devx_db_pool_waiting", "Requests waiting for a connection"),
    ("devx_db_circuit_breaker_open", "1 while the circuit breaker refuses new connections"),
    ("devx_db_queries_total", "Statements run through the instrumented layer"),
    ("devx_db_query_errors_total", "Statements that failed"),
    ("devx_db_slow_queries_total", "Statements slower than DB_SLOW_QUERY_THRESHOLD"),
    ("devx_db_query_duration_seconds", "Statement latency"),
    ("devx_db_pipeline_reads_total", "Reads sent on a shared read connection"),
    (
        "devx_db_pipeline_retries_total",
        "Reads on a shared connection that ran again on the pool (it broke, or they outlasted DB_PIPELINE_TIMEOUT)",
    ),
    ("devx_db_pipeline_opened_total", "Shared read connections opened"),
    ("devx_db_pipeline_open_failures_total", "Shared read connections that could not be opened"),
];

impl DbCollector {
    fn new(db: Db) -> Self {
        let descs = DB_SERIES
            .iter()
            .map(|(name, help)| Desc::new(name.to_string(), help.to_string(), vec![], Default::default()))
            .collect::<Result<Vec<_>, _>>()
            .expect("valid metric descriptions");
        DbCollector { db, descs }
    }
}

fn help(name: &str) -> &'static str {
    DB_SERIES.iter().find(|(n, _)| *n == name).map_or("", |(_, h)| *h)
}

fn family(name: &str, kind: proto::MetricType, metric: proto::Metric) -> proto::MetricFamily {
    let mut mf = proto::MetricFamily::default();
    mf.set_name(name.to_string());
    mf.set_help(help(name).to_string());
    mf.set_field_type(kind);
    mf.set_metric(vec![metric]);
    mf
}

fn gauge(name: &str, value: f64) -> proto::MetricFamily {
    let mut g = proto::Gauge::default();
    g.set_value(value);
    let mut m = proto::Metric::default();
    m.set_gauge(g);
    family(name, proto::MetricType::GAUGE, m)
}

fn counter(name: &str, value: f64) -> proto::MetricFamily {
    let mut c = proto::Counter::default();
    c.set_value(value);
    let mut m = proto::Metric::default();
    m.set_counter(c);
    family(name, proto::MetricType::COUNTER, m)
}

/// Mirrors the read replicas' counters and last probes at scrape time.
struct ReplicaCollector {
    db: Db,
    descs: Vec<Desc>,
}

const REPLICA_SERIES: [(&str, &str, &[&str]); 6] = [
    ("devx_db_reads_total", "Reads by where they went: primary, or a replica", &["target"]),
    ("devx_db_read_fallbacks_total", "Reads sent to the primary because no replica was usable", &[]),
    (
        "devx_db_read_sticky_total",
        "Reads sent to the primary because no usable replica had replayed the caller's own last write",
        &[],
    ),
    ("devx_db_replica_usable", "1 while the replica takes reads", &["replica"]),
    ("devx_db_replica_lag_seconds", "Replay lag of the replica at its last probe", &["replica"]),
    (
        "devx_db_replica_lag_bytes",
        "WAL bytes between the primary and the replica's replay at its last probe",
        &["replica"],
    ),
];

impl ReplicaCollector {
    fn new(db: Db) -> Self {
        let descs = REPLICA_SERIES
            .iter()
            .map(|(name, help, labels)| {
                Desc::new(
                    name.to_string(),
                    help.to_string(),
                    labels.iter().map(ToString::to_string).collect(),
                    Default::default(),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .expect("valid metric descriptions");
        ReplicaCollector { db, descs }
    }
}

/// One family of metrics, each with its label value (none when `label` is empty).
fn labelled(name: &str, kind: proto::MetricType, label: &str, values: Vec<(String, f64)>) -> proto::MetricFamily {
    let help = REPLICA_SERIES.iter().find(|(n, _, _)| *n == name).map_or("", |(_, h, _)| *h);
    let mut mf = proto::MetricFamily::default();
    mf.set_name(name.to_string());
    mf.set_help(help.to_string());
    mf.set_field_type(kind);
    mf.set_metric(
        values
            .into_iter()
            .map(|(label_value, value)| {
                let mut m = proto::Metric::default();
                if !label.is_empty() {
                    let mut pair = proto::LabelPair::default();
                    pair.set_name(label.to_string());
                    pair.set_value(label_value);
                    m.set_label(vec![pair]);
                }
                if kind == proto::MetricType::COUNTER {
                    let mut c = proto::Counter::default();
                    c.set_value(value);
                    m.set_counter(c);
                } else {
                    let mut g = proto::Gauge::default();
                    g.set_value(value);
                    m.set_gauge(g);
                }
                m
            })
            .collect(),
    );
    mf
}

impl Collector for ReplicaCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let Some(set) = self.db.replicas() else { return Vec::new() };
        let counts = set.counts();
        let replicas = set.status();
        let mut reads = vec![("primary".to_string(), counts.primary as f64)];
        reads.extend(replicas.iter().map(|r| (r.name.clone(), r.reads as f64)));
        let per = |f: &dyn Fn(&crate::db::replicas::ReplicaStatus) -> Option<f64>| {
            replicas.iter().filter_map(|r| f(r).map(|v| (r.name.clone(), v))).collect::<Vec<_>>()
        };
        use proto::MetricType::{COUNTER, GAUGE};
        vec![
            labelled("devx_db_reads_total", COUNTER, "target", reads),
            labelled("devx_db_read_fallbacks_total", COUNTER, "", vec![(String::new(), counts.fallbacks as f64)]),
            labelled("devx_db_read_sticky_total", COUNTER, "", vec![(String::new(), counts.sticky as f64)]),
            labelled("devx_db_replica_usable", GAUGE, "replica", per(&|r| Some(if r.usable { 1.0 } else { 0.0 }))),
            labelled("devx_db_replica_lag_seconds", GAUGE, "replica", per(&|r| r.lag_seconds)),
            labelled("devx_db_replica_lag_bytes", GAUGE, "replica", per(&|r| r.lag_bytes.map(|b| b as f64))),
        ]
    }
}

impl Collector for DbCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let pool = self.db.status();
        let stats = self.db.stats();
        let latency = self.db.latency_histogram();
        let shared = self.db.pipeline_counts();
        let mut histogram = proto::Histogram::default();
        histogram.set_sample_count(latency.count);
        histogram.set_sample_sum(latency.sum_seconds);
        histogram.set_bucket(
            latency
                .buckets
                .iter()
                .map(|&(bound, cumulative)| {
                    let mut b = proto::Bucket::default();
                    b.set_upper_bound(bound);
                    b.set_cumulative_count(cumulative);
                    b
                })
                .collect(),
        );
        let mut m = proto::Metric::default();
        m.set_histogram(histogram);
        vec![
            gauge("devx_db_pool_max_size", pool.max_size as f64),
            gauge("devx_db_pool_size", pool.size as f64),
            gauge("devx_db_pool_available", pool.idle as f64),
            gauge("devx_db_pool_in_use", pool.in_use as f64),
            gauge("devx_db_pool_waiting", pool.waiting as f64),
            gauge("devx_db_circuit_breaker_open", if self.db.breaker_open() { 1.0 } else { 0.0 }),
            counter("devx_db_queries_total", stats.total as f64),
            counter("devx_db_query_errors_total", stats.errors as f64),
            counter("devx_db_slow_queries_total", stats.slow as f64),
            family("devx_db_query_duration_seconds", proto::MetricType::HISTOGRAM, m),
            counter("devx_db_pipeline_reads_total", shared.reads as f64),
            counter("devx_db_pipeline_retries_total", shared.retries as f64),
            counter("devx_db_pipeline_opened_total", shared.opened as f64),
            counter("devx_db_pipeline_open_failures_total", shared.open_failures as f64),
        ]
    }
}
