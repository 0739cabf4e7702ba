//! One DataChannel (the "terminal" channel or a fast one): detached reads into
//! a bounded queue, sends with backpressure (spec peer-lifecycle §6), a
//! non-waiting send for messages that may be lost, close that wakes every
//! waiter at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, Notify, mpsc, watch};
use tokio::time::{Instant, sleep_until};
use webrtc::data::data_channel::DataChannel;
use webrtc::data_channel::RTCDataChannel;

use crate::chan_state::{ChanState, wait_closed, wait_for_room, wait_open};
use crate::error::RtcError;
use crate::options::ChannelOptions;
use crate::sdp::MAX_MESSAGE_SIZE;
use crate::{
    LOW_WATER_MARK, MIN_WRITE_RATE_BYTES_PER_SEC, SEND_TIMEOUT, STALL_FREE_MESSAGE_SIZE,
    TRY_SEND_LIMIT,
};

/// Received messages waiting for `recv`; a full queue stops reading, which in
/// turn fills SCTP's receive window and slows the remote sender.
const RECV_QUEUE: usize = 32;
/// Read buffer: room for the largest allowed message plus slack, so a peer that
/// ignores our limit by a little still gets a decodable-size verdict, not a close.
const READ_BUF: usize = MAX_MESSAGE_SIZE + 65_536;
/// [`RtcChannel::try_send`] writes that found SCTP's queue (shared by every
/// channel of the association) full and finish in the background; while this
/// many are parked, further ones are dropped.
const MAX_PARKED_WRITES: usize = 8;

/// One DataChannel. Cheap to clone; all clones share the same channel.
#[derive(Clone)]
pub struct RtcChannel {
    inner: Arc<ChannelInner>,
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

struct ChannelInner {
    label: String,
    options: ChannelOptions,
    rtc: Arc<RTCDataChannel>,
    raw: OnceLock<Arc<DataChannel>>,
    state: watch::Sender<ChanState>,
    low: Notify,
    rx: Mutex<mpsc::Receiver<Bytes>>,
    remote_max: Arc<AtomicUsize>,
    /// [`RtcChannel::try_send`] writes still waiting inside the library.
    parked_writes: AtomicUsize,
}

impl RtcChannel {
    /// Wraps a library channel; reading starts when it opens.
    pub(crate) fn new(rtc: Arc<RTCDataChannel>, remote_max: Arc<AtomicUsize>) -> RtcChannel {
        let (tx, rx) = mpsc::channel(RECV_QUEUE);
        let inner = Arc::new(ChannelInner {
            label: rtc.label().to_owned(),
            // For a channel the remote side opened, the library fills these
            // from the DCEP open message (a lifetime limit is not used here).
            options: ChannelOptions {
                ordered: rtc.ordered(),
                max_retransmits: rtc.max_retransmits(),
            },
            rtc: Arc::clone(&rtc),
            raw: OnceLock::new(),
            state: watch::Sender::new(ChanState::Connecting),
            low: Notify::new(),
            rx: Mutex::new(rx),
            remote_max,
            parked_writes: AtomicUsize::new(0),
        });
        // The library owns this handler, so it holds only a weak reference
        // (a strong one would keep the channel alive forever).
        let weak = Arc::downgrade(&inner);
        rtc.on_open(Box::new(move || {
            Box::pin(async move {
                if let Some(inner) = weak.upgrade() {
                    ChannelInner::opened(inner, tx).await;
                }
            })
        }));
        RtcChannel { inner }
    }

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
    /// (until the buffered amount falls to 4 096, the channel closes, or 5 s pass)
    /// and bounds the library's own write by 5 s plus the message's size at
    /// [`MIN_WRITE_RATE_BYTES_PER_SEC`].
    pub async fn send(&self, bytes: &[u8]) -> Result<(), RtcError> {
        self.send_inner(bytes, true).await
    }

    /// Test hook for hostile-peer tests: [`RtcChannel::send`] without the check
    /// against the remote max-message-size (the library's own limit still applies).
    pub async fn send_unchecked(&self, bytes: &[u8]) -> Result<(), RtcError> {
        self.send_inner(bytes, false).await
    }

    /// Hands one message to SCTP without waiting, for messages that may be
    /// lost (fast copies on an unreliable channel). Returns false, and the
    /// message is dropped, when the channel is not open, the message is empty
    /// or larger than the remote side accepts, more than [`TRY_SEND_LIMIT`]
    /// bytes would then be buffered on this channel, or 8 earlier writes are
    /// still parked. The library's write is polled once here, so a message that
    /// returns true is normally in SCTP's queue before this returns (ahead of a
    /// later [`RtcChannel::send`] on another channel); if SCTP's queue, shared
    /// by every channel of the connection, is full, the write is parked in a
    /// background task until there is room or the channel closes. Needs a
    /// tokio runtime (without one it returns false).
    pub fn try_send(&self, bytes: &[u8]) -> bool {
        let inner = &self.inner;
        if *inner.state.borrow() != ChanState::Open
            || bytes.is_empty()
            || bytes.len() > self.remote_max_message_size()
        {
            return false;
        }
        let Some(raw) = inner.raw.get().cloned() else {
            return false;
        };
        if raw.buffered_amount().saturating_add(bytes.len()) > TRY_SEND_LIMIT {
            return false;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if inner
            .parked_writes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_PARKED_WRITES).then_some(n + 1)
            })
            .is_err()
        {
            return false;
        }
        let data = Bytes::copy_from_slice(bytes);
        let label = inner.label.clone();
        let mut write = Box::pin(async move { raw.write_data_channel(&data, false).await });
        // One poll without a waker: it completes unless SCTP's queue has no
        // room. A started write is not dropped while the channel is open (the
        // library counts the message as buffered before its first await), so
        // a pending one moves to a task that polls it again with a real waker.
        if let Poll::Ready(r) = write.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            inner.parked_writes.fetch_sub(1, Ordering::SeqCst);
            if let Err(e) = &r {
                tracing::debug!(error = %e, %label, "non-waiting send failed");
            }
            return r.is_ok();
        }
        let inner = Arc::clone(inner);
        runtime.spawn(async move {
            let mut st = inner.state.subscribe();
            tokio::select! {
                r = write => if let Err(e) = r {
                    tracing::debug!(error = %e, %label, "parked non-waiting send failed");
                },
                _ = wait_closed(&mut st) => {}
            }
            inner.parked_writes.fetch_sub(1, Ordering::SeqCst);
        });
        true
    }

    async fn send_inner(&self, bytes: &[u8], check_limit: bool) -> Result<(), RtcError> {
        let inner = &self.inner;
        let mut st = inner.state.subscribe();
        if *st.borrow() == ChanState::Closed {
            return Err(RtcError::Closed);
        }
        let raw = inner.raw.get().cloned().ok_or(RtcError::NotOpen)?;
        let limit = self.remote_max_message_size();
        if check_limit && bytes.len() > limit {
            return Err(RtcError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        let deadline = Instant::now() + SEND_TIMEOUT;
        wait_for_room(&inner.low, || raw.buffered_amount(), &mut st, deadline).await?;
        if bytes.len() > STALL_FREE_MESSAGE_SIZE {
            tracing::debug!(
                size = bytes.len(),
                label = %inner.label,
                "message over the stall-free size: it may wait for the peer's next packet"
            );
        }
        let data = Bytes::copy_from_slice(bytes);
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let write_deadline = Instant::now()
            + SEND_TIMEOUT
            + Duration::from_millis(len.saturating_mul(1000) / MIN_WRITE_RATE_BYTES_PER_SEC);
        // The library's write can itself block when SCTP's pending queue (128 KiB)
        // is full, so it races the same deadline and the close signal. Abandoning
        // a write half-way can leave part of a large message queued (the library
        // appends big messages chunk by chunk), which corrupts the ordered
        // stream: so a write that times out closes the channel.
        tokio::select! {
            r = raw.write_data_channel(&data, false) => match r {
                Ok(_) => Ok(()),
                Err(_) if self.is_closed() => Err(RtcError::Closed),
                Err(e) => Err(RtcError::Webrtc(e.into())),
            },
            _ = wait_closed(&mut st) => Err(RtcError::Closed),
            _ = sleep_until(write_deadline) => {
                self.close();
                Err(RtcError::SendTimeout)
            }
        }
    }

    /// The next received message; `None` once the channel is closed and the
    /// queue is drained. Concurrent callers take turns.
    pub async fn recv(&self) -> Option<Bytes> {
        let mut rx = self.inner.rx.lock().await;
        let mut st = self.inner.state.subscribe();
        tokio::select! {
            biased;
            m = rx.recv() => m,
            _ = wait_closed(&mut st) => rx.try_recv().ok(),
        }
    }

    /// The largest message the remote side accepts (65 536 when its SDP has no
    /// `a=max-message-size`).
    pub fn remote_max_message_size(&self) -> usize {
        self.inner.remote_max.load(Ordering::Relaxed)
    }

    /// Bytes queued in the library and not yet acknowledged.
    pub fn buffered_amount(&self) -> usize {
        self.inner.raw.get().map_or(0, |r| r.buffered_amount())
    }

    /// Closes the channel: waiting senders and receivers return at once; the
    /// library close runs in the background.
    pub fn close(&self) {
        let was = self.inner.state.send_replace(ChanState::Closed);
        self.inner.low.notify_waiters();
        if was != ChanState::Closed {
            let rtc = Arc::clone(&self.inner.rtc);
            crate::stack::spawn(async move {
                if let Err(e) = rtc.close().await {
                    tracing::debug!(error = %e, "data channel close");
                }
            });
        }
    }
}

impl ChannelInner {
    async fn opened(inner: Arc<ChannelInner>, tx: mpsc::Sender<Bytes>) {
        let raw = match inner.rtc.detach().await {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(error = %e, "data channel detach failed");
                inner.state.send_replace(ChanState::Closed);
                return;
            }
        };
        raw.set_buffered_amount_low_threshold(LOW_WATER_MARK);
        let weak = Arc::downgrade(&inner);
        raw.on_buffered_amount_low(Box::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.low.notify_waiters();
            }
            Box::pin(async {})
        }));
        if inner.raw.set(Arc::clone(&raw)).is_err() {
            return;
        }
        let mut opened = false;
        inner.state.send_if_modified(|s| {
            if *s == ChanState::Connecting {
                *s = ChanState::Open;
                opened = true;
            }
            opened
        });
        if !opened {
            // Closed before it opened: close the library side too.
            let _ = inner.rtc.close().await;
            return;
        }
        tokio::spawn(read_loop(inner, raw, tx));
    }
}

async fn read_loop(inner: Arc<ChannelInner>, raw: Arc<DataChannel>, tx: mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; READ_BUF];
    let mut st = inner.state.subscribe();
    loop {
        tokio::select! {
            _ = wait_closed(&mut st) => break,
            r = raw.read_data_channel(&mut buf) => match r {
                // 0.17.2 reports a closed stream as a zero-length read, the same
                // as an empty message; muxlink never sends empty messages, so a
                // zero-length read ends the channel.
                Ok((0, _)) => break,
                Ok((n, _)) => {
                    let msg = Bytes::copy_from_slice(&buf[..n]);
                    let mut st2 = inner.state.subscribe();
                    tokio::select! {
                        r = tx.send(msg) => if r.is_err() { break },
                        _ = wait_closed(&mut st2) => break,
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, label = %inner.label, "data channel read ended");
                    break;
                }
            },
        }
    }
    inner.state.send_replace(ChanState::Closed);
    inner.low.notify_waiters();
}
