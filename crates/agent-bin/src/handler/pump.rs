//! The sender task of one streaming attachment (docs/stream-v2.md §2, §4,
//! §6): from its own offset in the pane stream, chunk → deflate (if
//! negotiated) → `output` events (with offsets when asked), each awaited, so
//! backpressure runs only between the ring and this phone. A phone whose
//! offset was overwritten (more than `LAG_BOUND_BYTES` behind) gets a fresh
//! snapshot and continues from the head. Small stream outputs of attachments
//! with offsets also go, first and raw, as fast-channel copies.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rtc_transport::FAST_COPY_LEAD;
use terminal_protocol::{Compressor, Event, MAX_FAST_COPY};
use tmux_bridge::TmuxBridge;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::PeerLink;
use super::deflate_level::{LevelChooser, PieceCost};
use super::ending::Cause;
use super::output::{Numbering, OutputError, data_budget, numbered_events, plain_budget};
use super::settle;
use super::stream::{PaneStream, StreamRead, StreamUse};

/// How long stopping a sender task waits for it.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the lag rule (§6) has done since the agent started.
#[derive(Debug, Default)]
pub(super) struct LagCounters {
    pub skipped_bytes: AtomicU64,
    pub snapshots: AtomicU64,
    /// Snapshots sent again once the pane went quiet (settle.rs).
    pub settle_snapshots: AtomicU64,
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
) -> Result<PieceCost, SendFail> {
    if bytes.is_empty() {
        return Ok(PieceCost::default());
    }
    let budget = data_budget(link.max_message_size());
    let started = std::time::Instant::now();
    let events = numbered_events(bytes, compressor, budget, numbering)
        .map_err(|OutputError::Compression| SendFail::Compress)?;
    let compressed = std::time::Instant::now();
    let wire = events.iter().map(output_len).sum();
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
    Ok(PieceCost {
        compressing: compressed - started,
        sending: compressed.elapsed(),
        plain: bytes.len(),
        wire,
    })
}

/// The bytes an `output` event carries (compressed, when it is).
fn output_len(event: &Event) -> usize {
    match event {
        Event::Output { data, .. } => data.len(),
        _ => 0,
    }
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
    /// The deflate level of the next piece (with a compressor).
    pub levels: LevelChooser,
    /// The last snapshot sent may not match the cursor: send a fresh one
    /// once the pane is quiet (settle.rs).
    pub unsettled: bool,
}

impl Sender {
    /// Sends stream bytes (or, with `snapshot`, a screen) numbered at the
    /// cursor: a snapshot's offset is where the stream continues after it.
    async fn send_at_cursor(
        &mut self,
        bytes: &[u8],
        snapshot: bool,
        cancel: &CancellationToken,
    ) -> Result<PieceCost, SendFail> {
        let numbering = match (self.offsets, snapshot) {
            (false, _) => Numbering::Plain,
            (true, false) => Numbering::Stream(self.cursor),
            (true, true) => Numbering::Snapshot(self.cursor),
        };
        send_output(
            &self.link,
            self.compressor.as_mut(),
            bytes,
            numbering,
            cancel,
        )
        .await
    }

    /// The output loop. Returns how the attachment ends, or `None` when
    /// cancelled (whoever cancelled is ending it).
    ///
    /// Fast copies go out as soon as their bytes are read; each original
    /// waits in `held` until [`FAST_COPY_LEAD`] after its copy, while later
    /// bytes keep getting their copies. Holding the original inside the send
    /// instead would make the next keystroke's echo wait out the previous
    /// one's hold: 3 ms at typing speed.
    pub(super) async fn run(&mut self, cancel: &CancellationToken) -> Option<Cause> {
        let mut head = self.stream.subscribe();
        let max = plain_budget(
            data_budget(self.link.max_message_size()),
            self.compressor.is_some(),
        );
        let mut held = Held::new(self.cursor);
        loop {
            // Marked seen before reading, so an append after the read wakes us.
            head.borrow_and_update();
            if self.offsets {
                self.copy_new_bytes(&mut held).await;
            } else {
                held.release_all(self.stream.head());
            }
            let now = tokio::time::Instant::now();
            let due = held.due_end(self.cursor, now);
            let sent = if due > self.cursor {
                let want = usize::try_from(due - self.cursor).map_or(max, |n| n.min(max));
                match self.stream.read_from(self.cursor, want) {
                    StreamRead::Bytes(bytes) => self.send_stream(&bytes, cancel).await,
                    StreamRead::Lagged { head } => {
                        let r = self.catch_up(head, cancel).await;
                        held = Held::new(self.cursor);
                        r
                    }
                    StreamRead::Ended => return Some(Cause::PaneExited),
                    // The ring held these bytes a moment ago; read again.
                    StreamRead::Wait => Ok(()),
                }
            } else {
                match self.stream.read_from(self.cursor, 1) {
                    StreamRead::Lagged { head } => {
                        let r = self.catch_up(head, cancel).await;
                        held = Held::new(self.cursor);
                        r
                    }
                    StreamRead::Ended if held.is_empty() => return Some(Cause::PaneExited),
                    _ => {
                        let mut wake = held.next_due();
                        if self.unsettled && held.is_empty() {
                            match settle::quiet_from(self.stream.last_append()) {
                                Some(at) if at > now => {
                                    wake = Some(wake.map_or(at, |w| w.min(at)));
                                }
                                _ => {
                                    if let Err(fail) = self.settle(cancel).await {
                                        return fail.cause();
                                    }
                                    continue;
                                }
                            }
                        }
                        tokio::select! {
                            biased;
                            _ = cancel.cancelled() => return None,
                            // The stream outlives its senders; a closed watch
                            // would mean it is gone: re-read and see `Ended`.
                            _ = head.changed() => {}
                            _ = sleep_until_some(wake) => {}
                        }
                        Ok(())
                    }
                }
            };
            if let Err(fail) = sent {
                return fail.cause();
            }
            held.sent_up_to(self.cursor);
        }
    }

    /// Sends the fast copy of the bytes after the last copied offset when
    /// they are few (§4: at most `MAX_FAST_COPY`), and records when, so the
    /// original waits; more bytes than that go reliably only, with no wait.
    async fn copy_new_bytes(&mut self, held: &mut Held) {
        let from = held.decided_to;
        // Decided from the head alone, so bulk output copies nothing here.
        let head = self.stream.head();
        if head <= from {
            return;
        }
        if head - from > MAX_FAST_COPY as u64 || held.is_full() {
            held.release_all(head);
            return;
        }
        let bytes = match self.stream.read_from(from, MAX_FAST_COPY) {
            StreamRead::Bytes(b) => b,
            // Lagged or ended: the reliable side finds out and acts.
            _ => return,
        };
        let end = from + bytes.len() as u64;
        let copy = Event::Output {
            offset: Some(from),
            data: bytes,
            snapshot: false,
            pane_id: Some(self.stream.pane_id().to_owned()),
        };
        // Best effort: the reliable original is authoritative.
        if self.link.send_fast(&copy).await {
            held.copied(end, tokio::time::Instant::now());
        } else {
            held.release_all(end);
        }
    }

    /// Sends stream bytes at the cursor reliably.
    async fn send_stream(
        &mut self,
        bytes: &[u8],
        cancel: &CancellationToken,
    ) -> Result<(), SendFail> {
        let cost = self.send_at_cursor(bytes, false, cancel).await?;
        self.cursor += bytes.len() as u64;
        if let Some(c) = self.compressor.as_mut() {
            let backlog = self.stream.head().saturating_sub(self.cursor);
            let level = self.levels.after_piece(backlog, &cost);
            if level != c.level() {
                tracing::debug!(
                    pane = self.stream.pane_id(),
                    level,
                    backlog,
                    "deflate level"
                );
                c.set_level(level).map_err(|_| SendFail::Compress)?;
            }
        }
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
        // Every earlier send was awaited: the channel has taken all it was
        // handed, so the snapshot is as fresh as it can be when it goes out.
        let captured = self.capture(cancel).await?;
        let head = captured.head.max(lagged_at);
        let skipped = head - self.cursor;
        self.counters
            .skipped_bytes
            .fetch_add(skipped, Ordering::Relaxed);
        self.cursor = head;
        let pane = self.stream.pane_id();
        match captured.screen {
            Ok(bytes) => {
                self.counters.snapshots.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    pane,
                    skipped,
                    "phone fell behind: snapshot instead of the backlog"
                );
                self.unsettled = !captured.settled;
                self.send_at_cursor(&bytes, true, cancel).await.map(|_| ())
            }
            Err(e) => {
                // The pane is likely gone; the stream's end says so next.
                tracing::info!(pane, skipped, error = %e, "lag snapshot failed");
                Ok(())
            }
        }
    }

    /// The last snapshot may not match the cursor and the pane has been
    /// quiet (settle.rs): the phone has every byte up to the head, so a
    /// settled capture at the head replaces its screen with the true one.
    /// Bytes that arrive meanwhile leave it unsettled for the next quiet.
    async fn settle(&mut self, cancel: &CancellationToken) -> Result<(), SendFail> {
        let captured = self.capture(cancel).await?;
        if !captured.settled || captured.head != self.cursor {
            return Ok(());
        }
        self.unsettled = false;
        match captured.screen {
            Ok(bytes) => {
                self.counters
                    .settle_snapshots
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    pane = self.stream.pane_id(),
                    "pane quiet: settling snapshot"
                );
                self.send_at_cursor(&bytes, true, cancel).await.map(|_| ())
            }
            Err(e) => {
                tracing::info!(pane = self.stream.pane_id(), error = %e, "settling snapshot failed");
                Ok(())
            }
        }
    }

    /// Captures the pane's screen (settle.rs), unless cancelled first.
    async fn capture(&self, cancel: &CancellationToken) -> Result<settle::Captured, SendFail> {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(SendFail::Cancelled),
            c = settle::capture(&self.bridge, &self.stream) => Ok(c),
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Stream bytes already decided on (copied to the fast channel, or not
/// worth a copy) whose reliable originals have not all gone yet: ranges in
/// stream order, each with the instant its copy left (`None`: no copy, no
/// wait). An original leaves no sooner than [`FAST_COPY_LEAD`] after its copy
/// and covers exactly its copy's bytes (docs/stream-v2.md §4).
#[derive(Debug)]
struct Held {
    /// Ranges by their end offset; each starts where the previous ended
    /// (the first at the sender's cursor).
    ranges: VecDeque<(u64, Option<tokio::time::Instant>)>,
    /// Every byte before this offset is in `ranges` or already sent.
    decided_to: u64,
}

/// Ranges whose originals may wait at once; past it, new bytes go without a
/// copy. A typed key's echo needs one; output that arrives in pieces more
/// often than every 3 ms gets at most this many copies per 3 ms (about 2700
/// a second) instead of one per piece, and the rest goes reliably only.
const MAX_HELD: usize = 8;

impl Held {
    fn new(cursor: u64) -> Held {
        Held {
            ranges: VecDeque::new(),
            decided_to: cursor,
        }
    }

    fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    fn is_full(&self) -> bool {
        self.ranges.len() >= MAX_HELD
    }

    /// Bytes up to `end` got a fast copy that left at `at`.
    fn copied(&mut self, end: u64, at: tokio::time::Instant) {
        if end > self.decided_to {
            self.ranges.push_back((end, Some(at)));
            self.decided_to = end;
        }
    }

    /// Bytes up to `end` go without a copy (too many, or no copy was taken).
    fn release_all(&mut self, end: u64) {
        if end <= self.decided_to {
            return;
        }
        match self.ranges.back_mut() {
            Some((last, None)) => *last = end,
            _ => self.ranges.push_back((end, None)),
        }
        self.decided_to = end;
    }

    /// How far the reliable channel may send from `cursor` at `now`: to the
    /// end of the first range if its wait is over (one original per copy).
    fn due_end(&self, cursor: u64, now: tokio::time::Instant) -> u64 {
        match self.ranges.front() {
            Some(&(end, None)) => end,
            Some(&(end, Some(at))) if at + FAST_COPY_LEAD <= now => end,
            _ => cursor,
        }
    }

    /// When the first range's wait ends, if it is waiting.
    fn next_due(&self) -> Option<tokio::time::Instant> {
        match self.ranges.front() {
            Some(&(_, Some(at))) => Some(at + FAST_COPY_LEAD),
            _ => None,
        }
    }

    /// Everything before `cursor` has gone reliably.
    fn sent_up_to(&mut self, cursor: u64) {
        while self.ranges.front().is_some_and(|&(end, _)| end <= cursor) {
            self.ranges.pop_front();
        }
        self.decided_to = self.decided_to.max(cursor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[test]
    fn an_original_waits_for_its_copys_lead_and_covers_exactly_its_bytes() {
        let t0 = Instant::now();
        let mut held = Held::new(100);
        held.copied(101, t0);
        held.copied(103, t0 + Duration::from_millis(1));
        assert_eq!(held.due_end(100, t0), 100);
        assert_eq!(held.next_due(), Some(t0 + FAST_COPY_LEAD));
        // The first copy's wait is over; the second's is not: one original.
        assert_eq!(held.due_end(100, t0 + FAST_COPY_LEAD), 101);
        held.sent_up_to(101);
        assert_eq!(held.due_end(101, t0 + FAST_COPY_LEAD), 101);
        let later = t0 + Duration::from_millis(1) + FAST_COPY_LEAD;
        assert_eq!(held.due_end(101, later), 103);
        held.sent_up_to(103);
        assert!(held.is_empty());
        assert_eq!(held.next_due(), None);
    }

    #[test]
    fn bytes_without_a_copy_go_at_once_but_after_the_held_ones() {
        let t0 = Instant::now();
        let mut held = Held::new(0);
        held.release_all(5000);
        held.release_all(6000);
        assert_eq!(held.ranges.len(), 1, "ranges without a copy merge");
        assert_eq!(held.due_end(0, t0), 6000);
        held.sent_up_to(6000);
        held.copied(6001, t0);
        held.release_all(9000);
        // Order holds: the uncopied bytes wait behind the copied byte.
        assert_eq!(held.due_end(6000, t0), 6000);
        assert_eq!(held.due_end(6000, t0 + FAST_COPY_LEAD), 6001);
        held.sent_up_to(6001);
        assert_eq!(held.due_end(6001, t0), 9000);
    }

    #[test]
    fn nothing_is_decided_twice_and_the_bound_holds() {
        let t0 = Instant::now();
        let mut held = Held::new(10);
        held.copied(10, t0);
        held.release_all(5);
        assert!(held.is_empty());
        for end in 11..11 + MAX_HELD as u64 {
            held.copied(end, t0);
        }
        assert!(held.is_full());
        // A reliable send past the decided bytes (a lag snapshot's jump) moves both.
        held.sent_up_to(500);
        assert!(held.is_empty());
        assert_eq!(held.decided_to, 500);
    }
}
