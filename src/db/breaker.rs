//! A circuit breaker in front of the pool: after repeated failures to reach
//! the server, requests are answered "unavailable" at once instead of each
//! waiting out a connect timeout. It probes soon (a quarter second after it
//! opens), and backs off, doubling the wait up to a ceiling, while the server
//! stays down; a probe's success closes it. So a short restart costs about
//! as long as the restart, and a long outage costs one connect attempt per
//! few seconds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    /// Refusing until `until`; `wait` is the wait that led here, doubled on
    /// the next failed probe.
    Open {
        until: Instant,
        wait: Duration,
    },
    /// One probe is in flight; everyone else is refused until it reports.
    HalfOpen {
        wait: Duration,
    },
}

#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    first_wait: Duration,
    max_wait: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, first_wait: Duration, max_wait: Duration) -> Self {
        Breaker {
            state: Mutex::new(State::Closed { failures: 0 }),
            threshold: threshold.max(1),
            first_wait,
            max_wait: max_wait.max(first_wait),
        }
    }

    /// Whether a caller may try the database now.
    pub fn allow(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match *state {
            State::Closed { .. } => true,
            State::Open { until, wait } if Instant::now() >= until => {
                *state = State::HalfOpen { wait };
                true
            }
            State::Open { .. } | State::HalfOpen { .. } => false,
        }
    }

    pub fn success(&self) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *state != (State::Closed { failures: 0 }) {
            if matches!(*state, State::HalfOpen { .. }) {
                tracing::info!("database reachable again; circuit breaker closed");
            }
            *state = State::Closed { failures: 0 };
        }
    }

    /// A probe that could not run for reasons unrelated to the server (the
    /// pool was busy) must not leave the breaker half-open forever.
    pub fn success_if_probing(&self) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if matches!(*state, State::HalfOpen { .. }) {
            *state = State::Closed { failures: 0 };
        }
    }

    pub fn failure(&self) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let open = |wait: Duration| State::Open { until: Instant::now() + wait, wait };
        *state = match *state {
            State::Closed { failures } if failures + 1 >= self.threshold => {
                tracing::warn!(failures = failures + 1, retry_in = ?self.first_wait, "database unreachable; circuit breaker open");
                open(self.first_wait)
            }
            State::Closed { failures } => State::Closed { failures: failures + 1 },
            State::HalfOpen { wait } | State::Open { wait, .. } => open((wait * 2).min(self.max_wait)),
        };
    }

    pub fn is_open(&self) -> bool {
        !matches!(*self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_probes_after_the_first_wait() {
        let b = Breaker::new(3, Duration::from_millis(30), Duration::from_secs(5));
        b.failure();
        b.failure();
        assert!(b.allow(), "two failures keep it closed");
        b.failure();
        assert!(!b.allow(), "the third opens it");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "after the first wait one probe passes");
        assert!(!b.allow(), "but only one");
        b.success();
        assert!(b.allow() && !b.is_open());
    }

    #[test]
    fn failed_probes_back_off_up_to_the_ceiling() {
        let b = Breaker::new(1, Duration::from_millis(10), Duration::from_millis(40));
        b.failure();
        let mut waits = Vec::new();
        for _ in 0..4 {
            let State::Open { wait, .. } = *b.state.lock().unwrap() else { panic!("open") };
            waits.push(wait.as_millis());
            std::thread::sleep(wait + Duration::from_millis(5));
            assert!(b.allow(), "a probe passes once the wait is over");
            b.failure();
            assert!(!b.allow(), "a failed probe reopens");
        }
        assert_eq!(waits, [10, 20, 40, 40]);
        std::thread::sleep(Duration::from_millis(45));
        assert!(b.allow());
        b.success();
        b.failure();
        let State::Open { wait, .. } = *b.state.lock().unwrap() else { panic!("open") };
        assert_eq!(wait.as_millis(), 10, "a success resets the backoff");
    }
}
