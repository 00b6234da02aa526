//! Adaptive back-off on the model's 429s, shared by every request on this instance: once the
//! provider says "too many", nobody here calls it again until the wait is over, and each further
//! 429 in a row doubles the wait. A success resets it.

use std::time::Duration;

/// The shortest and longest shared waits.
const BASE: Duration = Duration::from_millis(500);
const MAX: Duration = Duration::from_secs(60);

/// The back-off state of one model.
#[derive(Debug, Default)]
pub struct Backoff {
    until_ms: i64,
    streak: u32,
}

impl Backoff {
    /// `Err(wait)` while backing off.
    pub fn admit(&self, now_ms: i64) -> Result<(), Duration> {
        if now_ms < self.until_ms {
            return Err(Duration::from_millis(
                u64::try_from(self.until_ms - now_ms).unwrap_or(0),
            ));
        }
        Ok(())
    }

    /// The provider refused with 429, asking to wait `retry_after`; returns the wait imposed.
    pub fn rate_limited(&mut self, now_ms: i64, retry_after: Duration) -> Duration {
        self.streak = self.streak.saturating_add(1);
        let doubling = BASE.saturating_mul(1u32.checked_shl(self.streak - 1).unwrap_or(u32::MAX));
        let wait = retry_after.max(doubling).min(MAX);
        let until = now_ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        self.until_ms = self.until_ms.max(until);
        wait
    }

    pub fn success(&mut self) {
        self.streak = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_with_a_storm_and_reset_on_success() {
        let mut b = Backoff::default();
        assert_eq!(
            b.rate_limited(0, Duration::ZERO),
            Duration::from_millis(500)
        );
        assert_eq!(b.admit(100), Err(Duration::from_millis(400)));
        assert_eq!(b.rate_limited(500, Duration::ZERO), Duration::from_secs(1));
        assert_eq!(b.rate_limited(1500, Duration::ZERO), Duration::from_secs(2));
        // The server's own Retry-After wins when longer.
        assert_eq!(
            b.rate_limited(3500, Duration::from_secs(7)),
            Duration::from_secs(7)
        );
        assert!(b.admit(10_500).is_ok());
        b.success();
        assert_eq!(
            b.rate_limited(20_000, Duration::ZERO),
            Duration::from_millis(500)
        );
    }
}
