//! What each simulated device counts while it runs (relays sent and
//! received, one-way relay latencies, when it last authenticated, when the
//! first relay after a mark arrived) and the percentiles the report takes
//! from them. Each device owns one [`Stats`] behind a mutex that the
//! orchestrator reads between phases.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Latency samples one device keeps per load phase (30 s at a few relays a
/// second stays far below it); later ones are counted but not kept.
pub const MAX_SAMPLES: usize = 4096;

/// One device's counters.
#[derive(Debug)]
pub struct Stats {
    /// `ice_candidate` relays this device sent during the phase.
    pub sent: u64,
    /// Relays from its peer that reached it during the phase.
    pub received: u64,
    /// One-way latencies of those relays, in microseconds (at most [`MAX_SAMPLES`]).
    pub latencies_us: Vec<u32>,
    /// The instance its socket is authenticated on, if any.
    pub instance: Option<usize>,
    /// When its socket last authenticated.
    pub authenticated_at: Option<Instant>,
    /// The mark the two fields below belong to.
    pub mark: Instant,
    /// The first relay sent after `mark` that reached this device.
    pub first_relay_after_mark: Option<Instant>,
    /// The first `host_online` for its host after `mark` (phones).
    pub host_online_after_mark: Option<Instant>,
}

impl Stats {
    /// Empty counters whose mark is `epoch`.
    pub fn new(epoch: Instant) -> Stats {
        Stats {
            sent: 0,
            received: 0,
            latencies_us: Vec::new(),
            instance: None,
            authenticated_at: None,
            mark: epoch,
            first_relay_after_mark: None,
            host_online_after_mark: None,
        }
    }

    /// Forgets the load counters (a new phase starts).
    pub fn reset_load(&mut self) {
        self.sent = 0;
        self.received = 0;
        self.latencies_us.clear();
    }

    /// Follows the orchestrator's current `mark`: a new mark clears what was
    /// seen after the old one.
    pub fn follow_mark(&mut self, mark: Instant) {
        if self.mark != mark {
            self.mark = mark;
            self.first_relay_after_mark = None;
            self.host_online_after_mark = None;
        }
    }

    /// One relay received `latency` after it was sent.
    pub fn record(&mut self, latency: Duration) {
        self.received += 1;
        if self.latencies_us.len() < MAX_SAMPLES {
            self.latencies_us
                .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        }
    }

    /// The first relay after `mark` as seen from `mark`, if it came.
    pub fn relaying_after(&self, mark: Instant) -> Option<Duration> {
        (self.mark == mark)
            .then_some(self.first_relay_after_mark)
            .flatten()
            .map(|at| at.saturating_duration_since(mark))
    }
}

/// Locks one device's stats; a device task that panicked while holding the
/// lock left counters that are still worth reading.
pub fn lock(stats: &Mutex<Stats>) -> MutexGuard<'_, Stats> {
    stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `p`-th percentile (0..=100) of sorted `values`, nearest rank; 0 when empty.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Microseconds as milliseconds with two decimals' worth of precision.
pub fn ms(us: u32) -> f64 {
    (f64::from(us) / 10.0).round() / 100.0
}

/// Seconds with two decimals' worth of precision.
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}
