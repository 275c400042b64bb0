//! The recent history of this process's own statistics: every
//! `DEVX_METRICS_SAMPLE_INTERVAL` (10 s) the sampler reads the request
//! totals ([`super::Metrics::observe_http`] counts them), the instrumented
//! query layer's totals and the pool, and appends one [`Sample`] (what
//! happened since the previous one) to a ring of [`CAPACITY`] samples held
//! in memory (24 hours at 10 s; the oldest goes first). The admin's
//! `GET /api/admin/metrics/history` (`health`) serves it, so the dashboard
//! opens with the last hours already drawn.
//!
//! The ring belongs to one server ([`super::Metrics`] lives in `AppState`)
//! and describes that process only: it starts empty when the process starts,
//! and each answer carries the process's identity ([`Instance`]) so that a
//! reader notices a restart. The sampler is the task `app::Application`
//! starts with the server and stops at shutdown ([`super::Metrics::sample_every`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{Counters, PoolStatus};

/// Samples kept: 24 hours at the default interval of 10 s.
pub const CAPACITY: usize = 8640;

/// Which process the history describes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = MetricsInstance)]
pub struct Instance {
    /// Random, chosen when the server started: a new one means a restart
    /// (and a history that starts again).
    pub id: uuid::Uuid,
    /// The operating system's process id.
    pub pid: u32,
    pub version: &'static str,
    /// When this server started (its history starts then).
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub started_at: DateTime<Utc>,
}

/// What the process did during one sampling interval (the `seconds` before
/// `at`), and the pool at `at`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = MetricsSample)]
pub struct Sample {
    /// When the sample was taken (RFC 3339, UTC); samples come oldest first.
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub at: DateTime<Utc>,
    /// How many seconds the sample covers: since the previous sample (or
    /// since the server started, for the first).
    pub seconds: f64,
    /// HTTP requests answered in the interval.
    pub http_requests: u64,
    /// Of those, answered with a 5xx status.
    pub http_errors: u64,
    /// Requests per second over the interval.
    pub http_per_second: f64,
    /// Mean time to answer a request in the interval, in milliseconds; null
    /// when there was none.
    pub http_mean_ms: Option<f64>,
    /// Statements run through the instrumented layer in the interval.
    pub db_queries: u64,
    /// Of those, failed.
    pub db_errors: u64,
    /// Of those, slower than `DB_SLOW_QUERY_THRESHOLD`.
    pub db_slow: u64,
    /// Statements per second over the interval.
    pub db_per_second: f64,
    /// Mean statement time in the interval, in milliseconds; null when there
    /// was none.
    pub db_mean_ms: Option<f64>,
    /// Connections the pool had open at `at`.
    pub pool_size: u64,
    /// Of those, lent out to requests.
    pub pool_in_use: u64,
    /// Of those, idle in the pool.
    pub pool_idle: u64,
    /// Requests waiting for a connection at `at`.
    pub pool_waiting: u64,
    /// The most connections the pool opens (`DB_POOL_MAX`).
    pub pool_max_size: u64,
}

/// The request totals since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpTotals {
    pub requests: u64,
    pub errors: u64,
    /// Time spent answering them, in microseconds.
    pub micros: u64,
}

/// One reading of every total, taken by the sampler.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub at: DateTime<Utc>,
    /// The same moment on the monotonic clock (intervals never go negative
    /// when the wall clock is set back).
    pub instant: Instant,
    pub http: HttpTotals,
    pub db: Counters,
    pub pool: PoolStatus,
}

/// The ring, and the reading the next sample is measured from.
pub struct History {
    instance: Instance,
    interval: Duration,
    state: Mutex<Ring>,
}

struct Ring {
    samples: VecDeque<Sample>,
    last: (Instant, HttpTotals, Counters),
}

impl History {
    /// An empty history, measured from now (the totals start at zero).
    pub fn new(interval: Duration) -> Self {
        History {
            instance: Instance {
                id: uuid::Uuid::new_v4(),
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION"),
                started_at: Utc::now(),
            },
            interval,
            state: Mutex::new(Ring {
                samples: VecDeque::new(),
                last: (Instant::now(), HttpTotals::default(), Counters::default()),
            }),
        }
    }

    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// How often the sampler takes a sample.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Appends what changed since the previous reading; the oldest sample
    /// goes when the ring is full.
    pub fn record(&self, now: Reading) {
        let mut ring = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (then, http, db) = ring.last;
        let seconds = now.instant.saturating_duration_since(then).as_secs_f64();
        let per_second = |n: u64| if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
        // Totals only grow; saturating keeps a sample sane if one was reset.
        let requests = now.http.requests.saturating_sub(http.requests);
        let queries = now.db.total.saturating_sub(db.total);
        let mean_ms = |n: u64, micros: u64| (n > 0).then(|| micros as f64 / n as f64 / 1000.0);
        let sample = Sample {
            at: now.at,
            seconds,
            http_requests: requests,
            http_errors: now.http.errors.saturating_sub(http.errors),
            http_per_second: per_second(requests),
            http_mean_ms: mean_ms(requests, now.http.micros.saturating_sub(http.micros)),
            db_queries: queries,
            db_errors: now.db.errors.saturating_sub(db.errors),
            db_slow: now.db.slow.saturating_sub(db.slow),
            db_per_second: per_second(queries),
            db_mean_ms: mean_ms(queries, now.db.total_us.saturating_sub(db.total_us)),
            pool_size: now.pool.size as u64,
            pool_in_use: now.pool.in_use as u64,
            pool_idle: now.pool.idle as u64,
            pool_waiting: now.pool.waiting as u64,
            pool_max_size: now.pool.max_size as u64,
        };
        if ring.samples.len() == CAPACITY {
            ring.samples.pop_front();
        }
        ring.samples.push_back(sample);
        ring.last = (now.instant, now.http, now.db);
    }

    /// The samples taken after `since` (all of them without it), oldest first.
    pub fn since(&self, since: Option<DateTime<Utc>>) -> Vec<Sample> {
        let ring = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        ring.samples.iter().filter(|s| since.is_none_or(|t| s.at > t)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(base: Instant, secs: u64, requests: u64, micros: u64, queries: u64) -> Reading {
        Reading {
            at: DateTime::from_timestamp(1_800_000_000 + secs as i64, 0).unwrap(),
            instant: base + Duration::from_secs(secs),
            http: HttpTotals { requests, errors: 0, micros },
            db: Counters { total: queries, errors: 0, slow: 0, total_us: queries * 500 },
            pool: PoolStatus { max_size: 20, size: 3, idle: 2, in_use: 1, waiting: 0 },
        }
    }

    #[test]
    fn a_sample_is_what_changed_since_the_previous_one() {
        let history = History::new(Duration::from_secs(10));
        let base = history.state.lock().unwrap().last.0;
        history.record(reading(base, 10, 20, 20 * 4000, 100));
        history.record(reading(base, 20, 20, 20 * 4000, 150));
        let samples = history.since(None);
        assert_eq!(samples.len(), 2);
        let first = &samples[0];
        assert_eq!((first.seconds, first.http_requests, first.http_per_second), (10.0, 20, 2.0));
        assert_eq!(first.http_mean_ms, Some(4.0));
        assert_eq!((first.db_queries, first.db_per_second, first.db_mean_ms), (100, 10.0, Some(0.5)));
        assert_eq!((first.pool_in_use, first.pool_max_size), (1, 20));
        let second = &samples[1];
        assert_eq!((second.http_requests, second.http_mean_ms), (0, None), "no request: no mean");
        assert_eq!((second.db_queries, second.db_per_second), (50, 5.0));
    }

    #[test]
    fn since_keeps_later_samples_and_the_ring_drops_the_oldest() {
        let history = History::new(Duration::from_secs(10));
        let base = history.state.lock().unwrap().last.0;
        for i in 1..=(CAPACITY as u64 + 5) {
            history.record(reading(base, i * 10, i, i, i));
        }
        let all = history.since(None);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].at, reading(base, 60, 0, 0, 0).at, "the five oldest went");
        assert!(all.windows(2).all(|w| w[0].at < w[1].at), "oldest first");
        let cut = all[CAPACITY - 3].at;
        let later = history.since(Some(cut));
        assert_eq!(later.len(), 2, "strictly after `since`");
        assert_eq!(later[0], all[CAPACITY - 2]);
    }
}
