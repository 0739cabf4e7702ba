//! Host-sleep detection from the two clocks every input carries: the
//! monotonic clock (`Instant`) stops while the machine sleeps on Linux and
//! macOS, the wall clock does not. When, between two observations, wall time
//! advanced by more than monotonic time plus a threshold, the host slept (or
//! the wall clock was stepped forward, which is treated the same way).

use std::time::{Duration, Instant};

use super::{Action, CloseReason, ConnectionState, Core};

/// The last pair of clock readings the core saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct ClockWatch {
    last: Option<(Instant, i64)>,
}

impl ClockWatch {
    /// Records `(now, unix)` and reports whether the wall clock ran ahead of
    /// the monotonic clock by more than `threshold` since the last reading.
    /// A zero `threshold` turns detection off. A wall clock that went
    /// backwards is recorded and never reported.
    pub(crate) fn observe(&mut self, now: Instant, unix: i64, threshold: Duration) -> bool {
        let jumped = match self.last {
            Some((mono, wall)) if !threshold.is_zero() => {
                let mono_elapsed = now.saturating_duration_since(mono);
                let wall_elapsed = u64::try_from(unix.saturating_sub(wall)).unwrap_or(0);
                Duration::from_secs(wall_elapsed) > mono_elapsed + threshold
            }
            _ => false,
        };
        if self.last.is_none_or(|(mono, _)| now >= mono) {
            self.last = Some((now, unix));
        }
        jumped
    }
}

impl<M, E> Core<M, E> {
    /// Both clocks read at a wake-up of the driver (any wake-up: timer, frame,
    /// message to send). When the wall clock ran ahead of the monotonic one by
    /// more than `sleep_jump_threshold` since the last reading, the host
    /// slept: an open or opening link is replaced at once with the backoff
    /// reset (it is presumed dead, and waiting out the read deadline would
    /// keep the phone away for up to 70 s), and a backoff wait or dormancy
    /// ends as on an activity signal. A suspended client stays suspended
    /// until its explicit resume. Returns true when it found the host slept:
    /// a frame or dial result the driver read at this wake-up belongs to the
    /// link being replaced and is dropped, not fed in.
    pub fn handle_clock(&mut self, now: Instant, unix: i64) -> bool {
        if !self
            .clocks
            .observe(now, unix, self.config.sleep_jump_threshold)
        {
            return false;
        }
        if self.link_open() {
            self.actions.push_back(Action::Close {
                reason: CloseReason::HostSlept,
            });
            self.stop_link_timers();
            self.backoff = self.config.initial_backoff;
            self.first_failure = None;
            self.wait = None;
            self.begin_attempt(now, unix);
        } else if self.state != ConnectionState::Suspended {
            self.wake(now, unix);
        }
        true
    }
}
