//! Token buckets per organisation and per API key, sized by the organisation's tier. A request
//! takes one token per image from both buckets or from neither; a refusal says when a token will
//! be back (`RateLimited { retry_after }`).
//!
//! The buckets live in this instance's memory, where they smooth bursts without a round trip; the
//! organisation's rate across a fleet of functions is bounded too, by a per-minute counter in the
//! `Table` (`engine::admit`). Per-key limits are per instance.

use std::collections::HashMap;
use std::time::Duration;

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

/// Every bucket of the instance, by name (`org:<id>`, `key:<credential>`).
#[derive(Debug, Default)]
pub struct Limiter {
    levels: HashMap<String, Level>,
}

impl Limiter {
    fn refill(&mut self, name: &str, shape: Bucket, now_ms: i64) -> &mut Level {
        let level = self.levels.entry(name.to_owned()).or_insert(Level {
            millitokens: u64::from(shape.capacity) * MILLI,
            at_ms: now_ms,
        });
        let elapsed = u64::try_from(now_ms.saturating_sub(level.at_ms)).unwrap_or(0);
        // tokens/ms = per_minute / 60_000; in millitokens: per_minute * elapsed / 60.
        let gained = u64::from(shape.per_minute).saturating_mul(elapsed) / 60;
        level.millitokens =
            (level.millitokens.saturating_add(gained)).min(u64::from(shape.capacity) * MILLI);
        level.at_ms = level.at_ms.max(now_ms);
        level
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
            let have = self.refill(name, *shape, now_ms).millitokens;
            wait = wait.max(Self::wait(*shape, have, need));
        }
        if !wait.is_zero() {
            return Err(Error::RateLimited { retry_after: wait });
        }
        for (name, _) in buckets {
            if let Some(level) = self.levels.get_mut(name) {
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
}
