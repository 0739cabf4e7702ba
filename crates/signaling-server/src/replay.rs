//! Bounded replay cache of request-signing nonces in memory (signaling.md
//! §5; the SQLite back end's half of [`crate::store::Ephemeral`]): a nonce
//! is refused if seen within the window; at capacity the oldest entry goes.

use std::collections::{HashMap, VecDeque};

/// Nonces seen recently, in the order they were seen.
pub struct ReplayCache {
    seen: HashMap<String, i64>,
    order: VecDeque<(i64, String)>,
}

impl ReplayCache {
    /// An empty cache.
    pub fn new() -> ReplayCache {
        ReplayCache {
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `nonce` at `now`; false when it was already seen within the
    /// last `window` seconds. Keeps at most `capacity` nonces.
    pub fn check_and_insert(
        &mut self,
        nonce: &str,
        now: i64,
        window: i64,
        capacity: usize,
    ) -> bool {
        self.purge(now, window);
        if self.seen.contains_key(nonce) {
            return false;
        }
        // Only nonces with a valid MAC reach this point, so evicting the
        // oldest under pressure needs the signing secret to exploit.
        while self.seen.len() >= capacity.max(1) {
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

    /// Forgets nonces seen more than `window` seconds before `now`.
    pub fn purge(&mut self, now: i64, window: i64) {
        while let Some((t, _)) = self.order.front() {
            if now.saturating_sub(*t) <= window {
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
        let mut c = ReplayCache::new();
        let mut check = |n: &str, now| c.check_and_insert(n, now, 120, 3);
        assert!(check("a", 0));
        assert!(!check("a", 120));
        assert!(check("a", 121));
        assert!(check("b", 121));
        assert!(check("c", 121));
        assert!(check("d", 121));
        assert_eq!(c.len(), 3);
    }
}
