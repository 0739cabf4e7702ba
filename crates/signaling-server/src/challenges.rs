//! Outstanding challenge nonces: single use, bound to one device id, expiring,
//! bounded per device and in total.

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;

/// Why a presented nonce was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeError {
    /// Never issued, already used, expired, or issued for another device.
    Invalid,
    /// Too many outstanding challenges server-wide.
    Full,
}

struct Entry {
    device_id: String,
    expires: i64,
}

/// The challenge table.
pub struct Challenges {
    by_nonce: HashMap<String, Entry>,
    by_device: HashMap<String, VecDeque<String>>,
    max_total: usize,
    max_per_device: usize,
}

impl Challenges {
    /// An empty table with the given bounds.
    pub fn new(max_total: usize, max_per_device: usize) -> Challenges {
        Challenges {
            by_nonce: HashMap::new(),
            by_device: HashMap::new(),
            max_total,
            max_per_device: max_per_device.max(1),
        }
    }

    /// Issues a fresh 32-byte base64 nonce for `device_id`, valid until
    /// `now + ttl`. The device's oldest nonce is dropped past the per-device bound.
    pub fn issue(&mut self, device_id: &str, now: i64, ttl: i64) -> Result<String, ChallengeError> {
        if self.by_nonce.len() >= self.max_total {
            self.purge(now);
            if self.by_nonce.len() >= self.max_total {
                return Err(ChallengeError::Full);
            }
        }
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let nonce = STANDARD.encode(raw);
        let queue = self.by_device.entry(device_id.to_owned()).or_default();
        while queue.len() >= self.max_per_device {
            if let Some(old) = queue.pop_front() {
                self.by_nonce.remove(&old);
            }
        }
        queue.push_back(nonce.clone());
        self.by_nonce.insert(
            nonce.clone(),
            Entry {
                device_id: device_id.to_owned(),
                expires: now.saturating_add(ttl),
            },
        );
        Ok(nonce)
    }

    /// Consumes `nonce` if it was issued for `device_id` and has not expired.
    /// A nonce presented for the wrong device is consumed too (it is burnt).
    pub fn consume(
        &mut self,
        device_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<(), ChallengeError> {
        let entry = self.by_nonce.remove(nonce).ok_or(ChallengeError::Invalid)?;
        if let Some(q) = self.by_device.get_mut(&entry.device_id) {
            q.retain(|n| n != nonce);
            if q.is_empty() {
                self.by_device.remove(&entry.device_id);
            }
        }
        if entry.device_id != device_id || entry.expires <= now {
            return Err(ChallengeError::Invalid);
        }
        Ok(())
    }

    /// Drops expired nonces.
    pub fn purge(&mut self, now: i64) {
        self.by_nonce.retain(|_, e| e.expires > now);
        let live = &self.by_nonce;
        self.by_device.retain(|_, q| {
            q.retain(|n| live.contains_key(n));
            !q.is_empty()
        });
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
        let mut c = Challenges::new(10, 2);
        let n = c.issue("a", 0, 300).unwrap();
        assert_eq!(c.consume("b", &n, 1), Err(ChallengeError::Invalid));
        let n = c.issue("a", 0, 300).unwrap();
        assert_eq!(c.consume("a", &n, 1), Ok(()));
        assert_eq!(c.consume("a", &n, 1), Err(ChallengeError::Invalid));
        let n = c.issue("a", 0, 300).unwrap();
        assert_eq!(c.consume("a", &n, 300), Err(ChallengeError::Invalid));
        let first = c.issue("a", 0, 300).unwrap();
        c.issue("a", 0, 300).unwrap();
        c.issue("a", 0, 300).unwrap();
        assert_eq!(c.consume("a", &first, 1), Err(ChallengeError::Invalid));
        assert_eq!(c.len(), 2);
        for i in 0..8 {
            c.issue(&i.to_string(), 0, 300).unwrap();
        }
        assert_eq!(c.issue("x", 0, 300), Err(ChallengeError::Full));
        assert!(c.issue("x", 300, 300).is_ok());
    }
}
