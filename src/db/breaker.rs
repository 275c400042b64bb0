//! A circuit breaker in front of the pool: after repeated failures to reach
//! the server, requests are answered "unavailable" at once instead of each
//! waiting out a connect timeout; after a cool-down one request probes, and
//! its success closes the breaker.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is in flight; everyone else is refused until it reports.
    HalfOpen,
}

#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker { state: Mutex::new(State::Closed { failures: 0 }), threshold: threshold.max(1), cooldown }
    }

    /// Whether a caller may try the database now.
    pub fn allow(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    pub fn success(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if *state != (State::Closed { failures: 0 }) {
            if matches!(*state, State::HalfOpen) {
                tracing::info!("database reachable again; circuit breaker closed");
            }
            *state = State::Closed { failures: 0 };
        }
    }

    /// A probe that could not run for reasons unrelated to the server (the
    /// pool was busy) must not leave the breaker half-open forever.
    pub fn success_if_probing(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(*state, State::HalfOpen) {
            *state = State::Closed { failures: 0 };
        }
    }

    pub fn failure(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let open = State::Open { until: Instant::now() + self.cooldown };
        *state = match *state {
            State::Closed { failures } if failures + 1 >= self.threshold => {
                tracing::warn!(failures = failures + 1, cooldown = ?self.cooldown, "database unreachable; circuit breaker open");
                open
            }
            State::Closed { failures } => State::Closed { failures: failures + 1 },
            State::HalfOpen | State::Open { .. } => open,
        };
    }

    pub fn is_open(&self) -> bool {
        !matches!(*self.state.lock().unwrap_or_else(|p| p.into_inner()), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_probes_after_the_cooldown() {
        let b = Breaker::new(3, Duration::from_millis(30));
        b.failure();
        b.failure();
        assert!(b.allow(), "two failures keep it closed");
        b.failure();
        assert!(!b.allow(), "the third opens it");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "after the cooldown one probe passes");
        assert!(!b.allow(), "but only one");
        b.success();
        assert!(b.allow() && !b.is_open());
    }

    #[test]
    fn a_failed_probe_reopens() {
        let b = Breaker::new(1, Duration::from_millis(10));
        b.failure();
        std::thread::sleep(Duration::from_millis(15));
        assert!(b.allow());
        b.failure();
        assert!(!b.allow());
    }
}
