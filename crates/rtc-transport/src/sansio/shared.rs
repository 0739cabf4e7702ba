//! What a peer's handles and its driver share without asking each other:
//! the connection state, the closed flag, the remote max-message-size, the
//! channels to close with the peer, and the two queues into the driver.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::channel::{ChannelOp, RtcChannel};
use super::command::Command;
use crate::DEFAULT_REMOTE_MAX_MESSAGE;
use crate::event::PeerState;

pub(super) struct PeerShared {
    state: AtomicU8,
    pub(super) closed: AtomicBool,
    pub(super) remote_max: Arc<AtomicUsize>,
    pub(super) ignore_remote_max: AtomicBool,
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
            state: AtomicU8::new(state_code(PeerState::New)),
            closed: AtomicBool::new(false),
            remote_max: Arc::new(AtomicUsize::new(DEFAULT_REMOTE_MAX_MESSAGE)),
            ignore_remote_max: AtomicBool::new(false),
            channels: Mutex::new(Vec::new()),
            commands,
            channel_ops,
        }
    }

    pub(super) fn set_state(&self, s: PeerState) {
        self.state.store(state_code(s), Ordering::SeqCst);
    }

    pub(super) fn state(&self) -> PeerState {
        match self.state.load(Ordering::SeqCst) {
            1 => PeerState::Connecting,
            2 => PeerState::Connected,
            3 => PeerState::Disconnected,
            4 => PeerState::Failed,
            5 => PeerState::Closed,
            _ => PeerState::New,
        }
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

fn state_code(s: PeerState) -> u8 {
    match s {
        PeerState::New => 0,
        PeerState::Connecting => 1,
        PeerState::Connected => 2,
        PeerState::Disconnected => 3,
        PeerState::Failed => 4,
        PeerState::Closed => 5,
    }
}

/// Locks a std mutex, recovering from poisoning (the guarded list stays valid).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
