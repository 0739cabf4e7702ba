//! The sender task of one streaming attachment (docs/stream-v2.md §2, §4,
//! §6): from its own offset in the pane stream, chunk → deflate (if
//! negotiated) → `output` events (with offsets when asked), each awaited, so
//! backpressure runs only between the ring and this phone. A phone whose
//! offset was overwritten (more than `LAG_BOUND_BYTES` behind) gets a fresh
//! snapshot and continues from the head. Small stream outputs of attachments
//! with offsets also go, first and raw, as fast-channel copies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use terminal_protocol::{Compressor, Event, MAX_FAST_COPY};
use tmux_bridge::TmuxBridge;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::PeerLink;
use super::ending::Cause;
use super::output::{Numbering, OutputError, data_budget, numbered_events, plain_budget};
use super::stream::{PaneStream, StreamRead, StreamUse};

/// How long stopping a sender task waits for it.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the lag rule (§6) has done since the agent started.
#[derive(Debug, Default)]
pub(super) struct LagCounters {
    pub skipped_bytes: AtomicU64,
    pub snapshots: AtomicU64,
}

/// A running sender task, as stored in the attachment table, with the pane
/// stream it sends from (released by whoever ends the attachment).
pub(super) struct Pump {
    cancel: CancellationToken,
    task: JoinHandle<()>,
    used: StreamUse,
}

impl Pump {
    pub(super) fn new(cancel: CancellationToken, task: JoinHandle<()>, used: StreamUse) -> Pump {
        Pump { cancel, task, used }
    }

    /// Cancels the task and waits until it no longer sends. Bounded: a stuck
    /// send must not hold up the ending. Returns the pane stream it used, for
    /// the ending to release (or keep for a resume).
    pub(super) async fn stop(self, pane: &str) -> StreamUse {
        self.cancel.cancel();
        if tokio::time::timeout(STOP_TIMEOUT, self.task).await.is_err() {
            tracing::warn!(pane, "output task did not stop in time");
        }
        self.used
    }
}

/// Why a send of output bytes did not complete.
#[derive(Debug)]
pub(super) enum SendFail {
    Send,
    Compress,
    Cancelled,
}

impl SendFail {
    /// How the attachment ends because of it (`None`: it was stopped from outside).
    pub(super) fn cause(self) -> Option<Cause> {
        match self {
            SendFail::Send => Some(Cause::SendFailed),
            SendFail::Compress => Some(Cause::CompressFailed),
            SendFail::Cancelled => None,
        }
    }
}

/// Sends `bytes` as one or more `output` events numbered by `numbering`;
/// stops early when cancelled.
pub(super) async fn send_output(
    link: &Arc<dyn PeerLink>,
    compressor: Option<&mut Compressor>,
    bytes: &[u8],
    numbering: Numbering,
    cancel: &CancellationToken,
) -> Result<(), SendFail> {
    if bytes.is_empty() {
        return Ok(());
    }
    let budget = data_budget(link.max_message_size());
    let events = numbered_events(bytes, compressor, budget, numbering)
        .map_err(|OutputError::Compression| SendFail::Compress)?;
    for event in &events {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(SendFail::Cancelled),
            r = link.send_event(event) => r.map_err(|e| {
                tracing::debug!(error = %e, "output send failed");
                SendFail::Send
            })?,
        }
    }
    Ok(())
}

/// One attachment's sender: where it is in the pane stream and how it sends.
pub(super) struct Sender {
    pub link: Arc<dyn PeerLink>,
    pub bridge: TmuxBridge,
    pub stream: Arc<PaneStream>,
    pub compressor: Option<Compressor>,
    /// The attachment asked for offsets (and fast copies).
    pub offsets: bool,
    /// The offset of the next stream byte to send.
    pub cursor: u64,
    pub counters: Arc<LagCounters>,
}

impl Sender {
    fn numbering(&self, stream_offset: u64, snapshot: bool) -> Numbering {
        match (self.offsets, snapshot) {
            (false, _) => Numbering::Plain,
            (true, false) => Numbering::Stream(stream_offset),
            (true, true) => Numbering::Snapshot(stream_offset),
        }
    }

    /// The output loop. Returns how the attachment ends, or `None` when
    /// cancelled (whoever cancelled is ending it).
    pub(super) async fn run(&mut self, cancel: &CancellationToken) -> Option<Cause> {
        let mut head = self.stream.subscribe();
        let max = plain_budget(
            data_budget(self.link.max_message_size()),
            self.compressor.is_some(),
        );
        loop {
            // Marked seen before reading, so an append after the read wakes us.
            head.borrow_and_update();
            let read = self.stream.read_from(self.cursor, max);
            let sent = match read {
                StreamRead::Bytes(bytes) => self.send_stream(&bytes, cancel).await,
                StreamRead::Lagged { head } => self.catch_up(head, cancel).await,
                StreamRead::Ended => return Some(Cause::PaneExited),
                StreamRead::Wait => {
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return None,
                        // The stream outlives its senders; a closed watch
                        // would mean it is gone: re-read and see `Ended`.
                        _ = head.changed() => {}
                    }
                    Ok(())
                }
            };
            if let Err(fail) = sent {
                return fail.cause();
            }
        }
    }

    /// Sends stream bytes at the cursor: the fast copy first (§4), then the
    /// reliable output.
    async fn send_stream(
        &mut self,
        bytes: &[u8],
        cancel: &CancellationToken,
    ) -> Result<(), SendFail> {
        if self.offsets && bytes.len() <= MAX_FAST_COPY {
            let copy = Event::Output {
                data: bytes.to_vec(),
                offset: Some(self.cursor),
                snapshot: false,
                pane_id: Some(self.stream.pane_id().to_owned()),
            };
            // Best effort: the reliable copy below is authoritative.
            self.link.send_fast(&copy).await;
        }
        let numbering = self.numbering(self.cursor, false);
        send_output(
            &self.link,
            self.compressor.as_mut(),
            bytes,
            numbering,
            cancel,
        )
        .await?;
        self.cursor += bytes.len() as u64;
        Ok(())
    }

    /// The phone fell more than the ring behind (§6): what it has not been
    /// sent is gone; a snapshot of the screen replaces it, and the stream
    /// continues from the head as it was when the snapshot was taken.
    async fn catch_up(
        &mut self,
        lagged_at: u64,
        cancel: &CancellationToken,
    ) -> Result<(), SendFail> {
        let pane = self.stream.pane_id().to_owned();
        // Every earlier send was awaited: the channel has taken all it was
        // handed, so the snapshot is as fresh as it can be when it goes out.
        let snapshot = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(SendFail::Cancelled),
            s = self.bridge.snapshot(&pane) => s,
        };
        let head = self.stream.head().max(lagged_at);
        let skipped = head - self.cursor;
        self.counters
            .skipped_bytes
            .fetch_add(skipped, Ordering::Relaxed);
        self.cursor = head;
        match snapshot {
            Ok(bytes) => {
                self.counters.snapshots.fetch_add(1, Ordering::Relaxed);
                tracing::info!(pane = %pane, skipped, "phone fell behind: snapshot instead of the backlog");
                let numbering = self.numbering(head, true);
                send_output(
                    &self.link,
                    self.compressor.as_mut(),
                    &bytes,
                    numbering,
                    cancel,
                )
                .await
            }
            Err(e) => {
                // The pane is likely gone; the stream's end says so next.
                tracing::info!(pane = %pane, skipped, error = %e, "lag snapshot failed");
                Ok(())
            }
        }
    }
}
