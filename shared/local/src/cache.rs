//! `MemoryCache`: the `Cache` port in process memory, bounded in entries, with TTLs on the
//! injected clock.
//!
//! When full, a put first drops every expired entry, then, if still full, the entry written
//! longest ago. Lookups do not refresh an entry's age: this is the L3 stand-in of the embedded
//! default, where simple and predictable beats a perfect hit rate.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagemcp_core::cache::Cache;
use imagemcp_core::clock::Clock;
use imagemcp_core::{Error, Result};

use crate::millis;

struct Entry {
    value: Vec<u8>,
    expires_at_ms: i64,
    /// The write's place in `State::order`.
    seq: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Write order: sequence number → key, oldest first.
    order: BTreeMap<u64, String>,
    next_seq: u64,
}

impl State {
    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.order.remove(&old.seq);
        }
    }

    /// Makes room for one more entry.
    fn evict(&mut self, max_entries: usize, now_ms: i64) {
        if self.entries.len() < max_entries {
            return;
        }
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires_at_ms <= now_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.remove(&key);
        }
        while self.entries.len() >= max_entries {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }
}

/// The `Cache` port in memory.
pub struct MemoryCache {
    state: Mutex<State>,
    max_entries: usize,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl MemoryCache {
    /// A cache holding at most `max_entries` (at least 1) values.
    pub fn new(max_entries: usize, clock: Arc<dyn Clock>) -> Result<Self> {
        if max_entries == 0 {
            return Err(Error::invalid("max_entries", "must be at least 1"));
        }
        Ok(Self {
            state: Mutex::new(State::default()),
            max_entries,
            clock,
        })
    }

    /// How many entries are held, expired ones included until they are evicted.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent between statements, so a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = self.clock.now_ms();
        let mut state = self.lock();
        match state.entries.get(key) {
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
        let mut state = self.lock();
        state.remove(key);
        state.evict(self.max_entries, now);
        let seq = state.next_seq;
        state.next_seq += 1;
        state.order.insert(seq, key.to_owned());
        state.entries.insert(
            key.to_owned(),
            Entry {
                value,
                expires_at_ms: now.saturating_add(millis(ttl)),
                seq,
            },
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
}
