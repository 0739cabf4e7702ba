//! The sans-IO signaling state machine: every timing rule of the host's
//! signaling link (spec signaling.md §7) with no sockets, tasks or clocks.

mod config;
#[cfg(test)]
mod tests;
mod timer;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use config::*;
use timer::{Timer, TimerTable};

/// Whether a failure may heal by retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure<E> {
    /// Retry after the backoff (network errors, 5xx, `request expired`, ...).
    Transient(E),
    /// Stop retrying and surface the error (signature rejected, identity unknown).
    Permanent(E),
}

/// One frame read from the WebSocket, as far as the core cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<M> {
    /// `{"type":"auth","status":"ok"}`.
    AuthOk,
    /// `{"type":"error","error":...}` (or an `auth` reply that is not ok).
    Error(String),
    /// Any other well-formed message; delivered to the handler once authenticated.
    Message(M),
    /// A frame with nothing for the handler (malformed JSON, binary, WS ping):
    /// it still proves the link is alive.
    Ignored,
}

/// Why the core asks the driver to close the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The server answered `auth` with an error.
    AuthRejected,
    /// No `auth` reply within the auth timeout.
    AuthTimeout,
    /// Nothing was read for `2 × presence + grace`: the link is dead.
    ReadDeadline,
    /// A fresh JWT was obtained; the server has no re-auth message, so the
    /// link is reopened to authenticate with it.
    TokenRefresh,
    /// The host is going to sleep.
    Suspend,
    /// The client is shutting down.
    Shutdown,
    /// A permanent error stops the client.
    Stopped,
}

/// What the core asks its driver to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<M, E> {
    /// Run the challenge → token exchange over HTTP and report the result
    /// with `handle_token_obtained` / `handle_token_failed`.
    FetchToken,
    /// Dial and upgrade the WebSocket (signed), then report
    /// `handle_connected` / `handle_connect_failed`.
    Connect,
    /// Send `{"type":"auth","token":...,"name":...}` on the open link.
    SendAuth {
        /// The JWT to authenticate with.
        token: String,
    },
    /// Send `{"type":"presence"}` followed by a WS ping (5 s write deadline each).
    SendPresence,
    /// Close the link (close 1000, 2 s write deadline) or abandon a dial in progress.
    Close {
        /// Why, for logs.
        reason: CloseReason,
    },
    /// Hand an authenticated, non-error message to the handler.
    Deliver(M),
    /// Continuous failure lasted the dormancy timeout: no more attempts until
    /// an activity signal.
    GoDormant,
    /// A permanent error: the client has stopped. Reported once.
    Stop(E),
}

/// Where the signaling link is, for status reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not started yet.
    Idle,
    /// Exchanging a JWT over HTTP before dialing.
    FetchingToken,
    /// Dialing and upgrading the WebSocket.
    Connecting,
    /// `auth` sent, waiting for the reply.
    Authenticating,
    /// Authenticated: presence running, messages flowing.
    Connected,
    /// Waiting before the next attempt.
    Backoff {
        /// The intended length of this wait.
        wait: Duration,
    },
    /// Stopped retrying after continuous failure; an activity signal wakes it.
    Dormant,
    /// Paused for host sleep until resume.
    Suspended,
    /// Stopped by a permanent error.
    Stopped,
    /// Shut down.
    Closed,
}

impl ConnectionState {
    /// A short lowercase name (`"connected"`, `"backoff"`, ...) for status output.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConnectionState::Idle => "idle",
            ConnectionState::FetchingToken => "fetching-token",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Authenticating => "authenticating",
            ConnectionState::Connected => "connected",
            ConnectionState::Backoff { .. } => "backoff",
            ConnectionState::Dormant => "dormant",
            ConnectionState::Suspended => "suspended",
            ConnectionState::Stopped => "stopped",
            ConnectionState::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    /// Wall-clock second from which the token counts as expiring.
    refresh_at: i64,
}

#[derive(Debug, Clone, Copy)]
struct Wait {
    started: Instant,
    intended: Duration,
}

/// The signaling link's state machine.
///
/// **Inputs** (`handle_*`): `handle_start`, `handle_token_obtained` /
/// `handle_token_failed`, `handle_connected` / `handle_connect_failed`,
/// `handle_message` (every frame read), `handle_pong`, `handle_closed` (read or
/// write error, close frame), `handle_timeout`, `handle_activity`,
/// `handle_suspend` / `handle_resume`, `handle_shutdown`. Each takes the
/// monotonic `now`; those that may start an attempt also take the wall clock
/// `unix` (seconds), used only for JWT expiry.
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
    refresh_retry: Duration,
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
        if self.state == ConnectionState::Idle {
            self.begin_attempt(now, unix);
        }
    }

    /// The token exchange succeeded. `exp_unix` is the JWT's `exp` read
    /// without verification; `None` (unreadable) assumes `unix + 1 h`.
    pub fn handle_token_obtained(
        &mut self,
        _now: Instant,
        unix: i64,
        token: String,
        exp_unix: Option<i64>,
    ) {
        self.fetch_in_flight = false;
        if self.is_done() {
            return;
        }
        let lifetime_secs =
            i64::try_from(self.config.default_token_lifetime.as_secs()).unwrap_or(i64::MAX / 4);
        let exp = exp_unix.unwrap_or(unix.saturating_add(lifetime_secs));
        // Refresh `margin` before exp, but never earlier than half-way through
        // the token's life: a server issuing tokens shorter than twice the
        // margin must not make the client refresh on every check.
        let margin = i64::try_from(self.config.token_refresh_margin.as_secs()).unwrap_or(i64::MAX);
        let half_life = (exp.saturating_sub(unix) / 2).max(0);
        let refresh_at = exp.saturating_sub(margin.min(half_life));
        self.token = Some(CachedToken { token, refresh_at });
        self.refresh_retry = self.config.refresh_retry_initial;
        match self.state {
            ConnectionState::FetchingToken => {
                self.state = ConnectionState::Connecting;
                self.actions.push_back(Action::Connect);
            }
            ConnectionState::Connected if self.refreshing => {
                // No re-auth message exists on the wire: reopen the link so
                // the server holds a session authenticated with the new token.
                self.refreshing = false;
                self.actions.push_back(Action::Close {
                    reason: CloseReason::TokenRefresh,
                });
                self.stop_link_timers();
                self.state = ConnectionState::Connecting;
                self.actions.push_back(Action::Connect);
            }
            _ => {}
        }
    }

    /// The token exchange failed.
    pub fn handle_token_failed(&mut self, now: Instant, failure: Failure<E>) {
        self.fetch_in_flight = false;
        if self.is_done() {
            return;
        }
        let refreshing = std::mem::take(&mut self.refreshing);
        match failure {
            Failure::Permanent(e) => self.stop(e),
            Failure::Transient(_) => match self.state {
                ConnectionState::FetchingToken => self.attempt_failed(now),
                ConnectionState::Connected if refreshing => {
                    // Keep the healthy session; retry the refresh later.
                    self.timers.set(Timer::TokenCheck, now + self.refresh_retry);
                    self.refresh_retry =
                        (self.refresh_retry * 2).min(self.config.refresh_retry_max);
                }
                _ => {}
            },
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
                // Nothing reaches the handler before authentication.
                Inbound::Message(_) | Inbound::Ignored => {}
            },
            ConnectionState::Connected => {
                self.arm_read_deadline(now);
                if let Inbound::Message(m) = inbound {
                    self.actions.push_back(Action::Deliver(m));
                }
            }
            _ => {}
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
            ConnectionState::Connected => {
                self.stop_link_timers();
                self.session_ended(now);
            }
            _ => {}
        }
    }

    /// Fires every deadline that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, unix: i64) {
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

    fn token_expiring(&self, unix: i64) -> bool {
        self.token.as_ref().is_none_or(|t| unix >= t.refresh_at)
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
    }

    /// An attempt ended without authenticating.
    fn attempt_failed(&mut self, now: Instant) {
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
    /// authenticated.
    fn session_ended(&mut self, now: Instant) {
        self.schedule_wait(now);
    }

    fn schedule_wait(&mut self, now: Instant) {
        let wait = self.backoff;
        self.wait = Some(Wait {
            started: now,
            intended: wait,
        });
        self.timers.set(Timer::Backoff, now + wait);
        self.state = ConnectionState::Backoff { wait };
    }

    /// The backoff wait is over (elapsed or cut short by activity).
    fn end_wait(&mut self, now: Instant, unix: i64) {
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
