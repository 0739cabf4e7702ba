//! Outstanding challenge nonces in memory (the SQLite back end's half of
//! [`crate::store::Ephemeral`]): single use, bound to one device id,
//! expiring, bounded per device and in total. When the table is full the
//! oldest nonce is dropped, so a flood of challenges never locks other
//! clients out (their nonce lives only for the round trip between
//! `challenge` and `token`).

use std::collections::{HashMap, VecDeque};

use crate::store::{Bounds, new_challenge_nonce};

struct Entry {
    device_id: String,
    expires: i64,
}

/// The challenge table.
pub struct Challenges {
    by_nonce: HashMap<String, Entry>,
    by_device: HashMap<String, VecDeque<String>>,
    /// Issue order; may hold nonces already consumed (skipped when evicting,
    /// compacted when it grows past twice the bound).
    order: VecDeque<String>,
}

impl Challenges {
    /// An empty table.
    pub fn new() -> Challenges {
        Challenges {
            by_nonce: HashMap::new(),
            by_device: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Issues a fresh 32-byte base64 nonce for `device_id`, valid until
    /// `now + challenge_ttl`. The device's oldest nonce is dropped past the
    /// per-device bound. When the table is full, expired nonces go first,
    /// then the oldest.
    pub fn issue(&mut self, device_id: &str, now: i64, bounds: &Bounds) -> String {
        let max_total = bounds.max_challenges.max(1);
        let max_per_device = bounds.max_challenges_per_device.max(1);
        if self.by_nonce.len() >= max_total {
            self.purge(now);
        }
        while self.by_nonce.len() >= max_total {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(entry) = self.by_nonce.remove(&old) {
                self.forget(&entry.device_id, &old);
            }
        }
        let nonce = new_challenge_nonce();
        let queue = self.by_device.entry(device_id.to_owned()).or_default();
        while queue.len() >= max_per_device {
            if let Some(old) = queue.pop_front() {
                self.by_nonce.remove(&old);
            }
        }
        queue.push_back(nonce.clone());
        self.order.push_back(nonce.clone());
        if self.order.len() > max_total.saturating_mul(2) {
            let live = &self.by_nonce;
            self.order.retain(|n| live.contains_key(n));
        }
        self.by_nonce.insert(
            nonce.clone(),
            Entry {
                device_id: device_id.to_owned(),
                expires: now.saturating_add(bounds.challenge_ttl),
            },
        );
        nonce
    }

    fn forget(&mut self, device_id: &str, nonce: &str) {
        if let Some(q) = self.by_device.get_mut(device_id) {
            q.retain(|n| n != nonce);
            if q.is_empty() {
                self.by_device.remove(device_id);
            }
        }
    }

    /// Consumes `nonce`: true if it was issued for `device_id` and has not
    /// expired. A nonce presented for the wrong device is consumed too (it
    /// is burnt).
    pub fn consume(&mut self, device_id: &str, nonce: &str, now: i64) -> bool {
        let Some(entry) = self.by_nonce.remove(nonce) else {
            return false;
        };
        self.forget(&entry.device_id, nonce);
        entry.device_id == device_id && entry.expires > now
    }

    /// Drops expired nonces.
    pub fn purge(&mut self, now: i64) {
        self.by_nonce.retain(|_, e| e.expires > now);
        let live = &self.by_nonce;
        self.by_device.retain(|_, q| {
            q.retain(|n| live.contains_key(n));
            !q.is_empty()
        });
        self.order.retain(|n| live.contains_key(n));
    }

    /// Outstanding nonces.
    #[cfg(test)]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.by_nonce.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_per_device_and_expiry() {
        let bounds = Bounds {
            challenge_ttl: 300,
            max_challenges: 10,
            max_challenges_per_device: 2,
            ..Bounds::default()
        };
        let mut c = Challenges::new();
        let n = c.issue("a", 0, &bounds);
        assert!(!c.consume("b", &n, 1));
        let n = c.issue("a", 0, &bounds);
        assert!(c.consume("a", &n, 1));
        assert!(!c.consume("a", &n, 1));
        let n = c.issue("a", 0, &bounds);
        assert!(!c.consume("a", &n, 300));
        let first = c.issue("a", 0, &bounds);
        c.issue("a", 0, &bounds);
        c.issue("a", 0, &bounds);
        assert!(!c.consume("a", &first, 1));
        assert_eq!(c.len(), 2);
        for i in 0..8 {
            c.issue(&i.to_string(), 0, &bounds);
        }
        // Full: the oldest nonce makes room; the newcomer is served.
        let x = c.issue("x", 0, &bounds);
        assert_eq!(c.len(), 10);
        assert!(c.consume("x", &x, 1));
    }
}
