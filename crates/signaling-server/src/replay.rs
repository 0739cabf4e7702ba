//! Bounded replay cache of request-signing nonces (signaling.md §5): a nonce
//! is refused if seen within the window; at capacity the oldest entry goes.

use std::collections::{HashMap, VecDeque};

/// Nonces seen within the last `window` seconds, at most `capacity` of them.
pub struct ReplayCache {
    seen: HashMap<String, i64>,
    order: VecDeque<(i64, String)>,
    window: i64,
    capacity: usize,
}

impl ReplayCache {
    /// An empty cache.
    pub fn new(window: i64, capacity: usize) -> ReplayCache {
        ReplayCache {
            seen: HashMap::new(),
            order: VecDeque::new(),
            window,
            capacity: capacity.max(1),
        }
    }

    /// Records `nonce` at `now`; false when it was already seen in the window.
    pub fn check_and_insert(&mut self, nonce: &str, now: i64) -> bool {
        self.expire(now);
        if self.seen.contains_key(nonce) {
            return false;
        }
        // Only nonces with a valid MAC reach this point, so evicting the
        // oldest under pressure needs the signing secret to exploit.
        while self.seen.len() >= self.capacity {
            match self.order.pop_front() {
                Some((_, old)) => {
                    self.seen.remove(&old);
                }
                None => break,
            }
        }
        self.seen.insert(nonce.to_owned(), now);
        self.order.push_back((now, nonce.to_owned()));
        true
    }

    fn expire(&mut self, now: i64) {
        while let Some((t, _)) = self.order.front() {
            if now.saturating_sub(*t) <= self.window {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    /// Remembered nonces.
    #[cfg(test)]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_capacity() {
        let mut c = ReplayCache::new(120, 3);
        assert!(c.check_and_insert("a", 0));
        assert!(!c.check_and_insert("a", 120));
        assert!(c.check_and_insert("a", 121));
        assert!(c.check_and_insert("b", 121));
        assert!(c.check_and_insert("c", 121));
        assert!(c.check_and_insert("d", 121));
        assert_eq!(c.len(), 3);
    }
}
