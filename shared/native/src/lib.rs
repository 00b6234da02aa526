//! The native runtime services the local binary and the Lambda functions share: the system's wall
//! clock (`Clock`), tokio's timer (`Timer`), time-ordered UUIDv7 ids (`Ids`) and the operating system's random source
//! (`Random`). Not for wasm32: the Worker has its own on JavaScript's clock and `crypto`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use imagemcp_core::clock::Clock;
use imagemcp_core::ids::{Ids, MonotonicV7, Random};
use uuid::Uuid;

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        // A clock set before 1970 reads as the epoch rather than panicking; nothing we store
        // predates it.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// Mints UUIDv7 ids in their simple form: 32 lowercase hex digits whose order is creation order.
///
/// The timestamp comes from the injected clock and the rest is random. Ids from one generator
/// strictly increase even when the clock stands still or steps back: a new id that would not sort
/// after the previous one is replaced by the previous one plus one.
pub struct UuidV7Ids {
    clock: Arc<dyn Clock>,
    order: MonotonicV7,
}

impl UuidV7Ids {
    /// Ids timestamped by the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// Ids timestamped by `clock` (a `ManualClock` in tests).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            order: MonotonicV7::default(),
        }
    }
}

impl Default for UuidV7Ids {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for UuidV7Ids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UuidV7Ids").finish_non_exhaustive()
    }
}

impl Ids for UuidV7Ids {
    fn new_id(&self) -> String {
        let millis = u64::try_from(self.clock.now_ms()).unwrap_or(0);
        let random = Uuid::new_v4().into_bytes();
        let mut tail = [0u8; 10];
        tail.copy_from_slice(&random[..10]);
        let fresh = uuid::Builder::from_unix_timestamp_millis(millis, &tail)
            .into_uuid()
            .as_u128();
        Uuid::from_u128(self.order.next(fresh)).simple().to_string()
    }
}

/// The operating system's random source (`getrandom` through `rand`), for keys and secrets.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        use rand::TryRngCore;
        // The OS source failing is unrecoverable: no key may be made from weak randomness.
        rand::rngs::OsRng
            .try_fill_bytes(buf)
            .expect("the operating system's random source failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagemcp_core::clock::ManualClock;

    #[test]
    fn ids_are_hex_v7_and_strictly_increasing_even_on_a_still_clock() {
        let ids = UuidV7Ids::with_clock(Arc::new(ManualClock::new(1_800_000_000_000)));
        let all: Vec<String> = (0..2000).map(|_| ids.new_id()).collect();
        for pair in all.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{} must sort before {}",
                pair[0],
                pair[1]
            );
        }
        for id in &all {
            assert_eq!(id.len(), 32);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
            let parsed = Uuid::parse_str(id).expect("an id parses as a UUID");
            assert_eq!(parsed.get_version_num(), 7, "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
        // The timestamp is the clock's, so ids sort by creation time across generators.
        assert!(
            all[0].starts_with(&format!("{:012x}", 1_800_000_000_000u64)),
            "{}",
            all[0]
        );
    }

    #[test]
    fn ids_keep_order_when_the_clock_steps_back() {
        let clock = Arc::new(ManualClock::new(1_800_000_000_000));
        let ids = UuidV7Ids::with_clock(clock.clone());
        let before = ids.new_id();
        clock.advance_ms(-60_000);
        let after = ids.new_id();
        assert!(before < after, "{before} must sort before {after}");
    }

    #[test]
    fn os_random_fills_every_byte() {
        // Two 32-byte draws agreeing, or one staying all zeros, has odds of 2^-256.
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        OsRandom.fill(&mut a);
        OsRandom.fill(&mut b);
        assert_ne!(a, [0u8; 32]);
        assert_ne!(a, b);
    }

    #[test]
    fn system_clock_reads_the_present() {
        // 2025-01-01 as a floor: the clock must be in ms since the epoch, not seconds or zero.
        assert!(SystemClock.now_ms() > 1_735_689_600_000);
    }
}

/// Sleeps on tokio's timer: what the engine's timeouts wait on natively.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioTimer;

#[imagemcp_core::async_trait]
impl imagemcp_core::timer::Timer for TokioTimer {
    async fn sleep(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}
