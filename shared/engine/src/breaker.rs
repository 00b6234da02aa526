//! A circuit breaker per model endpoint: after `failures` failures within `window` it opens and
//! refuses calls for `open_for`; then one probe call goes through (half-open), and its outcome
//! closes the circuit again or re-opens it. Time comes from the injected `Clock`.

use std::collections::VecDeque;
use std::time::Duration;

/// When a breaker opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failures: u32,
    pub window: Duration,
    pub open_for: Duration,
}

impl BreakerConfig {
    /// 5 failures in 60 s open the circuit for 30 s.
    pub const DEFAULT: BreakerConfig = BreakerConfig {
        failures: 5,
        window: Duration::from_secs(60),
        open_for: Duration::from_secs(30),
    };
}

/// Where a breaker is, for metrics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
enum State {
    Closed {
        failures: VecDeque<i64>,
    },
    Open {
        until_ms: i64,
    },
    /// The probe is out; everyone else waits for its outcome.
    HalfOpen,
}

/// One endpoint's breaker.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: State,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: State::Closed {
                failures: VecDeque::new(),
            },
        }
    }

    pub fn state(&self, now_ms: i64) -> BreakerState {
        match &self.state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until_ms } if now_ms < *until_ms => BreakerState::Open,
            // Past its time an open circuit lets the next call probe.
            State::Open { .. } | State::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// Whether a call may go now: `Ok(true)` when it goes as the half-open probe, `Err(wait)` when
    /// the circuit is open (or its probe is out).
    pub fn admit(&mut self, now_ms: i64) -> Result<bool, Duration> {
        match &self.state {
            State::Closed { .. } => Ok(false),
            State::Open { until_ms } if now_ms < *until_ms => Err(Duration::from_millis(
                u64::try_from(until_ms - now_ms).unwrap_or(0),
            )),
            State::Open { .. } => {
                self.state = State::HalfOpen;
                Ok(true)
            }
            // The probe should answer well within this; callers retry after it.
            State::HalfOpen => Err(Duration::from_secs(1)),
        }
    }

    /// The probe was dropped before it answered (its request went away, or no longer needed it):
    /// it proved nothing, so the next call probes instead of everyone waiting for this one.
    pub fn probe_abandoned(&mut self, now_ms: i64) {
        if matches!(self.state, State::HalfOpen) {
            self.state = State::Open { until_ms: now_ms };
        }
    }

    /// The endpoint answered (even with a refusal of the request itself): it is up.
    pub fn success(&mut self) {
        self.state = State::Closed {
            failures: VecDeque::new(),
        };
    }

    /// The endpoint failed (5xx, connection error, timeout).
    pub fn failure(&mut self, now_ms: i64) {
        let open = State::Open {
            until_ms: now_ms.saturating_add(ms(self.config.open_for)),
        };
        match &mut self.state {
            State::Closed { failures } => {
                failures.push_back(now_ms);
                let since = now_ms.saturating_sub(ms(self.config.window));
                while failures.front().is_some_and(|t| *t <= since) {
                    failures.pop_front();
                }
                if failures.len() >= self.config.failures as usize {
                    self.state = open;
                }
            }
            State::HalfOpen | State::Open { .. } => self.state = open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failures: 3,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(5),
        })
    }

    #[test]
    fn opens_after_n_failures_in_the_window_only() {
        let mut b = breaker();
        b.failure(0);
        b.failure(1_000);
        // The first failure falls out of the window before the third arrives.
        b.failure(10_500);
        assert_eq!(b.state(10_500), BreakerState::Closed);
        b.failure(10_900);
        assert_eq!(b.state(10_900), BreakerState::Open);
        assert_eq!(b.admit(12_000), Err(Duration::from_millis(3_900)));
    }

    #[test]
    fn half_open_probe_closes_or_reopens() {
        let mut b = breaker();
        for t in 0..3 {
            b.failure(t);
        }
        assert_eq!(b.admit(5_002), Ok(true), "the probe goes through");
        assert!(b.admit(5_003).is_err(), "only one probe at a time");
        b.failure(5_010);
        assert_eq!(b.state(5_010), BreakerState::Open);
        assert!(b.admit(10_010).is_ok());
        b.success();
        assert_eq!(b.state(10_011), BreakerState::Closed);
        assert_eq!(b.admit(10_011), Ok(false));
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_call_probe() {
        let mut b = breaker();
        for t in 0..3 {
            b.failure(t);
        }
        assert_eq!(b.admit(5_002), Ok(true));
        assert!(b.admit(5_003).is_err());
        b.probe_abandoned(5_004);
        assert_eq!(b.admit(5_005), Ok(true), "a new probe, not a wait forever");
        // Abandoning anything else changes nothing.
        b.success();
        b.probe_abandoned(5_006);
        assert_eq!(b.state(5_006), BreakerState::Closed);
    }
}
