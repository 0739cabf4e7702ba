//! Pure per-phone throttle of `connect_request`s. Each admitted request builds
//! a peer connection (ICE gathering, DTLS certificate, sockets), so a phone, or
//! a signaling server speaking for it, must not make the host build them in a
//! loop: each device gets a burst of [`CONNECT_BURST`] requests, then one per
//! [`CONNECT_INTERVAL`].
//!
//! A request over the rate is dropped with a log line and no reply: the spec
//! (peer-lifecycle.md §1, signaling.md §6) names no `connection_rejected`
//! reason for it, and a phone that gets no offer retries on its own timer.
//!
//! The rule is GCRA (a token bucket kept as one "theoretical arrival time" per
//! device): fed with `Instant`s by the caller, it never reads a clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Requests a device may make at once before the rate applies: a few quick
/// retries of a phone (the hostile-phone e2e suite makes six connections back
/// to back) pass, a flood does not.
pub const CONNECT_BURST: u32 = 6;
/// Sustained rate: one request per this interval.
pub const CONNECT_INTERVAL: Duration = Duration::from_secs(1);
/// Devices tracked at most; the oldest-idle entries go first when full.
pub const MAX_TRACKED_DEVICES: usize = 64;

/// Per-device GCRA state for `connect_request`s.
#[derive(Debug)]
pub struct ConnectThrottle {
    interval: Duration,
    /// How far ahead of `now` a device's arrival time may run: (burst − 1) × interval.
    tolerance: Duration,
    /// Device id → theoretical arrival time of its next request.
    next: HashMap<String, Instant>,
}

impl Default for ConnectThrottle {
    fn default() -> Self {
        Self::new(CONNECT_BURST, CONNECT_INTERVAL)
    }
}

impl ConnectThrottle {
    /// A throttle allowing `burst` requests at once (at least 1), then one per `interval`.
    pub fn new(burst: u32, interval: Duration) -> Self {
        Self {
            interval,
            tolerance: interval.saturating_mul(burst.max(1) - 1),
            next: HashMap::new(),
        }
    }

    /// True when `device_id` may build a peer at `now` (and counts the request);
    /// false when it is over its rate (nothing is counted).
    pub fn allow(&mut self, now: Instant, device_id: &str) -> bool {
        let tat = self.next.get(device_id).copied().unwrap_or(now).max(now);
        if tat.saturating_duration_since(now) > self.tolerance {
            return false;
        }
        if !self.next.contains_key(device_id) && self.next.len() >= MAX_TRACKED_DEVICES {
            self.forget_idle(now);
            if self.next.len() >= MAX_TRACKED_DEVICES {
                // Every tracked device is busy: make room by dropping the entry
                // closest to idle, which loses the least history.
                if let Some(k) = self
                    .next
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(k, _)| k.clone())
                {
                    self.next.remove(&k);
                }
            }
        }
        self.next.insert(device_id.to_owned(), tat + self.interval);
        true
    }

    /// Drops devices whose bucket is full again at `now` (they are as if new).
    pub fn forget_idle(&mut self, now: Instant) {
        self.next.retain(|_, tat| *tat > now);
    }

    /// Number of devices tracked.
    pub fn len(&self) -> usize {
        self.next.len()
    }

    /// True when no device is tracked.
    pub fn is_empty(&self) -> bool {
        self.next.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn default_is_a_burst_of_six_then_one_per_second() {
        let t0 = Instant::now();
        let mut th = ConnectThrottle::default();
        for _ in 0..6 {
            assert!(th.allow(t0, "m1"));
        }
        assert!(!th.allow(t0, "m1"));
        assert!(th.allow(t0 + S, "m1"));
        assert!(!th.allow(t0 + S, "m1"));
    }

    #[test]
    fn burst_of_three_then_one_per_second() {
        let t0 = Instant::now();
        let mut th = ConnectThrottle::new(3, S);
        assert!(th.allow(t0, "m1"));
        assert!(th.allow(t0, "m1"));
        assert!(th.allow(t0, "m1"));
        assert!(!th.allow(t0, "m1"), "fourth at once");
        assert!(!th.allow(t0 + S - MS, "m1"), "just before the refill");
        assert!(th.allow(t0 + S, "m1"), "one refilled after a second");
        assert!(!th.allow(t0 + S, "m1"));
        assert!(th.allow(t0 + 2 * S, "m1"));
        // A steady 1/s never trips it.
        for i in 3..20 {
            assert!(th.allow(t0 + i * S, "m1"), "{i}");
        }
    }

    #[test]
    fn refused_requests_do_not_push_the_next_one_back() {
        let t0 = Instant::now();
        let mut th = ConnectThrottle::new(3, S);
        for _ in 0..3 {
            assert!(th.allow(t0, "m1"));
        }
        for k in 0..100 {
            assert!(!th.allow(t0 + k * MS, "m1"));
        }
        assert!(th.allow(t0 + S, "m1"));
    }

    #[test]
    fn a_quiet_device_gets_its_whole_burst_back() {
        let t0 = Instant::now();
        let mut th = ConnectThrottle::new(3, S);
        for _ in 0..3 {
            assert!(th.allow(t0, "m1"));
        }
        let later = t0 + 3 * S;
        for _ in 0..3 {
            assert!(th.allow(later, "m1"));
        }
        assert!(!th.allow(later, "m1"));
    }

    #[test]
    fn devices_are_throttled_separately() {
        let t0 = Instant::now();
        let mut th = ConnectThrottle::new(3, S);
        for _ in 0..3 {
            assert!(th.allow(t0, "m1"));
        }
        assert!(!th.allow(t0, "m1"));
        assert!(th.allow(t0, "m2"));
    }

    #[test]
    fn tracked_devices_are_bounded() {
        let t0 = Instant::now();
        let mut th = ConnectThrottle::default();
        for i in 0..(MAX_TRACKED_DEVICES * 3) {
            assert!(th.allow(t0, &format!("m{i}")));
            assert!(th.len() <= MAX_TRACKED_DEVICES);
        }
        th.forget_idle(t0 + S);
        assert!(th.is_empty());
    }

    #[test]
    fn burst_of_one_is_a_plain_rate() {
        let t0 = Instant::now();
        let mut th = ConnectThrottle::new(1, S);
        assert!(th.allow(t0, "m1"));
        assert!(!th.allow(t0 + S / 2, "m1"));
        assert!(th.allow(t0 + S, "m1"));
    }
}
