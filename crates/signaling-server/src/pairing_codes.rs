//! Live pairing codes (pairing.md §2): one per host, single use, expiring,
//! bounded in number; when full, the code closest to expiry makes room (a
//! flood of initiations never stops other hosts from pairing).

use std::collections::HashMap;

use signaling_proto::new_pairing_code;

/// What a code stands for until a mobile redeems it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPairing {
    /// Host that initiated.
    pub host_id: String,
    /// Host X25519 key for this attempt (base64).
    pub host_x25519_public_key: String,
    /// Host name at initiate time.
    pub host_name: String,
    expires: i64,
}

/// The code table.
pub struct PairingCodes {
    by_code: HashMap<String, PendingPairing>,
    by_host: HashMap<String, String>,
    max: usize,
}

impl PairingCodes {
    /// An empty table holding at most `max` codes.
    pub fn new(max: usize) -> PairingCodes {
        PairingCodes {
            by_code: HashMap::new(),
            by_host: HashMap::new(),
            max,
        }
    }

    /// Replaces any earlier code of the host with a fresh unique one; when the
    /// table is full of live codes, the one expiring first is dropped. `None`
    /// only if no unused code was drawn in 16 tries.
    pub fn create(
        &mut self,
        host_id: &str,
        x25519_b64: &str,
        host_name: &str,
        now: i64,
        ttl: i64,
    ) -> Option<String> {
        if let Some(old) = self.by_host.remove(host_id) {
            self.by_code.remove(&old);
        }
        if self.by_code.len() >= self.max {
            self.purge(now);
        }
        while self.by_code.len() >= self.max.max(1) {
            let oldest = self
                .by_code
                .iter()
                .min_by_key(|(_, p)| p.expires)
                .map(|(c, _)| c.clone());
            match oldest {
                Some(code) => {
                    if let Some(p) = self.by_code.remove(&code) {
                        self.by_host.remove(&p.host_id);
                    }
                }
                None => break,
            }
        }
        // 32^6 ≈ 10^9 codes against at most `max` live ones: a few tries suffice.
        let code = (0..16)
            .map(|_| new_pairing_code())
            .find(|c| !self.by_code.contains_key(c))?;
        self.by_code.insert(
            code.clone(),
            PendingPairing {
                host_id: host_id.to_owned(),
                host_x25519_public_key: x25519_b64.to_owned(),
                host_name: host_name.to_owned(),
                expires: now.saturating_add(ttl),
            },
        );
        self.by_host.insert(host_id.to_owned(), code.clone());
        Some(code)
    }

    /// Removes and returns the pending pairing for `code` if it is live.
    pub fn redeem(&mut self, code: &str, now: i64) -> Option<PendingPairing> {
        let pending = self.by_code.remove(code)?;
        self.by_host.remove(&pending.host_id);
        (pending.expires > now).then_some(pending)
    }

    /// Drops the code of `host_id`, if any.
    pub fn cancel_host(&mut self, host_id: &str) {
        if let Some(code) = self.by_host.remove(host_id) {
            self.by_code.remove(&code);
        }
    }

    /// Drops expired codes.
    pub fn purge(&mut self, now: i64) {
        let by_host = &mut self.by_host;
        self.by_code.retain(|_, p| {
            let live = p.expires > now;
            if !live {
                by_host.remove(&p.host_id);
            }
            live
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_code_per_host_single_use_and_expiry() {
        let mut t = PairingCodes::new(2);
        let a = t.create("h", "k", "n", 0, 300).unwrap();
        let b = t.create("h", "k", "n", 0, 300).unwrap();
        assert!(t.redeem(&a, 1).is_none());
        assert_eq!(t.redeem(&b, 1).unwrap().host_id, "h");
        assert!(t.redeem(&b, 1).is_none());
        let c = t.create("h", "k", "n", 0, 300).unwrap();
        assert!(t.redeem(&c, 300).is_none());
        let x = t.create("x", "k", "n", 0, 300).unwrap();
        let y = t.create("y", "k", "n", 1, 300).unwrap();
        // Full: the code closest to expiry (x) makes room for z.
        let z = t.create("z", "k", "n", 2, 300).unwrap();
        assert!(t.redeem(&x, 3).is_none());
        assert_eq!(t.redeem(&y, 3).unwrap().host_id, "y");
        assert_eq!(t.redeem(&z, 3).unwrap().host_id, "z");
    }
}
