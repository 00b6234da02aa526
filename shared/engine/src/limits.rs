//! Token buckets per organisation and per API key, sized by the organisation's tier. A request
//! takes one token per image from both buckets or from neither; a refusal says when a token will
//! be back (`RateLimited { retry_after }`).
//!
//! The buckets live in this instance's memory, where they smooth bursts without a round trip; the
//! organisation's rate across a fleet of functions is bounded too, by a per-minute counter in the
//! `Table` (`engine::admit`). Per-key limits are per instance.

use std::time::Duration;

use imagemcp_core::bounded::Bounded;
use imagemcp_core::tier::Tier;
use imagemcp_core::{Error, Result};

/// The (org, key) buckets of each tier (the tier itself is billing's: `billing::plan`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub free: (Bucket, Bucket),
    pub pro: (Bucket, Bucket),
    pub team: (Bucket, Bucket),
    /// Billing off (the embedded default): generous, but still a guard against a runaway client.
    pub local: (Bucket, Bucket),
}

impl RateLimits {
    /// Images a minute, per org and per key: Free 60/30, Pro 300/120, Team and local 1200/300.
    pub const DEFAULT: RateLimits = RateLimits {
        free: (Bucket::per_minute(60), Bucket::per_minute(30)),
        pro: (Bucket::per_minute(300), Bucket::per_minute(120)),
        team: (Bucket::per_minute(1200), Bucket::per_minute(300)),
        local: (Bucket::per_minute(1200), Bucket::per_minute(300)),
    };

    pub fn of(&self, tier: Tier) -> (Bucket, Bucket) {
        match tier {
            Tier::Free => self.free,
            Tier::Pro => self.pro,
            Tier::Team => self.team,
            // Any tier added later starts with the local limits until it is given its own.
            _ => self.local,
        }
    }
}

/// A bucket's shape: `capacity` tokens, refilled at `per_minute`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub capacity: u32,
    pub per_minute: u32,
}

impl Bucket {
    /// A burst of the whole minute's allowance, refilled evenly over the minute.
    pub const fn per_minute(n: u32) -> Self {
        Self {
            capacity: n,
            per_minute: n,
        }
    }
}

/// Tokens in thousandths, so refill is exact in integers.
const MILLI: u64 = 1000;

#[derive(Debug)]
struct Level {
    millitokens: u64,
    at_ms: i64,
}

/// The most buckets an instance keeps, and the bytes they may weigh (names and levels). A bucket
/// forgotten is one that is full again, so the least recently used go first: they have had the
/// longest to refill.
pub const LIMITER_BOUNDS: (usize, usize) = (50_000, 8 << 20);

/// Every bucket of the instance, by name (`org:<id>`, `key:<credential>`), within
/// [`LIMITER_BOUNDS`].
#[derive(Debug)]
pub struct Limiter {
    levels: Bounded<String, Level>,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new(LIMITER_BOUNDS.0, LIMITER_BOUNDS.1)
    }
}

impl Limiter {
    /// At most `max_buckets` buckets weighing at most `max_bytes`.
    pub fn new(max_buckets: usize, max_bytes: usize) -> Self {
        Self {
            levels: Bounded::new(max_buckets, max_bytes),
        }
    }

    /// The bucket's millitokens now, refilled since it was last seen (a new bucket is full).
    fn refill(&mut self, name: &str, shape: Bucket, now_ms: i64) -> u64 {
        let full = u64::from(shape.capacity) * MILLI;
        if self.levels.peek(name).is_none() {
            let level = Level {
                millitokens: full,
                at_ms: now_ms,
            };
            let weight = name.len() + std::mem::size_of::<Level>();
            self.levels.insert(name.to_owned(), level, weight);
        }
        let Some(level) = self.levels.get_mut(name) else {
            return full;
        };
        let elapsed = u64::try_from(now_ms.saturating_sub(level.at_ms)).unwrap_or(0);
        // tokens/ms = per_minute / 60_000; in millitokens: per_minute * elapsed / 60.
        let gained = u64::from(shape.per_minute).saturating_mul(elapsed) / 60;
        level.millitokens = (level.millitokens.saturating_add(gained)).min(full);
        level.at_ms = level.at_ms.max(now_ms);
        level.millitokens
    }

    /// The wait until `need` tokens are in a bucket of `shape` holding `have` millitokens.
    fn wait(shape: Bucket, have: u64, need: u64) -> Duration {
        let missing = need.saturating_sub(have);
        let per_minute = u64::from(shape.per_minute.max(1));
        Duration::from_millis((missing * 60).div_ceil(per_minute))
    }

    /// Takes `tokens` from every named bucket, or from none and says how long to wait.
    pub fn take(&mut self, buckets: &[(String, Bucket)], tokens: u32, now_ms: i64) -> Result<()> {
        let need = u64::from(tokens) * MILLI;
        let mut wait = Duration::ZERO;
        for (name, shape) in buckets {
            if u64::from(tokens) > u64::from(shape.capacity) {
                return Err(Error::invalid(
                    "n",
                    format!("more images than the limit of {} a minute", shape.capacity),
                ));
            }
            let have = self.refill(name, *shape, now_ms);
            wait = wait.max(Self::wait(*shape, have, need));
        }
        if !wait.is_zero() {
            return Err(Error::RateLimited { retry_after: wait });
        }
        for (name, _) in buckets {
            if let Some(level) = self.levels.get_mut(name.as_str()) {
                level.millitokens -= need;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_refuses_with_the_wait_and_refills() {
        let mut l = Limiter::default();
        let b = vec![("key:k".to_owned(), Bucket::per_minute(2))];
        l.take(&b, 1, 0).unwrap();
        l.take(&b, 1, 0).unwrap();
        match l.take(&b, 1, 0) {
            Err(Error::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(30))
            }
            other => panic!("{other:?}"),
        }
        l.take(&b, 1, 30_000).unwrap();
    }

    #[test]
    fn both_buckets_or_neither() {
        let mut l = Limiter::default();
        let org = ("org:o".to_owned(), Bucket::per_minute(3));
        let key_a = ("key:a".to_owned(), Bucket::per_minute(2));
        let key_b = ("key:b".to_owned(), Bucket::per_minute(2));
        l.take(&[org.clone(), key_a.clone()], 2, 0).unwrap();
        // Key a is empty: the org's tokens are not spent on a refused request.
        assert!(l.take(&[org.clone(), key_a], 1, 0).is_err());
        l.take(&[org.clone(), key_b.clone()], 1, 0).unwrap();
        // Now the org is empty even though key b has a token left.
        assert!(matches!(
            l.take(&[org, key_b], 1, 0),
            Err(Error::RateLimited { .. })
        ));
    }

    #[test]
    fn buckets_over_the_byte_bound_forget_the_least_recently_used() {
        let name = |i: usize| format!("key:{i:060}");
        let one =
            name(0).len() + std::mem::size_of::<Level>() + imagemcp_core::bounded::ENTRY_OVERHEAD;
        let mut l = Limiter::new(1000, 4 * one);
        let shape = Bucket::per_minute(1);
        for i in 0..10 {
            l.take(&[(name(i), shape)], 1, 0).unwrap();
        }
        assert_eq!(l.levels.len(), 4);
        assert!(l.levels.bytes() <= 4 * one);
        // The recent ones are still empty; a forgotten one starts full again.
        assert!(l.take(&[(name(9), shape)], 1, 0).is_err());
        assert!(l.take(&[(name(0), shape)], 1, 0).is_ok());
    }
}
