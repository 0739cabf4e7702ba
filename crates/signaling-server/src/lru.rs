//! [`LruMap`]: a map with a fixed capacity that, when full, forgets its least
//! recently used entry to make room, so a table filled by one client spread
//! over many addresses never refuses everybody else (it forgets that client's
//! oldest entries instead). Plain data structure, no I/O.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// A bounded map with least-recently-used eviction.
#[derive(Debug)]
pub struct LruMap<K, V> {
    entries: HashMap<K, (V, u64)>,
    order: BTreeMap<u64, K>,
    next: u64,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> LruMap<K, V> {
    /// An empty map holding at most `capacity` (at least 1) entries.
    pub fn new(capacity: usize) -> LruMap<K, V> {
        LruMap {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            capacity: capacity.max(1),
        }
    }

    /// The entry of `key`, marked most recently used; created with `make`
    /// when absent, after evicting the least recently used entry when full.
    pub fn entry(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let seq = self.next;
        self.next += 1;
        if let Some((_, old)) = self.entries.get(&key) {
            self.order.remove(old);
        } else if self.entries.len() >= self.capacity {
            self.evict_oldest();
        }
        self.order.insert(seq, key.clone());
        let slot = self.entries.entry(key).or_insert_with(|| (make(), seq));
        slot.1 = seq;
        &mut slot.0
    }

    /// The entry of `key` without touching its recency.
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(v, _)| v)
    }

    /// Drops the least recently used entry; returns its key.
    pub fn evict_oldest(&mut self) -> Option<(K, V)> {
        let (_, key) = self.order.pop_first()?;
        let (v, _) = self.entries.remove(&key)?;
        Some((key, v))
    }

    /// Keeps only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let order = &mut self.order;
        self.entries.retain(|k, (v, seq)| {
            let kept = keep(k, v);
            if !kept {
                order.remove(seq);
            }
            kept
        });
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_map_forgets_the_least_recently_used() {
        let mut m = LruMap::new(2);
        *m.entry("a", || 0) += 1;
        *m.entry("b", || 0) += 1;
        *m.entry("a", || 0) += 1; // a is now newer than b
        *m.entry("c", || 0) += 1; // evicts b
        assert_eq!(m.len(), 2);
        assert_eq!(m.peek(&"a"), Some(&2));
        assert_eq!(m.peek(&"b"), None);
        assert_eq!(m.peek(&"c"), Some(&1));
        m.retain(|k, _| *k != "a");
        assert_eq!(m.evict_oldest(), Some(("c", 1)));
        assert!(m.is_empty());
    }
}
