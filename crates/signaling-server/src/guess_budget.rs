//! Budget of failed `pair/complete` attempts (wrong or expired pairing code)
//! in memory (the SQLite back end's half of [`crate::store::Ephemeral`]):
//! per address prefix ([`PrefixKey`]: IPv4 /24, IPv6 /48) and server-wide,
//! each a fixed window that starts at its first failure. Pairing codes carry
//! 30 bits, so a guesser must be bounded in total, not per address: one
//! spread over many addresses hits the global budget. Past either budget
//! every `pair/complete` is answered 429 with `Retry-After` until the window
//! ends (correct codes too: otherwise the guesser would keep learning).
//! Plain data, fed Unix seconds.

use crate::client_key::PrefixKey;
use crate::lru::LruMap;
use crate::store::GuessLimits;

/// The failure counters: `(window start, failures)` server-wide and per prefix.
pub struct GuessBudget {
    global: Option<(i64, u32)>,
    /// Created at the first failure, holding at most the `max_prefixes` of
    /// that call (least recently seen forgotten first); rebuilt if that bound
    /// changes.
    prefixes: Option<LruMap<PrefixKey, (i64, u32)>>,
}

/// The failures counted in a window that started at `start`, or 0 once it
/// has ended.
fn live(window: Option<(i64, u32)>, now: i64, limits: &GuessLimits) -> Option<(i64, u32)> {
    window.filter(|(start, _)| now.saturating_sub(*start) < limits.window())
}

impl GuessBudget {
    /// No failures yet.
    pub fn new() -> GuessBudget {
        GuessBudget {
            global: None,
            prefixes: None,
        }
    }

    /// `Err(retry_after_secs)` when `prefix` or the server has used its budget.
    pub fn check(&self, prefix: PrefixKey, now: i64, limits: &GuessLimits) -> Result<(), u64> {
        if let Some((start, n)) = live(self.global, now, limits)
            && n >= limits.global
        {
            return Err(limits.retry_after(start, now));
        }
        let mine = self
            .prefixes
            .as_ref()
            .and_then(|p| p.peek(&prefix))
            .copied();
        if let Some((start, n)) = live(mine, now, limits)
            && n >= limits.per_prefix
        {
            return Err(limits.retry_after(start, now));
        }
        Ok(())
    }

    /// Counts one failed attempt from `prefix`.
    pub fn record_failure(
        &mut self,
        prefix: PrefixKey,
        now: i64,
        limits: &GuessLimits,
        max_prefixes: usize,
    ) {
        let bump = |w: Option<(i64, u32)>| match live(w, now, limits) {
            Some((start, n)) => (start, n.saturating_add(1)),
            None => (now, 1),
        };
        self.global = Some(bump(self.global));
        let prefixes = match &mut self.prefixes {
            Some(p) if p.capacity() == max_prefixes.max(1) => p,
            other => other.insert(LruMap::new(max_prefixes)),
        };
        let entry = prefixes.entry(prefix, || (now, 0));
        *entry = bump(Some(*entry));
    }

    /// Forgets windows that have ended.
    pub fn purge(&mut self, now: i64, limits: &GuessLimits) {
        self.global = live(self.global, now, limits);
        if let Some(p) = &mut self.prefixes {
            p.retain(|_, w| live(Some(*w), now, limits).is_some());
        }
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
        let mut b = GuessBudget::new();
        for _ in 0..2 {
            b.check(prefix(1, 1), 0, &limits).unwrap();
            b.record_failure(prefix(1, 1), 0, &limits, 100);
        }
        assert_eq!(b.check(prefix(1, 1), 10, &limits), Err(50));
        b.check(prefix(1, 2), 10, &limits).unwrap();
        // Spread over many prefixes, the global budget stops the guesser.
        for i in 0..3 {
            b.check(prefix(2, i), 10, &limits).unwrap();
            b.record_failure(prefix(2, i), 10, &limits, 100);
        }
        assert_eq!(b.check(prefix(3, 0), 20, &limits), Err(40));
        b.check(prefix(3, 0), 60, &limits).unwrap();
        b.check(prefix(1, 1), 60, &limits).unwrap();
        b.purge(70, &limits);
        assert_eq!(b.prefixes.as_ref().unwrap().len(), 0);
        assert!(b.global.is_none());
    }
}
