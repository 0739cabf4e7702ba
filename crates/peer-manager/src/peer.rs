//! One mobile's peer as the handler sees it: send with backpressure, size limit,
//! close; plus the small shared status the manager and cleaner read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use rtc_transport::{Candidate, RtcChannel, RtcError};
use terminal_protocol::{DEFAULT_PEER_MAX_MESSAGE, Event, MAX_MESSAGE_SIZE};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cleaner::PeerSnapshot;
use crate::error::PeerError;

/// Signaling input for a peer's driver task, in arrival order.
#[derive(Debug)]
pub(crate) enum PeerCmd {
    /// `sdp_answer` (size already checked).
    Answer(String),
    /// `ice_candidate` from the phone.
    Candidate(Candidate),
}

/// Capacity of a peer's signaling command queue (answers + candidates).
pub(crate) const CMD_QUEUE: usize = 128;

#[derive(Debug, Default)]
struct Status {
    state: Option<&'static str>,
    authenticated_at: Option<Instant>,
    last_ping: Option<Instant>,
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
    cancel: CancellationToken,
    silenced: AtomicBool,
    pub(crate) disconnect_reported: AtomicBool,
    pub(crate) cmd_tx: mpsc::Sender<PeerCmd>,
    status: Mutex<Status>,
}

impl Peer {
    pub(crate) fn new(device_id: String) -> (Self, mpsc::Receiver<PeerCmd>) {
        let (cmd_tx, cmd_rx) = mpsc::channel(CMD_QUEUE);
        let peer = Self {
            device_id,
            channel: OnceLock::new(),
            cancel: CancellationToken::new(),
            silenced: AtomicBool::new(false),
            disconnect_reported: AtomicBool::new(false),
            cmd_tx,
            status: Mutex::new(Status::default()),
        };
        (peer, cmd_rx)
    }

    /// Encode `event` and send it, waiting for buffer room (≤ 5 s, then
    /// [`PeerError::SendTimeout`]); closing the peer fails a waiting send at once.
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
        self.with_status(|s| s.authenticated_at.is_some())
    }

    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    pub(crate) fn set_channel(&self, ch: RtcChannel) {
        // Set once by the peer's own task right after creating the channel.
        let _ = self.channel.set(ch);
    }

    /// Stop sending signaling for this peer (replaced by a reconnect).
    pub(crate) fn silence(&self) {
        self.silenced.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_silenced(&self) -> bool {
        self.silenced.load(Ordering::SeqCst)
    }

    pub(crate) fn set_state(&self, state: &'static str) {
        self.with_status(|s| s.state = Some(state));
    }

    pub(crate) fn state_str(&self) -> &'static str {
        self.with_status(|s| s.state.unwrap_or("new"))
    }

    pub(crate) fn mark_authenticated(&self, now: Instant) {
        self.with_status(|s| s.authenticated_at = Some(now));
    }

    pub(crate) fn touch_ping(&self, now: Instant) {
        self.with_status(|s| s.last_ping = Some(now));
    }

    pub(crate) fn snapshot(&self) -> PeerSnapshot {
        self.with_status(|s| PeerSnapshot {
            device_id: self.device_id.clone(),
            state: s.state.unwrap_or("new").to_owned(),
            authenticated_at: s.authenticated_at,
            last_ping: s.last_ping,
        })
    }

    fn with_status<R>(&self, f: impl FnOnce(&mut Status) -> R) -> R {
        // A poisoned lock only means a panic elsewhere; the plain data stays usable.
        let mut g = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }
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
