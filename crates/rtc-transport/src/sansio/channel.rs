//! One DataChannel: a handle ([`RtcChannel`]) that hands messages to the
//! peer's driver and reads from a bounded queue the driver fills, and the
//! state both share ([`ChanShared`]). Sends wait above 512 KiB buffered (the
//! driver publishes the core's unacknowledged bytes after every turn),
//! `try_send` never waits, close wakes every waiter at once. Sends and
//! closes reach the driver as [`ChannelOp`]s on a bounded queue of their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use rtc::data_channel::RTCDataChannelId;
use tokio::sync::{Mutex, Notify, mpsc, watch};
use tokio::time::{Instant, sleep_until};

pub(super) use crate::chan_state::ChanState;
use crate::chan_state::{wait_closed, wait_for_room, wait_open};
use crate::error::RtcError;
use crate::options::ChannelOptions;
use crate::{LOW_WATER_MARK, MAX_TRANSPORT_MESSAGE, SEND_TIMEOUT, TRY_SEND_LIMIT};

/// Received messages waiting for `recv`; a full queue stops the driver
/// reading the socket, which in turn fills SCTP's receive window.
const RECV_QUEUE: usize = 32;

/// What a channel handle asks the driver to do.
pub(super) enum ChannelOp {
    Send { id: RTCDataChannelId, data: Bytes },
    Close { id: RTCDataChannelId },
}

/// What a channel's handles and the driver share.
pub(super) struct ChanShared {
    id: RTCDataChannelId,
    label: String,
    options: ChannelOptions,
    state: watch::Sender<ChanState>,
    /// Bytes handed to the driver's queue and not yet to the core.
    queued: AtomicUsize,
    /// The core's bytes not yet acknowledged, as of the driver's last turn.
    outstanding: AtomicUsize,
    /// Woken when the buffered amount falls to the low-water mark or the channel closes.
    low: Notify,
    /// Woken when the owner took a message (the driver may deliver again).
    room: Notify,
    tx: mpsc::Sender<Bytes>,
    rx: Mutex<mpsc::Receiver<Bytes>>,
    remote_max: Arc<AtomicUsize>,
    ops: mpsc::Sender<ChannelOp>,
}

impl ChanShared {
    pub(super) fn new(
        id: RTCDataChannelId,
        label: String,
        options: ChannelOptions,
        remote_max: Arc<AtomicUsize>,
        ops: mpsc::Sender<ChannelOp>,
    ) -> (Arc<ChanShared>, RtcChannel) {
        let (tx, rx) = mpsc::channel(RECV_QUEUE);
        let shared = Arc::new(ChanShared {
            id,
            label,
            options,
            state: watch::Sender::new(ChanState::Connecting),
            queued: AtomicUsize::new(0),
            outstanding: AtomicUsize::new(0),
            low: Notify::new(),
            room: Notify::new(),
            tx,
            rx: Mutex::new(rx),
            remote_max,
            ops,
        });
        let handle = RtcChannel {
            inner: Arc::clone(&shared),
        };
        (shared, handle)
    }

    pub(super) fn label(&self) -> &str {
        &self.label
    }

    pub(super) fn options(&self) -> ChannelOptions {
        self.options
    }

    pub(super) fn set_state(&self, to: ChanState) {
        self.state.send_if_modified(|s| {
            // Closed is final.
            let changed = *s != to && *s != ChanState::Closed;
            if changed {
                *s = to;
            }
            changed
        });
        if to == ChanState::Closed {
            self.low.notify_waiters();
        }
    }

    /// Hands a received message to the owner's queue; gives it back when full.
    pub(super) fn offer(&self, data: Bytes) -> Result<(), Bytes> {
        match self.tx.try_send(data) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(data)) => Err(data),
            // Nobody reads any more: the message is dropped.
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }

    /// Resolves once the owner's queue has room (or the channel closed).
    pub(super) async fn room(&self) {
        loop {
            let taken = self.room.notified();
            tokio::pin!(taken);
            taken.as_mut().enable();
            if self.tx.capacity() > 0 || *self.state.borrow() == ChanState::Closed {
                return;
            }
            taken.await;
        }
    }

    pub(super) fn sent_to_core(&self, len: usize) {
        let _ = self
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                Some(q.saturating_sub(len))
            });
    }

    pub(super) fn set_outstanding(&self, bytes: usize) {
        self.outstanding.store(bytes, Ordering::SeqCst);
        if self.buffered() <= LOW_WATER_MARK {
            self.low.notify_waiters();
        }
    }

    fn buffered(&self) -> usize {
        self.queued.load(Ordering::SeqCst) + self.outstanding.load(Ordering::SeqCst)
    }
}

/// One DataChannel. Cheap to clone; all clones share the same channel.
#[derive(Clone)]
pub struct RtcChannel {
    inner: Arc<ChanShared>,
}

impl std::fmt::Debug for RtcChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcChannel")
            .field("label", &self.inner.label)
            .field("options", &self.inner.options)
            .field("state", &*self.inner.state.borrow())
            .finish()
    }
}

impl RtcChannel {
    /// The channel's label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// Whether messages arrive in the order they were sent.
    pub fn ordered(&self) -> bool {
        self.inner.options.ordered
    }

    /// The channel's delivery options (for a channel the remote side opened,
    /// as its open message announced them).
    pub fn options(&self) -> ChannelOptions {
        self.inner.options
    }

    /// Waits until the channel is open; `Err(Closed)` if it closed first.
    pub async fn wait_open(&self) -> Result<(), RtcError> {
        wait_open(self.inner.state.subscribe()).await
    }

    /// True once opened and until closed.
    pub fn is_open(&self) -> bool {
        *self.inner.state.borrow() == ChanState::Open
    }

    /// True once closed (locally, remotely, or with the peer).
    pub fn is_closed(&self) -> bool {
        *self.inner.state.borrow() == ChanState::Closed
    }

    /// Sends one binary message. Waits while more than 512 KiB are buffered
    /// (until the buffered amount falls to 4 096, the channel closes, or 5 s pass).
    /// A message larger than the remote side accepts or than
    /// [`MAX_TRANSPORT_MESSAGE`] fails with [`RtcError::TooLarge`]; the channel
    /// stays open.
    pub async fn send(&self, bytes: &[u8]) -> Result<(), RtcError> {
        self.send_inner(bytes, true).await
    }

    /// Test hook for hostile-peer tests: [`RtcChannel::send`] without the check
    /// against the remote max-message-size ([`MAX_TRANSPORT_MESSAGE`], the
    /// core's own limit, still applies).
    pub async fn send_unchecked(&self, bytes: &[u8]) -> Result<(), RtcError> {
        self.send_inner(bytes, false).await
    }

    /// Hands one message to the driver without waiting, for messages that may
    /// be lost (fast copies). Returns false, and the message is dropped, when
    /// the channel is not open, the message is empty or larger than the remote
    /// side accepts, more than [`TRY_SEND_LIMIT`] bytes would then be buffered
    /// on this channel, or the driver's queue is full. A message that returns
    /// true reaches the core before any later send of this peer.
    pub fn try_send(&self, bytes: &[u8]) -> bool {
        let inner = &self.inner;
        if !self.is_open()
            || bytes.is_empty()
            || bytes.len() > self.remote_max_message_size().min(MAX_TRANSPORT_MESSAGE)
            || inner.buffered().saturating_add(bytes.len()) > TRY_SEND_LIMIT
        {
            return false;
        }
        inner.queued.fetch_add(bytes.len(), Ordering::SeqCst);
        let cmd = ChannelOp::Send {
            id: inner.id,
            data: Bytes::copy_from_slice(bytes),
        };
        if inner.ops.try_send(cmd).is_err() {
            inner.sent_to_core(bytes.len());
            return false;
        }
        true
    }

    async fn send_inner(&self, bytes: &[u8], check_limit: bool) -> Result<(), RtcError> {
        let inner = &self.inner;
        let mut st = inner.state.subscribe();
        match *st.borrow() {
            ChanState::Closed => return Err(RtcError::Closed),
            ChanState::Connecting => return Err(RtcError::NotOpen),
            ChanState::Open => {}
        }
        let limit = if check_limit {
            self.remote_max_message_size().min(MAX_TRANSPORT_MESSAGE)
        } else {
            MAX_TRANSPORT_MESSAGE
        };
        if bytes.len() > limit {
            return Err(RtcError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        wait_for_room(&inner.low, || inner.buffered(), &mut st, SEND_TIMEOUT).await?;
        let deadline = Instant::now() + SEND_TIMEOUT;
        inner.queued.fetch_add(bytes.len(), Ordering::SeqCst);
        let cmd = ChannelOp::Send {
            id: inner.id,
            data: Bytes::copy_from_slice(bytes),
        };
        tokio::select! {
            r = inner.ops.send(cmd) => r.map_err(|_| RtcError::Closed),
            _ = wait_closed(&mut st) => Err(RtcError::Closed),
            _ = sleep_until(deadline) => Err(RtcError::SendTimeout),
        }
    }

    /// The next received message; `None` once the channel is closed and the
    /// queue is drained. Concurrent callers take turns.
    pub async fn recv(&self) -> Option<Bytes> {
        let mut rx = self.inner.rx.lock().await;
        let mut st = self.inner.state.subscribe();
        let msg = tokio::select! {
            biased;
            m = rx.recv() => m,
            _ = wait_closed(&mut st) => rx.try_recv().ok(),
        };
        self.inner.room.notify_one();
        msg
    }

    /// The largest message the remote side accepts (65 536 when its SDP has no
    /// `a=max-message-size`).
    pub fn remote_max_message_size(&self) -> usize {
        self.inner.remote_max.load(Ordering::Relaxed)
    }

    /// Bytes handed to the stack and not yet acknowledged.
    pub fn buffered_amount(&self) -> usize {
        self.inner.buffered()
    }

    /// Closes the channel: waiting senders and receivers return at once; the
    /// driver closes the core's channel.
    pub fn close(&self) {
        let was_closed = self.is_closed();
        self.inner.set_state(ChanState::Closed);
        self.inner.room.notify_one();
        if !was_closed {
            let ops = self.inner.ops.clone();
            let id = self.inner.id;
            crate::stack::spawn(async move {
                let _ = ops.send(ChannelOp::Close { id }).await;
            });
        }
    }
}
