//! Fixed-window rate limiter keyed by (endpoint, client key), with a bounded
//! number of tracked keys.

use std::collections::HashMap;

use crate::config::{RateLimit, RateLimits};

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
}

/// Counters per (endpoint, key) for the current window.
pub struct RateLimiter {
    limits: RateLimits,
    windows: HashMap<(Endpoint, String), (i64, u32)>,
    max_keys: usize,
}

impl RateLimiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: RateLimits, max_keys: usize) -> RateLimiter {
        RateLimiter {
            limits,
            windows: HashMap::new(),
            max_keys,
        }
    }

    fn limit(&self, ep: Endpoint) -> RateLimit {
        let l = &self.limits;
        match ep {
            Endpoint::Challenge => l.challenge,
            Endpoint::Token => l.token,
            Endpoint::PairInitiate => l.pair_initiate,
            Endpoint::PairComplete => l.pair_complete,
            Endpoint::Pairing => l.pairing,
            Endpoint::Device => l.device,
            Endpoint::Turn => l.turn,
            Endpoint::Ws => l.ws,
        }
    }

    /// Counts one request; `Err(retry_after_secs)` when over the limit.
    pub fn check(&mut self, ep: Endpoint, key: &str, now: i64) -> Result<(), u64> {
        if !self.limits.enabled {
            return Ok(());
        }
        let limit = self.limit(ep);
        let window = i64::try_from(limit.window.as_secs())
            .unwrap_or(i64::MAX)
            .max(1);
        let k = (ep, key.to_owned());
        if !self.windows.contains_key(&k) && self.windows.len() >= self.max_keys {
            self.purge(now);
            if self.windows.len() >= self.max_keys {
                // Fail closed: too many distinct clients at once.
                return Err(u64::try_from(window).unwrap_or(1));
            }
        }
        let entry = self.windows.entry(k).or_insert((now, 0));
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
        let limits = self.limits.clone();
        let longest = [
            limits.challenge,
            limits.token,
            limits.pair_initiate,
            limits.pair_complete,
            limits.pairing,
            limits.device,
            limits.turn,
            limits.ws,
        ]
        .iter()
        .map(|l| i64::try_from(l.window.as_secs()).unwrap_or(i64::MAX))
        .max()
        .unwrap_or(60);
        self.windows
            .retain(|_, (start, _)| now.saturating_sub(*start) < longest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window() {
        let mut r = RateLimiter::new(RateLimits::default(), 10);
        for _ in 0..8 {
            r.check(Endpoint::Ws, "ip", 100).unwrap();
        }
        assert_eq!(r.check(Endpoint::Ws, "ip", 103), Err(7));
        r.check(Endpoint::Ws, "other", 103).unwrap();
        r.check(Endpoint::Ws, "ip", 110).unwrap();
        let mut off = RateLimiter::new(RateLimits::disabled(), 1);
        for _ in 0..100 {
            off.check(Endpoint::Ws, "ip", 0).unwrap();
        }
    }
}
