//! Counted slots with a total cap and a per-key cap: open TCP connections per
//! client address, and WebSockets per client address. [`SlotTable`] is the
//! plain counting logic; [`Slots`] shares one behind a mutex and hands out
//! [`Slot`] guards that give their place back when dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use crate::sync::lock;

/// Counts per key, with a cap per key and in total.
#[derive(Debug)]
pub struct SlotTable<K> {
    per_key: HashMap<K, usize>,
    total: usize,
    max_total: usize,
    max_per_key: usize,
}

impl<K: Hash + Eq + Clone> SlotTable<K> {
    /// An empty table.
    pub fn new(max_total: usize, max_per_key: usize) -> SlotTable<K> {
        SlotTable {
            per_key: HashMap::new(),
            total: 0,
            max_total,
            max_per_key,
        }
    }

    /// Takes a slot for `key` (`None`: exempt from the per-key cap); false
    /// when the total or the key's cap is reached.
    pub fn try_add(&mut self, key: Option<&K>) -> bool {
        if self.total >= self.max_total {
            return false;
        }
        if let Some(key) = key {
            let n = self.per_key.entry(key.clone()).or_insert(0);
            if *n >= self.max_per_key {
                return false;
            }
            *n += 1;
        }
        self.total += 1;
        true
    }

    /// Gives back a slot taken by [`SlotTable::try_add`] with the same key.
    pub fn remove(&mut self, key: Option<&K>) {
        self.total = self.total.saturating_sub(1);
        if let Some(key) = key
            && let Some(n) = self.per_key.get_mut(key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_key.remove(key);
            }
        }
    }

    /// Slots in use.
    pub fn total(&self) -> usize {
        self.total
    }
}

/// A shared [`SlotTable`].
pub struct Slots<K>(Arc<Mutex<SlotTable<K>>>);

impl<K> Clone for Slots<K> {
    fn clone(&self) -> Self {
        Slots(Arc::clone(&self.0))
    }
}

impl<K: Hash + Eq + Clone> Slots<K> {
    /// A shared empty table.
    pub fn new(max_total: usize, max_per_key: usize) -> Slots<K> {
        Slots(Arc::new(Mutex::new(SlotTable::new(max_total, max_per_key))))
    }

    /// A guard holding one slot, or `None` when a cap is reached.
    pub fn acquire(&self, key: Option<K>) -> Option<Slot<K>> {
        if !lock(&self.0).try_add(key.as_ref()) {
            return None;
        }
        Some(Slot {
            table: Arc::clone(&self.0),
            key,
        })
    }

    /// Slots in use.
    pub fn in_use(&self) -> usize {
        lock(&self.0).total()
    }
}

/// One slot; returned on drop.
pub struct Slot<K: Hash + Eq + Clone> {
    table: Arc<Mutex<SlotTable<K>>>,
    key: Option<K>,
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        lock(&self.table).remove(self.key.as_ref());
    }
}

/// The connection slot of the TCP connection a request came on; a WebSocket
/// keeps it (a clone) for as long as it stays open.
#[derive(Clone)]
pub(crate) struct ConnSlot(
    #[allow(dead_code)] pub std::sync::Arc<Slot<crate::client_key::ClientKey>>,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_and_per_key_caps() {
        let mut t = SlotTable::new(3, 2);
        assert!(t.try_add(Some(&"a")));
        assert!(t.try_add(Some(&"a")));
        assert!(!t.try_add(Some(&"a")));
        assert!(t.try_add(Some(&"b")));
        assert!(!t.try_add(Some(&"c")));
        assert!(!t.try_add(None));
        t.remove(Some(&"a"));
        assert!(t.try_add(None));
        assert_eq!(t.total(), 3);
        let slots = Slots::new(1, 1);
        let held = slots.acquire(Some("x"));
        assert!(held.is_some() && slots.acquire(Some("y")).is_none());
        drop(held);
        assert!(slots.acquire(Some("x")).is_some());
        assert_eq!(slots.in_use(), 0);
    }
}
