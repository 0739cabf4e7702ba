//! The fast-channel part of [`PeerCore`](super::PeerCore) (docs/stream-v2.md
//! §4): which DataChannel the phone opens is accepted as the peer's one fast
//! channel, and which of its messages go on to the handler.
//!
//! The phone opens `terminal-fast` (unordered, no retransmissions) after it
//! verified `auth_ok`. The host accepts exactly one, and only once the
//! `terminal` channel passed channel authentication: anything earlier, a
//! second one, or another label is closed unread. On the accepted channel only
//! `input` copies with an `offset` and at most [`MAX_FAST_COPY`] bytes go on;
//! everything else is dropped without an answer, and nothing on it ever
//! closes the peer.

use terminal_protocol::{FAST_CHANNEL_LABEL, MAX_FAST_COPY, MAX_MESSAGE_SIZE, Request};

/// What to do with a DataChannel the phone opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteChannel {
    /// Keep it as this peer's fast channel and read it.
    Fast,
    /// Close it without reading it.
    Refuse(Refusal),
}

/// Why a channel the phone opened is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its label is not [`FAST_CHANNEL_LABEL`].
    UnknownLabel,
    /// The `terminal` channel has not passed channel authentication (yet).
    NotAuthenticated,
    /// A fast channel was already accepted on this peer (one per peer, even
    /// after it closed).
    SecondFast,
    /// The peer is closing.
    PeerClosed,
}

/// Why a message on the fast channel is dropped (for the debug log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastDrop {
    /// No fast channel was accepted (cannot happen in the driver: refused
    /// channels are never read).
    NoFastChannel,
    /// Larger than the 1 MiB message limit.
    TooLarge,
    /// Not a decodable request.
    Undecodable,
    /// A request other than `input`.
    NotInput,
    /// An `input` without `offset`: it could not be told apart from its
    /// reliable copy, so it would be applied twice.
    NoOffset,
    /// An `input` copy over [`MAX_FAST_COPY`] bytes.
    CopyTooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// None accepted yet.
    None,
    /// Accepted and open.
    Open,
    /// Accepted, then closed: no other one is accepted on this peer.
    Gone,
}

/// The fast-channel gate of one peer.
#[derive(Debug)]
pub struct FastGate {
    state: State,
}

impl Default for FastGate {
    fn default() -> Self {
        Self { state: State::None }
    }
}

impl FastGate {
    /// True while an accepted fast channel is open.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// The phone opened a channel labelled `label`; `authenticated` is the
    /// `terminal` channel's channel-authentication state.
    pub fn handle_channel(&mut self, label: &str, authenticated: bool) -> RemoteChannel {
        if label != FAST_CHANNEL_LABEL {
            return RemoteChannel::Refuse(Refusal::UnknownLabel);
        }
        if !authenticated {
            return RemoteChannel::Refuse(Refusal::NotAuthenticated);
        }
        if self.state != State::None {
            return RemoteChannel::Refuse(Refusal::SecondFast);
        }
        self.state = State::Open;
        RemoteChannel::Fast
    }

    /// One message on the accepted fast channel: the `input` copy to hand on.
    pub fn handle_message(&self, bytes: &[u8]) -> Result<Request, FastDrop> {
        if self.state != State::Open {
            return Err(FastDrop::NoFastChannel);
        }
        if bytes.len() > MAX_MESSAGE_SIZE {
            return Err(FastDrop::TooLarge);
        }
        match Request::decode(bytes) {
            Ok(Request::Input { offset: None, .. }) => Err(FastDrop::NoOffset),
            Ok(Request::Input { data, .. }) if data.len() > MAX_FAST_COPY => {
                Err(FastDrop::CopyTooLarge)
            }
            Ok(req @ Request::Input { .. }) => Ok(req),
            Ok(_) => Err(FastDrop::NotInput),
            Err(_) => Err(FastDrop::Undecodable),
        }
    }

    /// The accepted fast channel closed (the peer stays).
    pub fn handle_closed(&mut self) {
        if self.state == State::Open {
            self.state = State::Gone;
        }
    }
}
