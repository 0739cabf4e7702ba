//! The core's timer table: one optional deadline per [`Timer`], the earliest of
//! which is what the driver sleeps until.

use std::time::Instant;

/// Every deadline the signaling core can be waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The `auth` reply must arrive within 10 s of sending `auth`.
    AuthTimeout,
    /// Rolling read deadline: `2 × presence + grace` after the last read or pong.
    ReadDeadline,
    /// Next `presence` message + WS ping.
    Presence,
    /// Next wall-clock check of the JWT's expiry (or the next refresh retry).
    TokenCheck,
    /// End of the reconnect backoff wait.
    Backoff,
}

impl Timer {
    /// Processing order when several expire in one `handle_timeout`: deadlines
    /// that end the link first, so a dead link never also sends presence.
    pub(crate) const ALL: [Timer; 5] = [
        Timer::AuthTimeout,
        Timer::ReadDeadline,
        Timer::Presence,
        Timer::TokenCheck,
        Timer::Backoff,
    ];

    /// The timers that belong to one open link and die with it.
    pub(crate) const LINK: [Timer; 4] = [
        Timer::AuthTimeout,
        Timer::ReadDeadline,
        Timer::Presence,
        Timer::TokenCheck,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Fixed-size table of deadlines indexed by [`Timer`].
#[derive(Debug, Default, Clone)]
pub(crate) struct TimerTable {
    slots: [Option<Instant>; 5],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.slots[timer.index()] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.slots[timer.index()] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.slots = [None; 5];
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.slots[timer.index()]
    }

    /// True when `timer` is armed and due at `now`.
    pub(crate) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.slots.iter().flatten().min().copied()
    }
}
