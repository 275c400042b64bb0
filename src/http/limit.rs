//! An in-memory sliding-window counter of failures per key (an email, an
//! address), used to slow down password guessing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts failed sign-ins per key (an email, an address) in a sliding window.
/// Kept in memory: each replica limits on its own, which bounds guessing at
/// replicas x limit per window.
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Keys tracked at most; past this, the oldest windows are dropped first.
const LIMITER_KEYS: usize = 100_000;

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        LoginLimiter { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    /// `Err(seconds to wait)` when any key has used up its failures.
    pub fn check(&self, keys: &[String]) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = 0u64;
        for key in keys {
            if let Some(times) = map.get_mut(key) {
                while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                    times.pop_front();
                }
                if times.len() >= self.max_failures as usize {
                    let oldest = times.front().copied().unwrap_or(now);
                    let left = self.window.saturating_sub(now.duration_since(oldest));
                    wait = wait.max(left.as_secs().max(1));
                }
            }
        }
        if wait > 0 { Err(wait) } else { Ok(()) }
    }

    pub fn record_failure(&self, keys: &[String]) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= LIMITER_KEYS {
            let window = self.window;
            map.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        for key in keys {
            let times = map.entry(key.clone()).or_default();
            times.push_back(now);
            while times.len() > self.max_failures as usize {
                times.pop_front();
            }
        }
    }

    pub fn clear(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_blocks_after_the_allowed_failures() {
        let limiter = LoginLimiter::new(3, Duration::from_secs(60));
        let keys = vec!["email:a@example.com".to_string(), "ip:127.0.0.1".to_string()];
        for _ in 0..3 {
            assert!(limiter.check(&keys).is_ok());
            limiter.record_failure(&keys);
        }
        let wait = limiter.check(&keys).unwrap_err();
        assert!((1..=60).contains(&wait));
        limiter.clear("email:a@example.com");
        assert!(limiter.check(&keys).is_err(), "the address is still limited");
        assert!(limiter.check(&["email:a@example.com".to_string()]).is_ok());
    }

    #[test]
    fn failures_age_out_of_the_window() {
        let limiter = LoginLimiter::new(1, Duration::from_millis(20));
        let keys = vec!["ip:10.0.0.1".to_string()];
        limiter.record_failure(&keys);
        assert!(limiter.check(&keys).is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(limiter.check(&keys).is_ok());
    }
}
