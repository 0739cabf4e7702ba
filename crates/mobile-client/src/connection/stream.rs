//! Stream v2 on the phone (docs/stream-v2.md §3–§5), sans IO: the output of
//! the current attachment turned into one byte stream in which every byte is
//! applied once, whichever channel delivered it first. The event reader feeds
//! it `attached`, every reliable `output` and every fast-channel message, and
//! queues what it returns; it keeps the counters the library exposes
//! ([`StreamStats`]) and the position a later connection resumes from
//! ([`ResumePoint`]).
//!
//! Reliable outputs are always inflated, in order, even when their verdict is
//! "duplicate": the inflater must stay in step with the host's compressor.
//! Fast copies are plaintext and apply only to the pane of the current
//! attachment, and never between a snapshot and the reliable stream output
//! after it (§3).

use terminal_protocol::{
    DecompressError, Decompressor, Event, InOrder, MAX_FAST_COPY, Verdict, Via,
};

/// Counters of the stream v2 reader of one connection (all attachments).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Stream bytes that will never arrive: forward jumps of snapshots, gaps
    /// of reliable outputs, and the distance from a `resumeFrom` the host
    /// could no longer serve to where it continued.
    pub bytes_skipped: u64,
    /// Snapshots received (a snapshot split into parts counts once).
    pub snapshots: u64,
    /// Outputs dropped because every byte had been applied already (the
    /// other channel's copy won), reliable and fast alike.
    pub duplicates_dropped: u64,
    /// Fast-channel output copies that were applied (they beat their
    /// reliable copy).
    pub fast_applied: u64,
    /// Fast-channel messages dropped unapplied: ahead of the stream, for
    /// another pane, during a snapshot, not an output copy, or undecodable.
    pub fast_dropped: u64,
    /// `input` fast copies handed to SCTP (each also went reliably).
    pub fast_inputs_sent: u64,
}

/// Where the byte stream handed out for a pane stopped: what a new connection
/// asks to resume from (`attach{offsets, resumeFrom}`, §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    /// The pane of the attachment.
    pub pane_id: String,
    /// The offset of the next byte of its stream not handed out yet.
    pub next: u64,
}

/// The attachment the reader is applying output for.
struct Current {
    pane_id: String,
    inflater: Option<Decompressor>,
    /// `Some` iff the host answered with offsets.
    order: Option<InOrder>,
    /// The last reliable output was a snapshot part at this offset.
    in_snapshot: Option<u64>,
    /// Fast copies may be applied: not between a snapshot (or an `attached`
    /// that was not `resumed`, which a snapshot follows) and the next
    /// reliable stream output, since a fast copy could overtake the
    /// snapshot or its later parts and be drawn before the screen it follows.
    fast_ok: bool,
}

/// What became of one message fed to [`OutputStream`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Applied {
    /// Hand these plaintext bytes out as an `output` event.
    Output(Vec<u8>),
    /// Nothing to hand out (a duplicate or a dropped copy).
    Nothing,
    /// The output could not be inflated (the reason).
    InflateFailed(String),
}

/// The phone's output state for one connection.
#[derive(Default)]
pub(super) struct OutputStream {
    current: Option<Current>,
    /// Output before any attachment (or after one ended) is passed through;
    /// the inflater of the last attachment stays in use for it, as before
    /// stream v2.
    stale_inflater: Option<Decompressor>,
    stats: StreamStats,
}

impl OutputStream {
    /// The counters so far.
    pub(super) fn stats(&self) -> StreamStats {
        self.stats
    }

    /// The current attachment's pane and next offset, when it has offsets.
    pub(super) fn resume_point(&self) -> Option<ResumePoint> {
        let c = self.current.as_ref()?;
        let next = c.order.as_ref()?.next()?;
        Some(ResumePoint {
            pane_id: c.pane_id.clone(),
            next,
        })
    }

    /// `attached`: a new attachment starts a new deflate stream (spec §7)
    /// and, with `offset`, a new [`InOrder`]. `resume_from` is what the
    /// attach asked to continue from: when the host answered without
    /// `resumed`, the bytes between it and `offset` are counted as skipped.
    pub(super) fn attached(
        &mut self,
        pane_id: &str,
        compression: Option<&str>,
        offset: Option<u64>,
        resumed: bool,
        resume_from: Option<u64>,
    ) {
        if let (Some(offset), Some(from), false) = (offset, resume_from, resumed) {
            self.stats.bytes_skipped += offset.saturating_sub(from);
        }
        self.stale_inflater = None;
        self.current = Some(Current {
            pane_id: pane_id.to_owned(),
            inflater: (compression == Some("deflate")).then(Decompressor::new),
            order: offset.map(InOrder::starting_at),
            in_snapshot: None,
            fast_ok: resumed,
        });
    }

    /// `detached` or `pane_closed` of the current pane: the attachment ended.
    pub(super) fn ended(&mut self) {
        if let Some(c) = self.current.take() {
            self.stale_inflater = c.inflater;
        }
    }

    /// The pane of the current attachment.
    pub(super) fn pane(&self) -> Option<&str> {
        self.current.as_ref().map(|c| c.pane_id.as_str())
    }

    /// An `output` from the reliable channel.
    pub(super) fn reliable(&mut self, data: &[u8], offset: Option<u64>, snapshot: bool) -> Applied {
        let Some(c) = self.current.as_mut() else {
            return match self.stale_inflater.as_mut() {
                None => Applied::Output(data.to_vec()),
                Some(d) => inflate(d, data)
                    .map_or_else(|e| Applied::InflateFailed(e.to_string()), Applied::Output),
            };
        };
        // Every reliable output goes through the inflater, whatever its verdict.
        let plain = match c.inflater.as_mut() {
            None => data.to_vec(),
            Some(d) => match inflate(d, data) {
                Ok(p) => p,
                Err(e) => return Applied::InflateFailed(e.to_string()),
            },
        };
        let (Some(order), Some(offset)) = (c.order.as_mut(), offset) else {
            return Applied::Output(plain);
        };
        if snapshot {
            c.fast_ok = false;
            if c.in_snapshot != Some(offset) {
                self.stats.snapshots += 1;
                c.in_snapshot = Some(offset);
            }
            self.stats.bytes_skipped += order.jump_to(offset);
            return Applied::Output(plain);
        }
        c.in_snapshot = None;
        c.fast_ok = true;
        match order.accept(offset, plain.len(), Via::Reliable) {
            Verdict::Apply { skip } => Applied::Output(tail(plain, skip)),
            Verdict::Gap { missing } => {
                self.stats.bytes_skipped += missing;
                Applied::Output(plain)
            }
            Verdict::Duplicate => {
                self.stats.duplicates_dropped += 1;
                Applied::Nothing
            }
            // Not a verdict of the reliable channel; nothing to apply.
            Verdict::Ahead => Applied::Nothing,
        }
    }

    /// One message from the fast channel (raw bytes): applied only if it is
    /// a stream `output` copy for the current pane, within the size bound.
    /// One message from the fast channel (raw bytes): applied only if it is
    /// a stream `output` copy for the current pane, within the size bound.
    pub(super) fn fast(&mut self, bytes: &[u8]) -> Applied {
        let (data, offset, pane_id) = match Event::decode(bytes) {
            Ok(Event::Output {
                data,
                offset: Some(offset),
                snapshot: false,
                pane_id: Some(pane_id),
            }) if data.len() <= MAX_FAST_COPY => (data, offset, pane_id),
            _ => return self.fast_drop(),
        };
        let Some(c) = self.current.as_mut() else {
            return self.fast_drop();
        };
        if c.pane_id != pane_id || !c.fast_ok {
            return self.fast_drop();
        }
        let Some(order) = c.order.as_mut() else {
            return self.fast_drop();
        };
        match order.accept(offset, data.len(), Via::Fast) {
            Verdict::Apply { skip } => {
                self.stats.fast_applied += 1;
                Applied::Output(tail(data, skip))
            }
            Verdict::Duplicate => {
                self.stats.duplicates_dropped += 1;
                Applied::Nothing
            }
            Verdict::Ahead | Verdict::Gap { .. } => self.fast_drop(),
        }
    }

    fn fast_drop(&mut self) -> Applied {
        self.stats.fast_dropped += 1;
        Applied::Nothing
    }
}

fn inflate(d: &mut Decompressor, data: &[u8]) -> Result<Vec<u8>, DecompressError> {
    d.decompress(data)
}

fn tail(mut data: Vec<u8>, skip: usize) -> Vec<u8> {
    data.drain(..skip.min(data.len()));
    data
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
