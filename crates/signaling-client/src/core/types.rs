//! The core's vocabulary: what the driver feeds in ([`Inbound`], [`Failure`])
//! and what it gets back ([`Action`], [`CloseReason`], [`ConnectionState`]).

use std::time::Duration;

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
    /// Any other well-formed message; delivered to the application once
    /// authenticated.
    Message(M),
    /// A frame with nothing for the application (malformed JSON, binary, WS ping):
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
    /// A fresh JWT was obtained but this server refused an earlier `auth` on
    /// the open link, so the link is reopened to authenticate with it.
    TokenRefresh,
    /// The server refused (or did not answer in time) `auth` with the fresh
    /// JWT on the open link: reopen it and authenticate with that token.
    ReauthRefused,
    /// The wall clock jumped past the monotonic one: the host slept, and a
    /// socket that slept with it is presumed dead.
    HostSlept,
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
    /// Send `{"type":"auth","token":...,"name":...}` on the open link: after
    /// `Connect`, or on an authenticated link to re-authenticate it in place
    /// with a refreshed JWT (the reply comes back through `handle_message`).
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
    /// Write this application message on the authenticated link (5 s write
    /// deadline); see [`Core::handle_outgoing`](super::Core::handle_outgoing).
    Send(M),
    /// An application message that found no authenticated link: not written;
    /// the driver logs it as dropped.
    Discard(M),
    /// Hand an authenticated, non-error message to the application.
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
