//! Sans-IO lifecycle of one peer connection: disconnect grace, ICE restart,
//! answer watchdog and a cleanup that is reported exactly once (peer-lifecycle.md §4).

use std::time::{Duration, Instant, SystemTime};

/// How long a disconnected peer may stay disconnected before the host restarts ICE.
pub const DISCONNECT_GRACE: Duration = Duration::from_secs(10);
/// How long the host waits for the peer to reconnect after an ICE-restart offer.
pub const ANSWER_WATCHDOG: Duration = Duration::from_secs(20);

/// Peer-connection state as the lifecycle machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Created, nothing happened yet.
    New,
    /// ICE/DTLS in progress.
    Connecting,
    /// Path up.
    Connected,
    /// Path lost, may come back.
    Disconnected,
    /// Terminal failure.
    Failed,
    /// Closed.
    Closed,
}

/// What the driver must do after feeding an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleAction {
    /// A disconnect grace period started (informational: the machine owns the timer).
    GraceStarted,
    /// Create an ICE-restart offer, reset "remote set", drop buffered candidates,
    /// send it as `sdp_offer`; report failure with [`Lifecycle::handle_restart_failed`].
    IceRestart,
    /// The answer watchdog was armed (informational).
    WatchdogArmed,
    /// Run cleanup for this peer. Emitted at most once per machine.
    Cleanup,
}

#[derive(Debug, Clone, Copy)]
enum Timer {
    /// Grace timer; `wall_start` is the wall-clock time of the disconnect, `rearmed`
    /// whether the half-grace rule already re-armed it once.
    Grace {
        deadline: Instant,
        wall_start: SystemTime,
        rearmed: bool,
    },
    /// Answer watchdog after an ICE restart.
    Watchdog { deadline: Instant },
}

/// Lifecycle timers of one peer.
///
/// Inputs: [`handle_state`](Self::handle_state) for every peer-connection state
/// change, [`handle_timeout`](Self::handle_timeout) when
/// [`poll_timeout`](Self::poll_timeout) is reached (early calls are harmless),
/// [`handle_restart_failed`](Self::handle_restart_failed) when an ICE restart could
/// not be sent, [`handle_closed`](Self::handle_closed) when the peer was closed from
/// outside. Every input returns the actions to run, in order.
///
/// Invariant: [`LifecycleAction::Cleanup`] is returned at most once; after it (or
/// after `handle_closed`) the machine is finished and returns nothing, with no timer.
#[derive(Debug)]
pub struct Lifecycle {
    state: LinkState,
    timer: Option<Timer>,
    finished: bool,
    grace: Duration,
    watchdog: Duration,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new(DISCONNECT_GRACE, ANSWER_WATCHDOG)
    }
}

impl Lifecycle {
    /// A machine with the given grace and watchdog durations.
    pub fn new(grace: Duration, watchdog: Duration) -> Self {
        Self {
            state: LinkState::New,
            timer: None,
            finished: false,
            grace,
            watchdog,
        }
    }

    /// Last state fed in.
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// True once cleanup was emitted or the peer was closed.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Next instant at which [`handle_timeout`](Self::handle_timeout) must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.timer? {
            Timer::Grace { deadline, .. } | Timer::Watchdog { deadline } => Some(deadline),
        }
    }

    /// A peer-connection state change at `now` (monotonic) / `wall` (wall clock).
    pub fn handle_state(
        &mut self,
        now: Instant,
        wall: SystemTime,
        state: LinkState,
    ) -> Vec<LifecycleAction> {
        if self.finished {
            return Vec::new();
        }
        self.state = state;
        match state {
            LinkState::Connected => {
                self.timer = None;
                Vec::new()
            }
            LinkState::Disconnected => {
                if self.timer.is_some() {
                    // A grace or watchdog timer already runs; it decides.
                    return Vec::new();
                }
                self.timer = Some(Timer::Grace {
                    deadline: now + self.grace,
                    wall_start: wall,
                    rearmed: false,
                });
                vec![LifecycleAction::GraceStarted]
            }
            LinkState::Failed | LinkState::Closed => self.finish_with_cleanup(),
            LinkState::New | LinkState::Connecting => Vec::new(),
        }
    }

    /// Timer expiry check at `now` / `wall`.
    pub fn handle_timeout(&mut self, now: Instant, wall: SystemTime) -> Vec<LifecycleAction> {
        if self.finished {
            return Vec::new();
        }
        let Some(timer) = self.timer else {
            return Vec::new();
        };
        match timer {
            Timer::Grace {
                deadline,
                wall_start,
                rearmed,
            } => {
                if now < deadline {
                    return Vec::new();
                }
                if self.state != LinkState::Disconnected {
                    self.timer = None;
                    return Vec::new();
                }
                // A clock going backwards counts as "no time elapsed".
                let elapsed = wall.duration_since(wall_start).unwrap_or(Duration::ZERO);
                if elapsed < self.grace / 2 && !rearmed {
                    // The monotonic timer fired early relative to wall time (system
                    // sleep): wait for the rest. Re-armed once only so a clock that
                    // keeps jumping cannot postpone the restart forever.
                    self.timer = Some(Timer::Grace {
                        deadline: now + (self.grace - elapsed),
                        wall_start,
                        rearmed: true,
                    });
                    return Vec::new();
                }
                self.timer = Some(Timer::Watchdog {
                    deadline: now + self.watchdog,
                });
                vec![LifecycleAction::IceRestart, LifecycleAction::WatchdogArmed]
            }
            Timer::Watchdog { deadline } => {
                if now < deadline {
                    return Vec::new();
                }
                if self.state == LinkState::Connected {
                    self.timer = None;
                    return Vec::new();
                }
                self.finish_with_cleanup()
            }
        }
    }

    /// The ICE-restart offer could not be created or sent.
    pub fn handle_restart_failed(&mut self) -> Vec<LifecycleAction> {
        if self.finished {
            return Vec::new();
        }
        self.finish_with_cleanup()
    }

    /// The peer was closed from outside (close_peer, replacement): stop all timers,
    /// emit nothing more.
    pub fn handle_closed(&mut self) {
        self.finished = true;
        self.timer = None;
    }

    fn finish_with_cleanup(&mut self) -> Vec<LifecycleAction> {
        self.finished = true;
        self.timer = None;
        vec![LifecycleAction::Cleanup]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleAction::*;
    use LinkState::*;

    struct Clock {
        now: Instant,
        wall: SystemTime,
    }

    impl Clock {
        fn new() -> Self {
            Self {
                now: Instant::now(),
                wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            }
        }
        fn advance(&mut self, d: Duration) {
            self.now += d;
            self.wall += d;
        }
    }

    fn connected(m: &mut Lifecycle, c: &Clock) {
        assert!(m.handle_state(c.now, c.wall, Connecting).is_empty());
        assert!(m.handle_state(c.now, c.wall, Connected).is_empty());
        assert_eq!(m.poll_timeout(), None);
    }

    #[test]
    fn disconnect_starts_10s_grace_then_ice_restart_and_20s_watchdog() {
        let mut c = Clock::new();
        let mut m = Lifecycle::default();
        connected(&mut m, &c);
        assert_eq!(
            m.handle_state(c.now, c.wall, Disconnected),
            vec![GraceStarted]
        );
        assert_eq!(m.poll_timeout(), Some(c.now + Duration::from_secs(10)));
        c.advance(Duration::from_secs(9));
        assert!(
            m.handle_timeout(c.now, c.wall).is_empty(),
            "early call is harmless"
        );
        c.advance(Duration::from_secs(1));
        assert_eq!(
            m.handle_timeout(c.now, c.wall),
            vec![IceRestart, WatchdogArmed]
        );
        assert_eq!(m.poll_timeout(), Some(c.now + Duration::from_secs(20)));
    }

    #[test]
    fn reconnect_within_grace_cancels_timer() {
        let mut c = Clock::new();
        let mut m = Lifecycle::default();
        connected(&mut m, &c);
        m.handle_state(c.now, c.wall, Disconnected);
        c.advance(Duration::from_secs(3));
        assert!(m.handle_state(c.now, c.wall, Connected).is_empty());
        assert_eq!(m.poll_timeout(), None);
        c.advance(Duration::from_secs(30));
        assert!(m.handle_timeout(c.now, c.wall).is_empty());
        assert!(!m.is_finished());
    }

    #[test]
    fn repeated_disconnected_does_not_restart_grace() {
        let mut c = Clock::new();
        let mut m = Lifecycle::default();
        connected(&mut m, &c);
        m.handle_state(c.now, c.wall, Disconnected);
        let first = m.poll_timeout();
        c.advance(Duration::from_secs(4));
        assert!(m.handle_state(c.now, c.wall, Disconnected).is_empty());
        assert_eq!(m.poll_timeout(), first);
    }

    #[test]
    fn half_grace_rule_rearms_once_when_wall_clock_lags() {
        let mut c = Clock::new();
        let mut m = Lifecycle::default();
        connected(&mut m, &c);
        m.handle_state(c.now, c.wall, Disconnected);
        // Monotonic time reaches the deadline but the wall clock says only 2 s passed.
        c.now += Duration::from_secs(10);
        c.wall += Duration::from_secs(2);
        assert!(m.handle_timeout(c.now, c.wall).is_empty());
        assert_eq!(m.poll_timeout(), Some(c.now + Duration::from_secs(8)));
        // Second firing restarts even if the wall clock still lags (re-armed once only).
        c.now += Duration::from_secs(8);
        assert_eq!(
            m.handle_timeout(c.now, c.wall),
            vec![IceRestart, WatchdogArmed]
        );
    }

    #[test]
    fn half_grace_rule_restarts_when_at_least_half_elapsed() {
        let mut c = Clock::new();
        let mut m = Lifecycle::default();
        connected(&mut m, &c);
        m.handle_state(c.now, c.wall, Disconnected);
        c.now += Duration::from_secs(10);
        c.wall += Duration::from_secs(5);
        assert_eq!(
            m.handle_timeout(c.now, c.wall),
            vec![IceRestart, WatchdogArmed]
        );
    }

    #[test]
    fn wall_clock_backwards_counts_as_no_elapsed_time() {
        let mut c = Clock::new();
        let mut m = Lifecycle::default();
        connected(&mut m, &c);
        m.handle_state(c.now, c.wall, Disconnected);
        c.now += Duration::from_secs(10);
        c.wall -= Duration::from_secs(100);
        assert!(m.handle_timeout(c.now, c.wall).is_empty());
        assert_eq!(m.poll_timeout(), Some(c.now + Duration::from_secs(10)));
    }

    #[test]
    fn grace_expiry_when_no_longer_disconnected_does_nothing() {
        let mut c = Clock::new();
        let mut m = Lifecycle::default();
        connected(&mut m, &c);
        m.handle_state(c.now, c.wall, Disconnected);
        m.handle_state(c.now, c.wall, Connecting);
        c.advance(Duration::from_secs(10));
        assert!(m.handle_timeout(c.now, c.wall).is_empty());
        assert_eq!(m.poll_timeout(), None);
    }

    #[test]
    fn watchdog_cleans_up_when_not_reconnected() {
        let mut c = Clock::new();
        let mut m = Lifecycle::default();
        connected(&mut m, &c);
        m.handle_state(c.now, c.wall, Disconnected);
        c.advance(Duration::from_secs(10));
        m.handle_timeout(c.now, c.wall);
        // Disconnected again during the restart: the watchdog keeps running.
        assert!(m.handle_state(c.now, c.wall, Disconnected).is_empty());
        c.advance(Duration::from_secs(20));
        assert_eq!(m.handle_timeout(c.now, c.wall), vec![Cleanup]);
        assert!(m.is_finished());
        assert_eq!(m.poll_timeout(), None);
    }

    #[test]
    fn connected_cancels_watchdog() {
        let mut c = Clock::new();
        let mut m = Lifecycle::default();
        connected(&mut m, &c);
        m.handle_state(c.now, c.wall, Disconnected);
        c.advance(Duration::from_secs(10));
        m.handle_timeout(c.now, c.wall);
        c.advance(Duration::from_secs(2));
        assert!(m.handle_state(c.now, c.wall, Connected).is_empty());
        assert_eq!(m.poll_timeout(), None);
        c.advance(Duration::from_secs(60));
        assert!(m.handle_timeout(c.now, c.wall).is_empty());
        // The next loss starts a fresh grace period.
        assert_eq!(
            m.handle_state(c.now, c.wall, Disconnected),
            vec![GraceStarted]
        );
    }

    #[test]
    fn restart_failure_cleans_up() {
        let mut c = Clock::new();
        let mut m = Lifecycle::default();
        connected(&mut m, &c);
        m.handle_state(c.now, c.wall, Disconnected);
        c.advance(Duration::from_secs(10));
        m.handle_timeout(c.now, c.wall);
        assert_eq!(m.handle_restart_failed(), vec![Cleanup]);
        assert!(m.handle_restart_failed().is_empty());
    }

    #[test]
    fn failed_or_closed_cleans_up_exactly_once() {
        let c = Clock::new();
        for terminal in [Failed, Closed] {
            let mut m = Lifecycle::default();
            connected(&mut m, &c);
            m.handle_state(c.now, c.wall, Disconnected);
            assert_eq!(m.handle_state(c.now, c.wall, terminal), vec![Cleanup]);
            assert_eq!(m.poll_timeout(), None, "timer cancelled");
            assert!(m.handle_state(c.now, c.wall, Failed).is_empty());
            assert!(m.handle_state(c.now, c.wall, Closed).is_empty());
            assert!(m.handle_restart_failed().is_empty());
            assert!(m.handle_timeout(c.now + ANSWER_WATCHDOG, c.wall).is_empty());
        }
    }

    #[test]
    fn closed_from_outside_emits_nothing() {
        let c = Clock::new();
        let mut m = Lifecycle::default();
        connected(&mut m, &c);
        m.handle_state(c.now, c.wall, Disconnected);
        m.handle_closed();
        assert_eq!(m.poll_timeout(), None);
        assert!(m.handle_state(c.now, c.wall, Failed).is_empty());
    }
}
