//! What a peer's handles and its driver share without asking each other:
//! the connection state, the closed flag, the remote max-message-size, the
//! channels to close with the peer, and the two queues into the driver.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::channel::{ChannelOp, RtcChannel};
use super::command::Command;
use crate::DEFAULT_REMOTE_MAX_MESSAGE;
use crate::event::PeerState;

pub(super) struct PeerShared {
    state: Mutex<PeerState>,
    pub(super) closed: AtomicBool,
    pub(super) remote_max: Arc<AtomicUsize>,
    channels: Mutex<Vec<RtcChannel>>,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) channel_ops: mpsc::Sender<ChannelOp>,
}

impl PeerShared {
    pub(super) fn new(
        commands: mpsc::Sender<Command>,
        channel_ops: mpsc::Sender<ChannelOp>,
    ) -> PeerShared {
        PeerShared {
            state: Mutex::new(PeerState::New),
            closed: AtomicBool::new(false),
            remote_max: Arc::new(AtomicUsize::new(DEFAULT_REMOTE_MAX_MESSAGE)),
            channels: Mutex::new(Vec::new()),
            commands,
            channel_ops,
        }
    }

    pub(super) fn set_state(&self, s: PeerState) {
        *lock(&self.state) = s;
    }

    pub(super) fn state(&self) -> PeerState {
        *lock(&self.state)
    }

    /// Keeps a handle so closing the peer closes the channel.
    pub(super) fn remember(&self, ch: RtcChannel) {
        lock(&self.channels).push(ch);
    }

    /// The channels to close with the peer (the list is empty afterwards).
    pub(super) fn take_channels(&self) -> Vec<RtcChannel> {
        std::mem::take(&mut *lock(&self.channels))
    }
}

/// Locks a std mutex, recovering from poisoning (the guarded values stay valid: each critical section is one assignment or a take).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
