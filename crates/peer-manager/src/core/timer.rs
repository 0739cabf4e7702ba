//! The timer table of [`PeerCore`](super::PeerCore): one optional deadline per
//! rule, the earliest of which is the core's `poll_timeout()` (quinn-proto's
//! `TimerTable`).

use std::time::Instant;

/// Each per-peer rule that waits for time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The channel has not opened since the offer (no phone behind it).
    ChannelOpen,
    /// The phone's `auth_response` deadline (terminal-protocol.md §12, 10 s).
    Auth,
    /// No `ping` for 60 s (or none within 60 s of authenticating).
    Idle,
    /// Disconnect grace before an ICE restart (peer-lifecycle.md §4, 10 s).
    Grace,
    /// Answer watchdog after an ICE restart (20 s).
    Watchdog,
}

impl Timer {
    /// Every timer, in the order expired ones are handled.
    pub const ALL: [Timer; 5] = [
        Timer::ChannelOpen,
        Timer::Auth,
        Timer::Idle,
        Timer::Grace,
        Timer::Watchdog,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One optional deadline per [`Timer`].
#[derive(Debug, Default, Clone)]
pub(crate) struct TimerTable {
    data: [Option<Instant>; 5],
}

impl TimerTable {
    pub(crate) fn set(&mut self, t: Timer, at: Instant) {
        self.data[t.index()] = Some(at);
    }

    pub(crate) fn set_opt(&mut self, t: Timer, at: Option<Instant>) {
        self.data[t.index()] = at;
    }

    pub(crate) fn get(&self, t: Timer) -> Option<Instant> {
        self.data[t.index()]
    }

    pub(crate) fn stop(&mut self, t: Timer) {
        self.data[t.index()] = None;
    }

    pub(crate) fn is_set(&self, t: Timer) -> bool {
        self.data[t.index()].is_some()
    }

    pub(crate) fn clear(&mut self) {
        self.data = [None; 5];
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }

    /// True when `t` is set and due at `now`.
    pub(crate) fn is_due(&self, t: Timer, now: Instant) -> bool {
        self.get(t).is_some_and(|d| d <= now)
    }
}
