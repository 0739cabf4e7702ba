//! The vocabulary of [`PeerCore`](super::PeerCore): its durations, the link
//! states it reads, the actions it asks for and the reasons it closes with.

use std::time::Duration;

use rtc_transport::{Candidate, PeerState};
use signaling_proto::SignalingMessage;
use terminal_protocol::{AUTH_TIMEOUT, Event, Request};

use super::auth_gate::AuthFailure;

/// How long a disconnected peer may stay disconnected before the host restarts ICE.
pub const DISCONNECT_GRACE: Duration = Duration::from_secs(10);
/// How long the host waits for the peer to reconnect after an ICE-restart offer.
pub const ANSWER_WATCHDOG: Duration = Duration::from_secs(20);
/// An authenticated peer whose last `ping` (or whose authentication, if it never
/// pinged) is older than this is closed (peer-lifecycle.md §7).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A peer whose DataChannel has not opened this long after it was created is closed.
pub const CHANNEL_OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The durations of a core's rules; the defaults are the spec's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreConfig {
    /// Deadline of the phone's proof after the challenge.
    pub auth_timeout: Duration,
    /// Disconnect grace.
    pub grace: Duration,
    /// ICE-restart answer watchdog.
    pub watchdog: Duration,
    /// Ping idle limit.
    pub idle: Duration,
    /// Channel-open limit.
    pub channel_open: Duration,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            auth_timeout: AUTH_TIMEOUT,
            grace: DISCONNECT_GRACE,
            watchdog: ANSWER_WATCHDOG,
            idle: IDLE_TIMEOUT,
            channel_open: CHANNEL_OPEN_TIMEOUT,
        }
    }
}

/// Peer-connection state as the core sees it.
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

impl LinkState {
    /// The W3C name of the state (`new`, `connecting`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Failed => "failed",
            Self::Closed => "closed",
        }
    }
}

impl From<PeerState> for LinkState {
    fn from(s: PeerState) -> Self {
        match s {
            PeerState::New => Self::New,
            PeerState::Connecting => Self::Connecting,
            PeerState::Connected => Self::Connected,
            PeerState::Disconnected => Self::Disconnected,
            PeerState::Failed => Self::Failed,
            PeerState::Closed => Self::Closed,
        }
    }
}

/// Why a peer was closed; each peer has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer connection, channel or first offer could not be built or sent.
    SetupFailed,
    /// The remote answer could not be applied.
    AnswerFailed,
    /// The ICE-restart offer could not be created or sent.
    RestartFailed,
    /// Not connected again 20 s after an ICE restart.
    Watchdog,
    /// The peer connection reported `failed`.
    TransportFailed,
    /// The peer connection reported `closed`.
    TransportClosed,
    /// The DataChannel closed.
    ChannelClosed,
    /// The DataChannel never opened.
    ChannelNeverOpened,
    /// Channel authentication failed (no `error` is sent).
    Auth(AuthFailure),
    /// The challenge or `auth_ok` could not be sent.
    SendFailed,
    /// No `ping` for 60 s.
    Idle,
    /// Authenticated 60 s ago and never pinged.
    NeverPinged,
    /// Closed by the host: `close_peer`, `close_all`, or replaced by a reconnect.
    Local,
}

/// What the driver must do, in order. Drain with [`PeerCore::poll_action`](super::PeerCore::poll_action).
#[derive(Debug)]
pub enum Action {
    /// Send this signaling message (unless the peer was silenced).
    Signal(Box<SignalingMessage>),
    /// Create an offer (with ICE restart when set), set it as the local
    /// description and send it as `sdp_offer`; report with
    /// [`PeerCore::handle_offer_sent`](super::PeerCore::handle_offer_sent).
    SendOffer {
        /// An ICE-restart offer.
        ice_restart: bool,
    },
    /// Set this remote answer; report with [`PeerCore::handle_answer_applied`](super::PeerCore::handle_answer_applied).
    ApplyAnswer(String),
    /// Add this remote ICE candidate (failures are only logged).
    AddCandidate(Candidate),
    /// Send this event on the channel now, ahead of the handler's queue.
    Send {
        /// The event (`auth_challenge`, `auth_ok`, `pong`).
        event: Event,
        /// A failure must be reported with [`PeerCore::handle_send_failed`](super::PeerCore::handle_send_failed).
        required: bool,
    },
    /// Queue this authenticated request for the handler, in arrival order.
    Deliver(Request),
    /// Queue this reply (an `error`), in order with the handler's own replies.
    Reply(Event),
    /// The phone proved the key: mark the peer authenticated; the next action
    /// sends `auth_ok`, and requests may follow.
    Authenticated,
    /// Close the peer. Emitted exactly once; nothing follows it.
    Close(CloseReason),
}
