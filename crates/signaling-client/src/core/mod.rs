//! The sans-IO signaling state machine: every timing rule of the host's
//! signaling link (spec signaling.md §7) with no sockets, tasks or clocks.

mod backoff;
mod clock;
mod config;
mod inbound;
mod refresh;
#[cfg(test)]
mod tests;
mod timer;
mod types;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use backoff::Wait;
use clock::ClockWatch;
pub use config::*;
pub use inbound::{auth_signal, classify};
use refresh::CachedToken;
use timer::{Timer, TimerTable};
pub use types::*;

/// The signaling link's state machine.
///
/// **Inputs** (`handle_*`): `handle_start`, `handle_token_obtained` /
/// `handle_token_failed`, `handle_connected` / `handle_connect_failed`,
/// `handle_message` (every frame read, sorted by [`classify`]),
/// `handle_outgoing` (a message the application sends), `handle_pong`, `handle_closed` (read or
/// write error, close frame), `handle_timeout`, `handle_clock`,
/// `handle_activity`, `handle_suspend` / `handle_resume`, `handle_shutdown`.
/// Each takes the monotonic `now`; those that may start an attempt also take
/// the wall clock `unix` (seconds), used for JWT expiry and to notice host
/// sleep (the wall clock ran ahead of the monotonic one, see
/// [`handle_clock`](Core::handle_clock)).
///
/// **JWT refresh** keeps the socket: when the token-check timer finds the JWT
/// within its refresh margin the core asks for `FetchToken`, and when the
/// token arrives it sends `SendAuth` on the open link (state stays
/// `Connected`, so `send` keeps working). The server's `auth` ok ends it; an
/// error, no reply within the auth timeout or the socket closing instead
/// falls back to reopening the link with the new token, and later refreshes
/// reopen straight away until a session ends for another reason (a server
/// restart may have brought one that re-authenticates in place).
///
/// **Outputs**: [`poll_action`](Core::poll_action) until `None`, then
/// [`poll_timeout`](Core::poll_timeout), the one deadline to sleep until.
///
/// **Invariant (drain after every input)**: after each `handle_*` call the
/// driver drains `poll_action` completely, performs the actions in order, and
/// re-reads `poll_timeout`. Calling `handle_timeout` early is harmless. Time
/// must not go backwards. At most three actions are queued per input.
#[derive(Debug)]
pub struct Core<M, E> {
    config: CoreConfig,
    state: ConnectionState,
    timers: TimerTable,
    actions: VecDeque<Action<M, E>>,
    /// The length of the next reconnect wait.
    backoff: Duration,
    wait: Option<Wait>,
    /// When the current run of failed attempts began.
    first_failure: Option<Instant>,
    token: Option<CachedToken>,
    /// A token exchange is running (at most one at a time).
    fetch_in_flight: bool,
    /// The running token exchange is a refresh of a connected session.
    refreshing: bool,
    /// `auth` with a refreshed JWT was sent on the open link; its reply is due.
    reauth_pending: bool,
    /// This server refused an in-place `auth`: refresh by reopening the link.
    reauth_refused: bool,
    refresh_retry: Duration,
    clocks: ClockWatch,
}

impl<M, E> Core<M, E> {
    /// A core in [`ConnectionState::Idle`]; `config` is normalized first.
    pub fn new(config: CoreConfig) -> Self {
        let config = config.normalized();
        Core {
            backoff: config.initial_backoff,
            refresh_retry: config.refresh_retry_initial,
            config,
            state: ConnectionState::Idle,
            timers: TimerTable::default(),
            actions: VecDeque::new(),
            wait: None,
            first_failure: None,
            token: None,
            fetch_in_flight: false,
            refreshing: false,
            reauth_pending: false,
            reauth_refused: false,
            clocks: ClockWatch::default(),
        }
    }

    /// The normalized knobs in force.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Where the link is.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// The cached JWT, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.token.as_str())
    }

    /// The length the next reconnect wait would have.
    pub fn next_backoff(&self) -> Duration {
        self.backoff
    }

    /// The next action for the driver, in order.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action<M, E>> {
        self.actions.pop_front()
    }

    /// The earliest deadline; the driver calls `handle_timeout` when it passes.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    fn is_done(&self) -> bool {
        matches!(
            self.state,
            ConnectionState::Stopped | ConnectionState::Closed
        )
    }

    fn link_open(&self) -> bool {
        matches!(
            self.state,
            ConnectionState::Connecting
                | ConnectionState::Authenticating
                | ConnectionState::Connected
        )
    }

    /// Starts the first attempt.
    pub fn handle_start(&mut self, now: Instant, unix: i64) {
        self.clocks
            .observe(now, unix, self.config.sleep_jump_threshold);
        if self.state == ConnectionState::Idle {
            self.begin_attempt(now, unix);
        }
    }

    /// The WebSocket upgrade succeeded: authenticate.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.state != ConnectionState::Connecting {
            return;
        }
        let Some(token) = self.token.as_ref().map(|t| t.token.clone()) else {
            // Unreachable by construction (Connect is only issued with a
            // token); treat as a failed attempt rather than panic.
            self.actions.push_back(Action::Close {
                reason: CloseReason::AuthRejected,
            });
            self.attempt_failed(now);
            return;
        };
        self.state = ConnectionState::Authenticating;
        self.timers
            .set(Timer::AuthTimeout, now + self.config.auth_timeout);
        self.actions.push_back(Action::SendAuth { token });
    }

    /// Dialing or upgrading failed.
    pub fn handle_connect_failed(&mut self, now: Instant, failure: Failure<E>) {
        if self.state != ConnectionState::Connecting {
            return;
        }
        match failure {
            Failure::Permanent(e) => self.stop(e),
            Failure::Transient(_) => self.attempt_failed(now),
        }
    }

    /// A frame was read from the link.
    pub fn handle_message(&mut self, now: Instant, inbound: Inbound<M>) {
        match self.state {
            ConnectionState::Authenticating => match inbound {
                Inbound::AuthOk => self.authenticated(now),
                Inbound::Error(_) => {
                    // The JWT may be the cause: exchange a new one next time.
                    self.token = None;
                    self.stop_link_timers();
                    self.actions.push_back(Action::Close {
                        reason: CloseReason::AuthRejected,
                    });
                    self.attempt_failed(now);
                }
                // Nothing reaches the application before authentication.
                Inbound::Message(_) | Inbound::Ignored => {}
            },
            ConnectionState::Connected => {
                self.arm_read_deadline(now);
                match inbound {
                    Inbound::Message(m) => self.actions.push_back(Action::Deliver(m)),
                    Inbound::AuthOk if self.reauth_pending => {
                        self.reauth_pending = false;
                        self.timers.stop(Timer::AuthTimeout);
                    }
                    // An older server refuses a second `auth`.
                    Inbound::Error(_) if self.reauth_pending => self.reauth_refused(),
                    Inbound::AuthOk | Inbound::Error(_) | Inbound::Ignored => {}
                }
            }
            _ => {}
        }
    }

    /// The application asks to send `msg`: [`Action::Send`] while the link is
    /// authenticated, [`Action::Discard`] otherwise (the handle refuses sends
    /// while not connected, so only a message queued just before the link
    /// went down ends here).
    pub fn handle_outgoing(&mut self, msg: M) {
        if self.state == ConnectionState::Connected {
            self.actions.push_back(Action::Send(msg));
        } else {
            self.actions.push_back(Action::Discard(msg));
        }
    }

    /// A WS pong arrived: the link is alive.
    pub fn handle_pong(&mut self, now: Instant) {
        if self.state == ConnectionState::Connected {
            self.arm_read_deadline(now);
        }
    }

    /// The link ended (read error, close frame, failed write).
    pub fn handle_closed(&mut self, now: Instant) {
        match self.state {
            ConnectionState::Connecting | ConnectionState::Authenticating => {
                self.stop_link_timers();
                self.attempt_failed(now);
            }
            ConnectionState::Connected if self.reauth_pending => {
                // The server closed the socket on the second `auth` (or it
                // just broke): authenticate a new one with the new token now.
                self.reauth_refused = true;
                self.stop_link_timers();
                self.state = ConnectionState::Connecting;
                self.actions.push_back(Action::Connect);
            }
            ConnectionState::Connected => {
                self.stop_link_timers();
                self.session_ended(now);
            }
            _ => {}
        }
    }

    /// Fires every deadline that is due at `now` (after checking the clocks
    /// like [`handle_clock`](Core::handle_clock)).
    pub fn handle_timeout(&mut self, now: Instant, unix: i64) {
        self.handle_clock(now, unix);
        for timer in Timer::ALL {
            if self.timers.is_expired(timer, now) {
                self.timers.stop(timer);
                self.on_timer(timer, now, unix);
            }
        }
    }

    /// Something happened on the host that makes a link worth having now:
    /// wakes a dormant or suspended client (resetting backoff and failure
    /// time) and cuts a backoff wait short.
    pub fn handle_activity(&mut self, now: Instant, unix: i64) {
        self.handle_clock(now, unix);
        self.wake(now, unix);
    }

    fn wake(&mut self, now: Instant, unix: i64) {
        match self.state {
            ConnectionState::Backoff { .. } => self.end_wait(now, unix),
            ConnectionState::Dormant | ConnectionState::Suspended => {
                self.backoff = self.config.initial_backoff;
                self.first_failure = None;
                self.wait = None;
                self.begin_attempt(now, unix);
            }
            _ => {}
        }
    }

    /// The host is about to sleep: close the link and pause until resume.
    pub fn handle_suspend(&mut self, _now: Instant) {
        if self.is_done() {
            return;
        }
        if self.link_open() {
            self.actions.push_back(Action::Close {
                reason: CloseReason::Suspend,
            });
        }
        self.timers.stop_all();
        self.wait = None;
        self.refreshing = false;
        self.reauth_pending = false;
        self.state = ConnectionState::Suspended;
    }

    /// The host woke up; same as an activity signal.
    pub fn handle_resume(&mut self, now: Instant, unix: i64) {
        self.handle_activity(now, unix);
    }

    /// Shut down: close the link; the core accepts no more work.
    pub fn handle_shutdown(&mut self) {
        if self.is_done() {
            return;
        }
        if self.link_open() {
            self.actions.push_back(Action::Close {
                reason: CloseReason::Shutdown,
            });
        }
        self.timers.stop_all();
        self.state = ConnectionState::Closed;
    }

    fn on_timer(&mut self, timer: Timer, now: Instant, unix: i64) {
        match (timer, self.state) {
            (Timer::AuthTimeout, ConnectionState::Connected) if self.reauth_pending => {
                self.reauth_refused();
            }
            (Timer::AuthTimeout, ConnectionState::Authenticating) => {
                self.token = None;
                self.stop_link_timers();
                self.actions.push_back(Action::Close {
                    reason: CloseReason::AuthTimeout,
                });
                self.attempt_failed(now);
            }
            (Timer::ReadDeadline, ConnectionState::Connected) => {
                self.stop_link_timers();
                self.actions.push_back(Action::Close {
                    reason: CloseReason::ReadDeadline,
                });
                self.session_ended(now);
            }
            (Timer::Presence, ConnectionState::Connected) => {
                self.actions.push_back(Action::SendPresence);
                self.timers
                    .set(Timer::Presence, now + self.config.presence_interval);
            }
            (Timer::TokenCheck, ConnectionState::Connected) => {
                self.timers
                    .set(Timer::TokenCheck, now + self.config.token_check_interval);
                if !self.fetch_in_flight && self.token_expiring(unix) {
                    self.fetch_in_flight = true;
                    self.refreshing = true;
                    self.actions.push_back(Action::FetchToken);
                }
            }
            (Timer::Backoff, ConnectionState::Backoff { .. }) => self.end_wait(now, unix),
            _ => {}
        }
    }

    fn begin_attempt(&mut self, _now: Instant, unix: i64) {
        if self.fetch_in_flight {
            // A refresh started by the last session is still running: its
            // result will carry this attempt on.
            self.state = ConnectionState::FetchingToken;
        } else if self.token_expiring(unix) {
            self.state = ConnectionState::FetchingToken;
            self.fetch_in_flight = true;
            self.actions.push_back(Action::FetchToken);
        } else {
            self.state = ConnectionState::Connecting;
            self.actions.push_back(Action::Connect);
        }
    }

    fn authenticated(&mut self, now: Instant) {
        self.state = ConnectionState::Connected;
        self.backoff = self.config.initial_backoff;
        self.first_failure = None;
        self.wait = None;
        self.timers.stop(Timer::AuthTimeout);
        self.timers
            .set(Timer::Presence, now + self.config.presence_interval);
        self.timers
            .set(Timer::TokenCheck, now + self.config.token_check_interval);
        self.arm_read_deadline(now);
    }

    fn arm_read_deadline(&mut self, now: Instant) {
        self.timers
            .set(Timer::ReadDeadline, now + self.config.read_deadline());
    }

    fn stop_link_timers(&mut self) {
        for t in Timer::LINK {
            self.timers.stop(t);
        }
        self.refreshing = false;
        self.reauth_pending = false;
    }

    fn stop(&mut self, error: E) {
        if self.link_open() {
            self.actions.push_back(Action::Close {
                reason: CloseReason::Stopped,
            });
        }
        self.timers.stop_all();
        self.wait = None;
        self.state = ConnectionState::Stopped;
        self.actions.push_back(Action::Stop(error));
    }
}
