//! `MemoryCache`: the `Cache` port in process memory, bounded in entries and in bytes, with TTLs on
//! the injected clock.
//!
//! When a put would pass either bound, it first drops every expired entry, then, if still over,
//! the entries written longest ago. Lookups do not refresh an entry's age: this is the L3 stand-in
//! of the embedded default, where simple and predictable beats a perfect hit rate.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagemcp_core::bounded::Bounded;
use imagemcp_core::cache::Cache;
use imagemcp_core::clock::Clock;
use imagemcp_core::{Error, Result};

use crate::millis;

/// The bytes a cache holds unless told otherwise: room for the embedded server's L2 indexes (about
/// 110 KB each when full) of a few hundred organisation × settings pairs, its exact entries and
/// client metadata documents.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

struct Entry {
    value: Vec<u8>,
    expires_at_ms: i64,
}

/// The `Cache` port in memory.
pub struct MemoryCache {
    state: Mutex<Bounded<String, Entry>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("state", &*self.lock())
            .finish_non_exhaustive()
    }
}

impl MemoryCache {
    /// A cache holding at most `max_entries` (at least 1) values and [`DEFAULT_MAX_BYTES`].
    pub fn new(max_entries: usize, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::bounded(max_entries, DEFAULT_MAX_BYTES, clock)
    }

    /// A cache holding at most `max_entries` (at least 1) values weighing at most `max_bytes` in
    /// all (keys, values and a fixed overhead per entry).
    pub fn bounded(max_entries: usize, max_bytes: usize, clock: Arc<dyn Clock>) -> Result<Self> {
        if max_entries == 0 {
            return Err(Error::invalid("max_entries", "must be at least 1"));
        }
        if max_bytes == 0 {
            return Err(Error::invalid("max_bytes", "must be at least 1"));
        }
        Ok(Self {
            state: Mutex::new(Bounded::new(max_entries, max_bytes)),
            clock,
        })
    }

    /// How many entries are held, expired ones included until they are evicted.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The weight of what is held, in bytes.
    pub fn bytes(&self) -> usize {
        self.lock().bytes()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bounded<String, Entry>> {
        // The state is consistent between statements, so a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = self.clock.now_ms();
        let mut state = self.lock();
        match state.peek(key) {
            Some(e) if e.expires_at_ms > now => Ok(Some(e.value.clone())),
            Some(_) => {
                state.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()> {
        let now = self.clock.now_ms();
        let weight = key.len() + value.len();
        let mut state = self.lock();
        state.remove(key);
        if state.is_full_for(weight) {
            state.retain(|_, e| e.expires_at_ms > now);
        }
        state.insert(
            key.to_owned(),
            Entry {
                value,
                expires_at_ms: now.saturating_add(millis(ttl)),
            },
            weight,
        );
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.lock().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagemcp_core::clock::ManualClock;

    const MIN: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_full_cache_evicts_expired_entries_before_the_oldest() {
        let clock = Arc::new(ManualClock::new(0));
        let cache = MemoryCache::new(3, clock.clone()).unwrap();
        cache
            .put("old", b"1".to_vec(), Duration::from_secs(3600))
            .await
            .unwrap();
        cache.put("short", b"2".to_vec(), MIN).await.unwrap();
        cache
            .put("mid", b"3".to_vec(), Duration::from_secs(3600))
            .await
            .unwrap();
        clock.advance_ms(61_000);
        cache.put("new", b"4".to_vec(), MIN).await.unwrap();
        // The expired entry made room: the oldest live one survives.
        assert_eq!(cache.get("old").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(cache.len(), 3);

        cache.put("newer", b"5".to_vec(), MIN).await.unwrap();
        // Nothing had expired, so the oldest write went.
        assert_eq!(cache.get("old").await.unwrap(), None);
        for key in ["mid", "new", "newer"] {
            assert!(
                cache.get(key).await.unwrap().is_some(),
                "{key} must survive"
            );
        }
        assert_eq!(cache.len(), 3);
    }

    #[tokio::test]
    async fn overwriting_renews_an_entrys_age() {
        let clock = Arc::new(ManualClock::new(0));
        let cache = MemoryCache::new(2, clock).unwrap();
        cache.put("a", b"1".to_vec(), MIN).await.unwrap();
        cache.put("b", b"2".to_vec(), MIN).await.unwrap();
        cache.put("a", b"3".to_vec(), MIN).await.unwrap();
        cache.put("c", b"4".to_vec(), MIN).await.unwrap();
        assert_eq!(
            cache.get("b").await.unwrap(),
            None,
            "b was the oldest write"
        );
        assert_eq!(cache.get("a").await.unwrap(), Some(b"3".to_vec()));
        assert!(MemoryCache::new(0, Arc::new(ManualClock::new(0))).is_err());
    }

    #[tokio::test]
    async fn a_cache_over_its_byte_bound_evicts_the_oldest_writes() {
        use imagemcp_core::bounded::ENTRY_OVERHEAD;
        let clock = Arc::new(ManualClock::new(0));
        // Room for three 1 KiB values under one-byte keys, far fewer than the entry bound.
        let cache = MemoryCache::bounded(1000, 3 * (1 + 1024 + ENTRY_OVERHEAD), clock).unwrap();
        for key in ["a", "b", "c", "d"] {
            cache.put(key, vec![0; 1024], MIN).await.unwrap();
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.bytes() <= 3 * (1 + 1024 + ENTRY_OVERHEAD));
        assert_eq!(cache.get("a").await.unwrap(), None, "the oldest write went");
        // A value as large as the whole budget replaces everything else; a larger one is not kept.
        cache
            .put("big", vec![0; 2 * 1024 + ENTRY_OVERHEAD], MIN)
            .await
            .unwrap();
        assert_eq!(cache.len(), 1);
        cache.put("huge", vec![0; 1 << 20], MIN).await.unwrap();
        assert_eq!(cache.get("huge").await.unwrap(), None);
        assert!(MemoryCache::bounded(1, 0, Arc::new(ManualClock::new(0))).is_err());
    }
}
