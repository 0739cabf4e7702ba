//! JWT handling of the core: caching with its refresh point, the refresh of
//! a connected session by a second `auth` on the open socket, and the
//! fall-back to reopening the link when the server refuses that.

use std::time::Instant;

use super::timer::Timer;
use super::{Action, CloseReason, ConnectionState, Core, Failure};

#[derive(Debug, Clone)]
pub(super) struct CachedToken {
    pub(super) token: String,
    /// Wall-clock second from which the token counts as expiring.
    pub(super) refresh_at: i64,
}

impl<M, E> Core<M, E> {
    /// `auth` with a refreshed JWT was sent on the open link and its reply
    /// has not arrived yet (an error read now is the server refusing it).
    pub fn reauth_pending(&self) -> bool {
        self.reauth_pending
    }

    /// The token exchange succeeded. `exp_unix` is the JWT's `exp` read
    /// without verification; `None` (unreadable) assumes `unix + 1 h`.
    pub fn handle_token_obtained(
        &mut self,
        now: Instant,
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
        self.token = Some(CachedToken {
            token: token.clone(),
            refresh_at,
        });
        self.refresh_retry = self.config.refresh_retry_initial;
        match self.state {
            ConnectionState::FetchingToken => {
                self.state = ConnectionState::Connecting;
                self.actions.push_back(Action::Connect);
            }
            ConnectionState::Connected if self.refreshing => {
                self.refreshing = false;
                if self.reauth_refused {
                    self.reopen(CloseReason::TokenRefresh);
                } else {
                    // Re-authenticate the open socket: no presence churn on
                    // the server, no gap for `send`.
                    self.reauth_pending = true;
                    self.timers
                        .set(Timer::AuthTimeout, now + self.config.auth_timeout);
                    self.actions.push_back(Action::SendAuth { token });
                }
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

    pub(super) fn token_expiring(&self, unix: i64) -> bool {
        self.token.as_ref().is_none_or(|t| unix >= t.refresh_at)
    }

    /// The in-place `auth` failed: remember it, and reopen the link to
    /// authenticate with the new token (cached already).
    pub(super) fn reauth_refused(&mut self) {
        self.reauth_refused = true;
        self.reopen(CloseReason::ReauthRefused);
    }

    /// Closes the authenticated link and dials a new one at once (a planned
    /// step, not a failure: no backoff wait).
    fn reopen(&mut self, reason: CloseReason) {
        self.actions.push_back(Action::Close { reason });
        self.stop_link_timers();
        self.state = ConnectionState::Connecting;
        self.actions.push_back(Action::Connect);
    }
}
