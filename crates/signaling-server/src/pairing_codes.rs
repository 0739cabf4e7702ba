//! Live pairing codes in memory (pairing.md §2; the SQLite back end's half of
//! [`crate::store::Ephemeral`]): one per host, single use, expiring, bounded
//! in number; when full, the code closest to expiry makes room (a flood of
//! initiations never stops other hosts from pairing).

use std::collections::HashMap;

use signaling_proto::new_pairing_code;

use crate::store::PendingPairing;

/// The code table.
pub struct PairingCodes {
    by_code: HashMap<String, (PendingPairing, i64)>,
    by_host: HashMap<String, String>,
}

impl PairingCodes {
    /// An empty table.
    pub fn new() -> PairingCodes {
        PairingCodes {
            by_code: HashMap::new(),
            by_host: HashMap::new(),
        }
    }

    /// Replaces any earlier code of the host with a fresh unique one, valid
    /// until `now + ttl`; when the table holds `max` codes, the one expiring
    /// first is dropped. `None` only if no unused code was drawn in 16 tries.
    pub fn create(
        &mut self,
        pending: &PendingPairing,
        now: i64,
        ttl: i64,
        max: usize,
    ) -> Option<String> {
        self.cancel_host(&pending.host_id);
        if self.by_code.len() >= max {
            self.purge(now);
        }
        while self.by_code.len() >= max.max(1) {
            let oldest = self
                .by_code
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(c, _)| c.clone());
            match oldest {
                Some(code) => {
                    if let Some((p, _)) = self.by_code.remove(&code) {
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
        self.by_code
            .insert(code.clone(), (pending.clone(), now.saturating_add(ttl)));
        self.by_host.insert(pending.host_id.clone(), code.clone());
        Some(code)
    }

    /// Removes and returns the pending pairing for `code` if it is live.
    pub fn redeem(&mut self, code: &str, now: i64) -> Option<PendingPairing> {
        let (pending, expires) = self.by_code.remove(code)?;
        self.by_host.remove(&pending.host_id);
        (expires > now).then_some(pending)
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
        self.by_code.retain(|_, (p, expires)| {
            let live = *expires > now;
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

    fn host(id: &str) -> PendingPairing {
        PendingPairing {
            host_id: id.to_owned(),
            host_x25519_public_key: "k".to_owned(),
            host_name: "n".to_owned(),
        }
    }

    #[test]
    fn one_code_per_host_single_use_and_expiry() {
        let mut t = PairingCodes::new();
        let a = t.create(&host("h"), 0, 300, 2).unwrap();
        let b = t.create(&host("h"), 0, 300, 2).unwrap();
        assert!(t.redeem(&a, 1).is_none());
        assert_eq!(t.redeem(&b, 1).unwrap().host_id, "h");
        assert!(t.redeem(&b, 1).is_none());
        let c = t.create(&host("h"), 0, 300, 2).unwrap();
        assert!(t.redeem(&c, 300).is_none());
        let x = t.create(&host("x"), 0, 300, 2).unwrap();
        let y = t.create(&host("y"), 1, 300, 2).unwrap();
        // Full: the code closest to expiry (x) makes room for z.
        let z = t.create(&host("z"), 2, 300, 2).unwrap();
        assert!(t.redeem(&x, 3).is_none());
        assert_eq!(t.redeem(&y, 3).unwrap().host_id, "y");
        assert_eq!(t.redeem(&z, 3).unwrap().host_id, "z");
    }
}
