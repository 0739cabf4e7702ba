//! Fixed-window rate limiter keyed by (endpoint, [`RateKey`]), with a bounded
//! number of tracked keys: when full, the least recently used window is
//! forgotten (never "refuse everyone"), see [`crate::lru`].

use crate::client_key::{ClientKey, PrefixKey};
use crate::config::{RateLimit, RateLimits};
use crate::lru::LruMap;

/// Who a limit counts: a client address (before auth) or a device (Bearer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// A client address ([`ClientKey`]: IPv4, or IPv6 /64).
    Client(ClientKey),
    /// An address prefix (IPv4 /24, IPv6 /48): new-device registrations.
    Prefix(PrefixKey),
    /// An authenticated device id.
    Device(String),
}

/// The limited endpoints of signaling.md §9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /auth/challenge`.
    Challenge,
    /// `POST /auth/token`.
    Token,
    /// `POST /auth/pair/initiate`.
    PairInitiate,
    /// `POST /auth/pair/complete`.
    PairComplete,
    /// `DELETE /auth/pairing`.
    Pairing,
    /// `DELETE /auth/device`.
    Device,
    /// `GET /turn/credentials`.
    Turn,
    /// `GET /ws`.
    Ws,
    /// A new device registered (pair/initiate or pair/complete).
    Register,
}

/// Counters per (endpoint, key) for the current window.
pub struct RateLimiter {
    limits: RateLimits,
    windows: LruMap<(Endpoint, RateKey), (i64, u32)>,
}

impl RateLimiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: RateLimits, max_keys: usize) -> RateLimiter {
        RateLimiter {
            limits,
            windows: LruMap::new(max_keys),
        }
    }

    fn limit(&self, ep: Endpoint) -> RateLimit {
        limit_of(&self.limits, ep)
    }

    /// Counts one request; `Err(retry_after_secs)` when over the limit.
    pub fn check(&mut self, ep: Endpoint, key: &RateKey, now: i64) -> Result<(), u64> {
        if !self.limits.enabled {
            return Ok(());
        }
        let limit = self.limit(ep);
        let window = i64::try_from(limit.window.as_secs())
            .unwrap_or(i64::MAX)
            .max(1);
        if self.windows.len() >= self.windows.capacity() {
            self.purge(now);
        }
        // When still full, the least recently used window is forgotten.
        let entry = self.windows.entry((ep, key.clone()), || (now, 0));
        if now.saturating_sub(entry.0) >= window {
            *entry = (now, 0);
        }
        if entry.1 >= limit.max {
            let left = entry.0.saturating_add(window).saturating_sub(now);
            return Err(u64::try_from(left).unwrap_or(1).max(1));
        }
        entry.1 += 1;
        Ok(())
    }

    /// Forgets windows that have ended.
    pub fn purge(&mut self, now: i64) {
        let limits = &self.limits;
        self.windows.retain(|(ep, _), (start, _)| {
            let window = i64::try_from(limit_of(limits, *ep).window.as_secs()).unwrap_or(i64::MAX);
            now.saturating_sub(*start) < window
        });
    }
}

fn limit_of(l: &RateLimits, ep: Endpoint) -> RateLimit {
    match ep {
        Endpoint::Challenge => l.challenge,
        Endpoint::Token => l.token,
        Endpoint::PairInitiate => l.pair_initiate,
        Endpoint::PairComplete => l.pair_complete,
        Endpoint::Pairing => l.pairing,
        Endpoint::Device => l.device,
        Endpoint::Turn => l.turn,
        Endpoint::Ws => l.ws,
        Endpoint::Register => l.register,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(s: &str) -> RateKey {
        RateKey::Device(s.to_owned())
    }

    #[test]
    fn fixed_window() {
        let mut r = RateLimiter::new(RateLimits::default(), 10);
        for _ in 0..8 {
            r.check(Endpoint::Ws, &dev("ip"), 100).unwrap();
        }
        assert_eq!(r.check(Endpoint::Ws, &dev("ip"), 103), Err(7));
        r.check(Endpoint::Ws, &dev("other"), 103).unwrap();
        r.check(Endpoint::Ws, &dev("ip"), 110).unwrap();
        let mut off = RateLimiter::new(RateLimits::disabled(), 1);
        for _ in 0..100 {
            off.check(Endpoint::Ws, &dev("ip"), 0).unwrap();
        }
    }

    #[test]
    fn a_full_table_forgets_old_keys_instead_of_refusing_everyone() {
        let mut r = RateLimiter::new(RateLimits::default(), 4);
        // A spammer over many addresses fills the table within one window.
        for i in 0..100u8 {
            let key = RateKey::Client(ClientKey::V4(std::net::Ipv4Addr::new(10, 0, 0, i)));
            r.check(Endpoint::Challenge, &key, 0).unwrap();
        }
        // Somebody new is still served.
        r.check(Endpoint::Challenge, &dev("newcomer"), 0).unwrap();
        assert!(r.windows.len() <= 4);
    }
}
