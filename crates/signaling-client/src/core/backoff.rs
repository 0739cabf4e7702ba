//! Reconnect pacing: the backoff wait after a failed attempt or an ended
//! session, the rule that grows it only when the wait really happened, and
//! dormancy once failures have lasted the dormancy timeout.

use std::time::{Duration, Instant};

use super::timer::Timer;
use super::{Action, ConnectionState, Core};

#[derive(Debug, Clone, Copy)]
pub(super) struct Wait {
    pub(super) started: Instant,
    pub(super) intended: Duration,
}

impl<M, E> Core<M, E> {
    /// An attempt ended without authenticating.
    pub(super) fn attempt_failed(&mut self, now: Instant) {
        let first = *self.first_failure.get_or_insert(now);
        if now.saturating_duration_since(first) >= self.config.dormancy_timeout {
            self.timers.stop_all();
            self.wait = None;
            self.state = ConnectionState::Dormant;
            self.actions.push_back(Action::GoDormant);
        } else {
            self.schedule_wait(now);
        }
    }

    /// An authenticated session ended; the backoff was reset when it
    /// authenticated. The next server may re-authenticate in place again.
    pub(super) fn session_ended(&mut self, now: Instant) {
        self.reauth_refused = false;
        self.schedule_wait(now);
    }

    pub(super) fn schedule_wait(&mut self, now: Instant) {
        let wait = self.backoff;
        self.wait = Some(Wait {
            started: now,
            intended: wait,
        });
        self.timers.set(Timer::Backoff, now + wait);
        self.state = ConnectionState::Backoff { wait };
    }

    /// The backoff wait is over (elapsed or cut short by activity).
    pub(super) fn end_wait(&mut self, now: Instant, unix: i64) {
        self.timers.stop(Timer::Backoff);
        if let Some(w) = self.wait.take() {
            // Grow only when the wait really happened: an early wake-up must
            // not inflate the next wait.
            if now.saturating_duration_since(w.started) * 2 >= w.intended {
                self.backoff = (w.intended * 2).min(self.config.max_backoff);
            }
        }
        self.begin_attempt(now, unix);
    }
}
