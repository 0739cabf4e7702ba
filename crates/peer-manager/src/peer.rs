//! One mobile's peer as the handler sees it: send with backpressure, size limit,
//! a non-waiting send of fast copies on the phone's fast channel
//! (docs/stream-v2.md §4), close; plus a mirror of its core's state that the
//! manager reads (written only by the peer's own task).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use rtc_transport::{RtcChannel, RtcError};
use signaling_proto::SignalingMessage;
use terminal_protocol::{DEFAULT_PEER_MAX_MESSAGE, Event, MAX_MESSAGE_SIZE};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::LinkState;
use crate::error::PeerError;

/// Capacity of a peer's signaling inbox (answers + candidates).
pub(crate) const INBOX: usize = 128;

#[derive(Debug)]
struct Status {
    state: LinkState,
    authenticated: bool,
}

/// A WebRTC peer connection to one mobile device.
///
/// Handed to [`ProtocolHandler`](crate::ProtocolHandler) with every request. Each
/// `connect_request` creates a new `Peer`; two `Arc<Peer>` are the same peer only
/// if they point to the same object.
#[derive(Debug)]
pub struct Peer {
    /// The mobile's device id.
    pub device_id: String,
    channel: OnceLock<RtcChannel>,
    /// The fast channel the phone opened after authentication (at most one).
    fast: OnceLock<RtcChannel>,
    cancel: CancellationToken,
    silenced: AtomicBool,
    pub(crate) inbox: mpsc::Sender<SignalingMessage>,
    status: Mutex<Status>,
}

impl Peer {
    pub(crate) fn new(device_id: String) -> (Self, mpsc::Receiver<SignalingMessage>) {
        let (inbox, inbox_rx) = mpsc::channel(INBOX);
        let peer = Self {
            device_id,
            channel: OnceLock::new(),
            fast: OnceLock::new(),
            cancel: CancellationToken::new(),
            silenced: AtomicBool::new(false),
            inbox,
            status: Mutex::new(Status {
                state: LinkState::New,
                authenticated: false,
            }),
        };
        (peer, inbox_rx)
    }

    /// Encode `event` and send it, waiting for buffer room (up to 5 s in
    /// which the phone acknowledges nothing, then [`PeerError::SendTimeout`];
    /// a phone that reads slowly is waited for); closing the peer fails a
    /// waiting send at once.
    /// Never sends more than [`max_message_size`](Self::max_message_size).
    pub async fn send_message(&self, event: &Event) -> Result<(), PeerError> {
        if self.cancel.is_cancelled() {
            return Err(PeerError::Closed);
        }
        let channel = self.channel.get().ok_or(PeerError::NoChannel)?;
        let bytes = event.encode();
        let max = self.max_message_size();
        if bytes.len() > max {
            return Err(PeerError::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(PeerError::Closed),
            r = channel.send(&bytes) => r.map_err(map_rtc_error),
        }
    }

    /// Encode `event` and hand it to the phone's fast channel without waiting:
    /// a copy that may be lost, for events also sent with
    /// [`send_message`](Self::send_message). Send the copy first and its
    /// original no sooner than [`rtc_transport::FAST_COPY_LEAD`] after it, so
    /// the two do not share a datagram; the caller keeps that time, since
    /// only it knows which later message is the original. False, and
    /// nothing sent, when the peer is closed or not authenticated, the phone
    /// opened no fast channel or it is not open, the encoded event is larger
    /// than the phone accepts, or more than 64 KiB are buffered on that
    /// channel ([`rtc_transport::TRY_SEND_LIMIT`]). Never waits for room.
    pub fn send_fast(&self, event: &Event) -> bool {
        if self.cancel.is_cancelled() || !self.is_authenticated() {
            return false;
        }
        let Some(fast) = self.fast.get() else {
            return false;
        };
        if !fast.is_open() {
            return false;
        }
        let bytes = event.encode();
        bytes.len() <= self.max_message_size() && fast.try_send(&bytes)
    }

    /// True while the phone's fast channel is open.
    pub fn has_fast_channel(&self) -> bool {
        self.fast.get().is_some_and(RtcChannel::is_open)
    }

    /// Largest message the phone accepts: its advertised `max-message-size`
    /// (65 536 when absent), never more than 1 MiB.
    pub fn max_message_size(&self) -> usize {
        let remote = self.channel.get().map_or(
            DEFAULT_PEER_MAX_MESSAGE,
            RtcChannel::remote_max_message_size,
        );
        let remote = if remote == 0 {
            MAX_MESSAGE_SIZE
        } else {
            remote
        };
        remote.min(MAX_MESSAGE_SIZE)
    }

    /// Close the peer: unblocks waiting senders, stops the auth timer, and lets the
    /// peer's task clean up (the handler hears `peer_disconnected` if this peer is
    /// still the device's current one).
    pub fn close(&self) {
        self.cancel.cancel();
        if let Some(ch) = self.channel.get() {
            ch.close();
        }
        if let Some(ch) = self.fast.get() {
            ch.close();
        }
    }

    /// Bytes queued in the DataChannel, not yet sent (0 without a channel).
    pub fn buffered_amount(&self) -> usize {
        self.channel.get().map_or(0, RtcChannel::buffered_amount)
    }

    /// True once [`close`](Self::close) was called (or the peer was replaced).
    pub fn is_closed(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// True once key possession succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.with_status(|s| s.authenticated)
    }

    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    pub(crate) fn set_channel(&self, ch: RtcChannel) {
        // Set once by the peer's own task right after creating the channel.
        let _ = self.channel.set(ch);
    }

    /// Set once by the peer's own task when its core accepted the phone's
    /// fast channel; false (and `ch` untouched) if one was set before.
    pub(crate) fn set_fast_channel(&self, ch: RtcChannel) -> bool {
        self.fast.set(ch).is_ok()
    }

    /// Stop sending signaling for this peer (replaced by a reconnect).
    pub(crate) fn silence(&self) {
        self.silenced.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_silenced(&self) -> bool {
        self.silenced.load(Ordering::SeqCst)
    }

    /// Mirror the core's state (its own task only).
    pub(crate) fn mirror(&self, state: LinkState, authenticated: bool) -> bool {
        self.with_status(|s| {
            let changed = s.state != state || s.authenticated != authenticated;
            s.state = state;
            s.authenticated = authenticated;
            changed
        })
    }

    pub(crate) fn state_str(&self) -> &'static str {
        self.with_status(|s| s.state.as_str())
    }

    fn with_status<R>(&self, f: impl FnOnce(&mut Status) -> R) -> R {
        f(&mut lock(&self.status))
    }
}

/// Locks a std mutex; a poisoned lock only means a panic elsewhere, and the
/// plain data it guards stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn map_rtc_error(e: RtcError) -> PeerError {
    match e {
        RtcError::SendTimeout => PeerError::SendTimeout,
        RtcError::Closed => PeerError::Closed,
        RtcError::NotOpen => PeerError::NoChannel,
        RtcError::TooLarge { size, limit } => PeerError::TooLarge { size, max: limit },
        other => PeerError::Transport(other.to_string()),
    }
}
