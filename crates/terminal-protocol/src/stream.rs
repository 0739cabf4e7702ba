//! Stream v2 (docs/stream-v2.md): the numbers both ends agree on and
//! [`InOrder`], the one rule by which a receiver applies each byte of an
//! offset-carrying stream exactly once, whichever channel delivered it first.
//! The host runs it on `input`, the phone on `output`; both feed it offsets
//! and lengths and act on the [`Verdict`]. No I/O, no clock.

use std::time::Duration;

/// Label of the second DataChannel: unordered, `maxRetransmits: 0`, opened
/// by the phone after `auth_ok` (§4).
pub const FAST_CHANNEL_LABEL: &str = "terminal-fast";

/// Largest `data` a fast-channel copy carries (plaintext, never compressed).
/// Larger messages go only over the reliable `terminal` channel.
pub const MAX_FAST_COPY: usize = 1024;

/// Largest offset on the wire: 2^53 − 1, exact in a JavaScript number.
pub const MAX_STREAM_OFFSET: u64 = (1 << 53) - 1;

/// Bytes of a pane's stream the host keeps for resuming (§5).
pub const RESUME_RING_BYTES: usize = 1 << 20;

/// How far a phone may fall behind the pane (bytes read from the pane and
/// not yet accepted by its channel) before the host discards and later sends
/// a snapshot (§6). Equal to the ring: what the ring no longer holds cannot
/// be sent.
pub const LAG_BOUND_BYTES: usize = RESUME_RING_BYTES;

/// How long the host keeps reading a pane into its ring after the phone's
/// peer went away, so the next peer of the same phone can resume (§5).
pub const RESUME_WINDOW: Duration = Duration::from_secs(60);

/// The channel a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The ordered, reliable `terminal` channel: authoritative.
    Reliable,
    /// The unordered, unreliable fast channel: copies only.
    Fast,
}

/// What to do with a message of `len` bytes at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Apply `data[skip..]`; the first `skip` bytes were applied already (an
    /// overlapping copy) — 0 in the normal case.
    Apply {
        /// Leading bytes to leave out.
        skip: usize,
    },
    /// Every byte was applied already (the other channel's copy won).
    Duplicate,
    /// A fast copy from beyond the next expected byte: dropped, the reliable
    /// copy of it arrives in order later.
    Ahead,
    /// A reliable message beyond the next expected byte: apply it, and know
    /// that `missing` bytes before it will never come (the sender skipped
    /// them; a peer that follows the spec announces that with a snapshot).
    Gap {
        /// Bytes between the expected offset and this message.
        missing: u64,
    },
}

/// The receiver's position in one offset-carrying stream.
///
/// Reliable messages arrive in order, so everything a fast copy delivered
/// early comes again reliably: comparing each message's byte range with the
/// next expected offset is all it takes to apply every byte once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InOrder {
    next: Option<u64>,
}

impl InOrder {
    /// A stream whose first offset is not known yet: the first reliable
    /// message sets it; fast copies wait for that.
    pub fn new() -> InOrder {
        InOrder { next: None }
    }

    /// A stream that continues at `offset` (e.g. `attached.offset`).
    pub fn starting_at(offset: u64) -> InOrder {
        InOrder { next: Some(offset) }
    }

    /// The next offset expected, if known.
    pub fn next(&self) -> Option<u64> {
        self.next
    }

    /// Moves to `offset` (a snapshot says the stream continues there) and
    /// returns how many bytes were skipped forward (0 when not forward).
    pub fn jump_to(&mut self, offset: u64) -> u64 {
        let skipped = self.next.map_or(0, |n| offset.saturating_sub(n));
        self.next = Some(offset);
        skipped
    }

    /// Decides about `len` bytes starting at `offset` that arrived `via` a
    /// channel, and advances past whatever it says to apply.
    pub fn accept(&mut self, offset: u64, len: usize, via: Via) -> Verdict {
        let end = offset.saturating_add(len as u64);
        let Some(next) = self.next else {
            return match via {
                Via::Fast => Verdict::Ahead,
                Via::Reliable => {
                    self.next = Some(end);
                    Verdict::Apply { skip: 0 }
                }
            };
        };
        if offset == next {
            self.next = Some(end);
            return Verdict::Apply { skip: 0 };
        }
        if offset < next {
            if end <= next {
                return Verdict::Duplicate;
            }
            self.next = Some(end);
            // `next - offset < len`, which is a usize.
            let skip = usize::try_from(next - offset).unwrap_or(len);
            return Verdict::Apply { skip };
        }
        match via {
            Via::Fast => Verdict::Ahead,
            Via::Reliable => {
                self.next = Some(end);
                Verdict::Gap {
                    missing: offset - next,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reliable_in_order_applies_everything() {
        let mut s = InOrder::starting_at(100);
        assert_eq!(s.accept(100, 5, Via::Reliable), Verdict::Apply { skip: 0 });
        assert_eq!(s.accept(105, 3, Via::Reliable), Verdict::Apply { skip: 0 });
        assert_eq!(s.next(), Some(108));
    }

    #[test]
    fn fast_copy_first_makes_the_reliable_one_a_duplicate() {
        let mut s = InOrder::starting_at(0);
        assert_eq!(s.accept(0, 1, Via::Fast), Verdict::Apply { skip: 0 });
        assert_eq!(s.accept(0, 1, Via::Reliable), Verdict::Duplicate);
        assert_eq!(s.accept(1, 1, Via::Reliable), Verdict::Apply { skip: 0 });
        assert_eq!(s.accept(1, 1, Via::Fast), Verdict::Duplicate);
    }

    #[test]
    fn fast_copy_ahead_of_a_lost_one_waits_for_the_reliable_channel() {
        let mut s = InOrder::starting_at(10);
        assert_eq!(s.accept(12, 2, Via::Fast), Verdict::Ahead);
        assert_eq!(s.accept(10, 2, Via::Reliable), Verdict::Apply { skip: 0 });
        assert_eq!(s.accept(12, 2, Via::Reliable), Verdict::Apply { skip: 0 });
    }

    #[test]
    fn unknown_start_takes_the_first_reliable_offset() {
        let mut s = InOrder::new();
        assert_eq!(s.accept(7, 1, Via::Fast), Verdict::Ahead);
        assert_eq!(s.accept(7, 1, Via::Reliable), Verdict::Apply { skip: 0 });
        assert_eq!(s.next(), Some(8));
    }

    #[test]
    fn overlap_applies_only_the_new_tail() {
        let mut s = InOrder::starting_at(10);
        assert_eq!(s.accept(8, 5, Via::Reliable), Verdict::Apply { skip: 2 });
        assert_eq!(s.next(), Some(13));
    }

    #[test]
    fn reliable_gap_is_reported_and_applied() {
        let mut s = InOrder::starting_at(10);
        assert_eq!(s.accept(15, 1, Via::Reliable), Verdict::Gap { missing: 5 });
        assert_eq!(s.next(), Some(16));
    }

    #[test]
    fn snapshot_jump_counts_skipped_bytes() {
        let mut s = InOrder::starting_at(10);
        assert_eq!(s.jump_to(1010), 1000);
        assert_eq!(s.accept(1010, 1, Via::Fast), Verdict::Apply { skip: 0 });
        assert_eq!(s.jump_to(5), 0);
    }
}
