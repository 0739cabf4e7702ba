//! Budget of failed `pair/complete` attempts (wrong or expired pairing code):
//! per address prefix ([`PrefixKey`]: IPv4 /24, IPv6 /48) and server-wide,
//! each a fixed window. Pairing codes carry 30 bits, so a guesser must be
//! bounded in total, not per address: one spread over many addresses hits
//! the global budget. Past either budget every `pair/complete` is answered
//! 429 with `Retry-After` until the window ends (correct codes too: otherwise
//! the guesser would keep learning). Plain data, fed Unix seconds.

use crate::client_key::PrefixKey;
use crate::lru::LruMap;

/// Failures allowed per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuessLimits {
    /// Failed attempts per address prefix per window.
    pub per_prefix: u32,
    /// Failed attempts server-wide per window.
    pub global: u32,
    /// Window length in seconds.
    pub window_secs: i64,
}

impl Default for GuessLimits {
    fn default() -> Self {
        GuessLimits {
            per_prefix: 20,
            global: 1000,
            window_secs: 600,
        }
    }
}

/// The failure counters.
pub struct GuessBudget {
    limits: GuessLimits,
    global: (i64, u32),
    prefixes: LruMap<PrefixKey, (i64, u32)>,
}

impl GuessBudget {
    /// Counters for `limits`, tracking at most `max_prefixes` prefixes (least
    /// recently seen forgotten first).
    pub fn new(limits: GuessLimits, max_prefixes: usize) -> GuessBudget {
        GuessBudget {
            limits,
            global: (0, 0),
            prefixes: LruMap::new(max_prefixes),
        }
    }

    fn window(&self) -> i64 {
        self.limits.window_secs.max(1)
    }

    fn retry_after(&self, start: i64, now: i64) -> u64 {
        let left = start.saturating_add(self.window()).saturating_sub(now);
        u64::try_from(left).unwrap_or(1).max(1)
    }

    /// `Err(retry_after_secs)` when `prefix` or the server has used its budget.
    pub fn check(&mut self, prefix: PrefixKey, now: i64) -> Result<(), u64> {
        let window = self.window();
        if now.saturating_sub(self.global.0) >= window {
            self.global = (now, 0);
        }
        if self.global.1 >= self.limits.global {
            return Err(self.retry_after(self.global.0, now));
        }
        if let Some(&(start, n)) = self.prefixes.peek(&prefix)
            && now.saturating_sub(start) < window
            && n >= self.limits.per_prefix
        {
            return Err(self.retry_after(start, now));
        }
        Ok(())
    }

    /// Counts one failed attempt from `prefix`.
    pub fn record_failure(&mut self, prefix: PrefixKey, now: i64) {
        let window = self.window();
        if now.saturating_sub(self.global.0) >= window {
            self.global = (now, 0);
        }
        self.global.1 = self.global.1.saturating_add(1);
        let entry = self.prefixes.entry(prefix, || (now, 0));
        if now.saturating_sub(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets prefix windows that have ended.
    pub fn purge(&mut self, now: i64) {
        let window = self.window();
        self.prefixes
            .retain(|_, (start, _)| now.saturating_sub(*start) < window);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::client_key::ClientKey;

    fn prefix(a: u8, b: u8) -> PrefixKey {
        ClientKey::V4(Ipv4Addr::new(198, a, b, 7)).prefix()
    }

    #[test]
    fn per_prefix_then_global_then_the_window_ends() {
        let limits = GuessLimits {
            per_prefix: 2,
            global: 5,
            window_secs: 60,
        };
        let mut b = GuessBudget::new(limits, 100);
        for _ in 0..2 {
            b.check(prefix(1, 1), 0).unwrap();
            b.record_failure(prefix(1, 1), 0);
        }
        assert_eq!(b.check(prefix(1, 1), 10), Err(50));
        // A neighbour in the same /24 shares the budget; another /24 does not.
        assert_eq!(b.check(prefix(1, 1), 10), b.check(prefix(1, 1), 10));
        b.check(prefix(1, 2), 10).unwrap();
        // Spread over many prefixes, the global budget stops the guesser.
        for i in 0..3 {
            b.check(prefix(2, i), 10).unwrap();
            b.record_failure(prefix(2, i), 10);
        }
        assert_eq!(b.check(prefix(3, 0), 20), Err(40));
        b.check(prefix(3, 0), 60).unwrap();
        b.check(prefix(1, 1), 60).unwrap();
        b.purge(70);
        assert_eq!(b.prefixes.len(), 0);
    }
}
