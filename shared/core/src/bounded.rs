//! `Bounded`: a map held to a number of entries *and* a number of bytes, evicting the least recently
//! used entries first. Every in-process cache of the platform is one (the engine's L1, the local
//! `Cache` port, the data-key cache, the per-organisation engine state), so none can grow with the
//! traffic it serves: a long-lived process levels off instead of climbing. The byte figures are the
//! callers' own weights of what an entry holds (its key and value bytes plus a fixed overhead), not
//! the allocator's, and they are what `docs/engine.md` lists.

use std::borrow::Borrow;
use std::hash::Hash;

/// What one entry costs besides its own bytes: the map's node, hash slot and links, rounded up.
pub const ENTRY_OVERHEAD: usize = 64;

/// A map bounded in entries and bytes, least recently used out first.
pub struct Bounded<K: Hash + Eq, V> {
    map: lru::LruCache<K, (V, usize)>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl<K: Hash + Eq, V> std::fmt::Debug for Bounded<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bounded")
            .field("entries", &self.map.len())
            .field("bytes", &self.bytes)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl<K: Hash + Eq, V> Bounded<K, V> {
    /// Holds at most `max_entries` entries (at least 1) weighing at most `max_bytes` in all.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            map: lru::LruCache::unbounded(),
            bytes: 0,
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    /// The value, marked as just used.
    pub fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key).map(|(v, _)| v)
    }

    /// The value, mutable and marked as just used. Its weight stays what it was inserted with.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_mut(key).map(|(v, _)| v)
    }

    /// The value, leaving its place in the eviction order alone.
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.peek(key).map(|(v, _)| v)
    }

    /// Stores `value` weighing `weight` bytes (its key and value, [`ENTRY_OVERHEAD`] is added),
    /// replacing any value of the key, then evicts the least recently used entries until both
    /// bounds hold. A value heavier than the whole byte bound is not kept (returns false).
    pub fn insert(&mut self, key: K, value: V, weight: usize) -> bool {
        let weight = weight.saturating_add(ENTRY_OVERHEAD);
        if let Some((_, old)) = self.map.pop(&key) {
            self.bytes -= old;
        }
        if weight > self.max_bytes {
            return false;
        }
        self.map.put(key, (value, weight));
        self.bytes += weight;
        while self.map.len() > self.max_entries || self.bytes > self.max_bytes {
            match self.map.pop_lru() {
                Some((_, (_, w))) => self.bytes -= w,
                None => break,
            }
        }
        true
    }

    /// Removes and returns the value of `key`.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (value, weight) = self.map.pop(key)?;
        self.bytes -= weight;
        Some(value)
    }

    /// Keeps only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let mut freed = 0;
        self.map.retain(|k, (v, w)| {
            let kept = keep(k, v);
            if !kept {
                freed += *w;
            }
            kept
        });
        self.bytes -= freed;
    }

    /// Whether one more entry of `weight` bytes would push an entry out.
    pub fn is_full_for(&self, weight: usize) -> bool {
        self.map.len() >= self.max_entries
            || self.bytes + weight.saturating_add(ENTRY_OVERHEAD) > self.max_bytes
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The weight of what is held, overheads included.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_its_byte_bound_the_least_recently_used_go_first() {
        let mut m = Bounded::new(100, 3 * (ENTRY_OVERHEAD + 100));
        for k in ["a", "b", "c"] {
            assert!(m.insert(k, k.to_uppercase(), 100));
        }
        assert_eq!(m.bytes(), 3 * (ENTRY_OVERHEAD + 100));
        // Reading `a` makes `b` the least recently used.
        assert_eq!(m.get("a").map(String::as_str), Some("A"));
        m.insert("d", "D".into(), 100);
        assert_eq!((m.len(), m.peek("b")), (3, None));
        // One heavy entry pushes out as many as it needs.
        m.insert("e", "E".into(), 2 * 100 + ENTRY_OVERHEAD);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m.peek("e").is_some() && m.peek("d").is_some());
        assert!(m.bytes() <= m.max_bytes());
    }

    #[test]
    fn entries_are_bounded_too_and_weights_stay_exact() {
        let mut m = Bounded::new(2, 1 << 20);
        m.insert(1, "one", 10);
        m.insert(2, "two", 10);
        m.insert(3, "three", 10);
        assert_eq!((m.len(), m.peek(&1)), (2, None));
        // Replacing a value re-weighs it.
        m.insert(2, "TWO", 500);
        assert_eq!(m.bytes(), (10 + ENTRY_OVERHEAD) + (500 + ENTRY_OVERHEAD));
        assert_eq!(m.remove(&2), Some("TWO"));
        m.retain(|_, v| *v != "three");
        assert_eq!((m.len(), m.bytes()), (0, 0));
    }

    #[test]
    fn a_value_heavier_than_the_whole_bound_is_not_kept() {
        let mut m = Bounded::new(10, 1000);
        m.insert("small", (), 10);
        assert!(!m.insert("huge", (), 5000));
        assert!(m.peek("huge").is_none());
        assert!(m.peek("small").is_some(), "nothing else was evicted for it");
        assert!(m.is_full_for(1000) && !m.is_full_for(10));
    }
}
