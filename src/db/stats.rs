//! Query statistics gathered by the instrumented layer: how many statements
//! ran, how many failed, how long they took (a fixed-bucket histogram, so
//! recording is a couple of atomic adds and percentiles are cheap to read),
//! and the slow ones grouped by their SQL text.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds (roughly x2 apart).
const BUCKETS_US: [u64; 22] = [
    50,
    100,
    200,
    400,
    800,
    1_600,
    3_200,
    6_400,
    12_800,
    25_600,
    51_200,
    102_400,
    204_800,
    409_600,
    819_200,
    1_638_400,
    3_276_800,
    6_553_600,
    13_107_200,
    26_214_400,
    52_428_800,
    u64::MAX,
];

/// Slow statements kept at most (distinct SQL texts); the rest are counted only.
const SLOW_KEPT: usize = 200;

#[derive(Default)]
pub struct QueryStats {
    total: AtomicU64,
    errors: AtomicU64,
    slow: AtomicU64,
    total_us: AtomicU64,
    buckets: [AtomicU64; BUCKETS_US.len()],
    slow_queries: Mutex<HashMap<String, SlowQuery>>,
}

/// One slow statement, aggregated over its occurrences.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SlowQuery {
    /// Whitespace-normalized SQL (statements are parameterized, so this is
    /// already free of values).
    pub sql: String,
    pub count: u64,
    pub max_ms: f64,
    pub total_ms: f64,
    pub last_seen: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StatsSnapshot {
    pub total: u64,
    pub errors: u64,
    pub slow: u64,
    /// Fraction of statements that succeeded, 0..1 (1 when none ran).
    pub success_rate: f64,
    pub avg_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Slowest first.
    pub slow_queries: Vec<SlowQuery>,
}

/// The running totals alone, cheap to read (four atomic loads): what the
/// metrics history samples every few seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub total: u64,
    pub errors: u64,
    pub slow: u64,
    /// Time spent in all statements, in microseconds.
    pub total_us: u64,
}

/// The latency histogram as Prometheus wants it: cumulative counts per
/// upper bound (seconds; the open-ended last bucket is left to `count`).
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

/// Collapses runs of whitespace so the same statement written on several
/// lines is one entry.
pub fn normalize_sql(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl QueryStats {
    /// Counts one statement; whether it was slow (the caller logs it, as
    /// configured).
    pub fn record(&self, sql: &str, elapsed: Duration, ok: bool, slow_threshold: Duration) -> bool {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.total.fetch_add(1, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let bucket = BUCKETS_US.iter().position(|&b| us <= b).unwrap_or(BUCKETS_US.len() - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        if elapsed >= slow_threshold {
            self.slow.fetch_add(1, Ordering::Relaxed);
            // Whole microseconds: finer clock readings are noise in a log.
            let ms = elapsed.as_micros() as f64 / 1000.0;
            let key = normalize_sql(sql);
            let mut map = self.slow_queries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(entry) = map.get_mut(&key) {
                entry.count += 1;
                entry.total_ms += ms;
                entry.max_ms = entry.max_ms.max(ms);
                entry.last_seen = chrono::Utc::now();
            } else if map.len() < SLOW_KEPT {
                let entry =
                    SlowQuery { sql: key.clone(), count: 1, max_ms: ms, total_ms: ms, last_seen: chrono::Utc::now() };
                map.insert(key, entry);
            }
            return true;
        }
        false
    }

    fn percentile_ms(&self, counts: &[u64], total: u64, p: f64) -> f64 {
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64) * p).ceil() as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                // Report the bucket's upper bound (the last one has none: use
                // the one before, doubled).
                let bound = if BUCKETS_US[i] == u64::MAX { BUCKETS_US[i - 1] * 2 } else { BUCKETS_US[i] };
                return bound as f64 / 1000.0;
            }
        }
        0.0
    }

    /// The raw counters, read at scrape time by `crate::metrics` (nothing is
    /// added to the recording path for it).
    pub fn histogram(&self) -> LatencyHistogram {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(BUCKETS_US.len() - 1);
        for (bound, counter) in BUCKETS_US.iter().zip(&self.buckets) {
            cumulative += counter.load(Ordering::Relaxed);
            if *bound != u64::MAX {
                buckets.push((*bound as f64 / 1e6, cumulative));
            }
        }
        LatencyHistogram { buckets, count: cumulative, sum_seconds: self.total_us.load(Ordering::Relaxed) as f64 / 1e6 }
    }

    /// The totals without the slow statements or the histogram.
    pub fn counters(&self) -> Counters {
        Counters {
            total: self.total.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            slow: self.slow.load(Ordering::Relaxed),
            total_us: self.total_us.load(Ordering::Relaxed),
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let bucket_total: u64 = counts.iter().sum();
        let total = self.total.load(Ordering::Relaxed);
        let errors = self.errors.load(Ordering::Relaxed);
        let total_us = self.total_us.load(Ordering::Relaxed);
        let mut slow_queries: Vec<SlowQuery> =
            self.slow_queries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().cloned().collect();
        slow_queries.sort_by(|a, b| b.max_ms.total_cmp(&a.max_ms));
        StatsSnapshot {
            total,
            errors,
            slow: self.slow.load(Ordering::Relaxed),
            success_rate: if total == 0 { 1.0 } else { (total - errors) as f64 / total as f64 },
            avg_ms: if total == 0 { 0.0 } else { total_us as f64 / total as f64 / 1000.0 },
            p95_ms: self.percentile_ms(&counts, bucket_total, 0.95),
            p99_ms: self.percentile_ms(&counts, bucket_total, 0.99),
            slow_queries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_rates_follow_what_was_recorded() {
        let stats = QueryStats::default();
        let never_slow = Duration::from_secs(3600);
        for _ in 0..95 {
            stats.record("select 1", Duration::from_micros(150), true, never_slow);
        }
        for _ in 0..5 {
            stats.record("select 2", Duration::from_millis(20), false, never_slow);
        }
        let s = stats.snapshot();
        assert_eq!(s.total, 100);
        assert_eq!(s.errors, 5);
        assert!((s.success_rate - 0.95).abs() < 1e-9);
        assert_eq!(s.p95_ms, 0.2, "95th value falls in the 200us bucket");
        assert_eq!(s.p99_ms, 25.6, "99th value falls in the 25.6ms bucket");
        assert!(s.slow_queries.is_empty());
    }

    #[test]
    fn the_histogram_is_cumulative_in_seconds() {
        let stats = QueryStats::default();
        let never_slow = Duration::from_secs(3600);
        stats.record("a", Duration::from_micros(40), true, never_slow);
        stats.record("b", Duration::from_micros(150), true, never_slow);
        stats.record("c", Duration::from_secs(100), true, never_slow);
        let h = stats.histogram();
        assert_eq!(h.count, 3);
        assert_eq!(h.buckets[0], (0.00005, 1));
        assert_eq!(h.buckets[2], (0.0002, 2));
        assert_eq!(h.buckets.last().unwrap().1, 2, "100 s is only in +Inf");
        assert!((h.sum_seconds - 100.00019).abs() < 1e-9);
    }

    #[test]
    fn slow_queries_are_grouped_by_normalized_sql() {
        let stats = QueryStats::default();
        let threshold = Duration::from_millis(10);
        stats.record("SELECT *\n  FROM devx.users", Duration::from_millis(30), true, threshold);
        stats.record("SELECT * FROM devx.users", Duration::from_millis(50), true, threshold);
        stats.record("SELECT 1", Duration::from_millis(1), true, threshold);
        let s = stats.snapshot();
        assert_eq!(s.slow, 2);
        assert_eq!(s.slow_queries.len(), 1);
        assert_eq!(s.slow_queries[0].sql, "SELECT * FROM devx.users");
        assert_eq!(s.slow_queries[0].count, 2);
        assert_eq!(s.slow_queries[0].max_ms, 50.0);
    }
}
