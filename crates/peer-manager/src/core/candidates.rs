//! The remote-candidate part of [`PeerCore`](super::PeerCore): at most 64
//! buffered before the remote description is set (peer-lifecycle.md §2), and at most 64 more added
//! once it is set (muxlink: each one makes the ICE agent probe another address,
//! so a phone or server flooding candidates must not grow that work). Extra
//! candidates are dropped; both counts start again at an ICE restart.

use std::collections::VecDeque;

/// Most candidates kept while waiting for the answer.
pub const MAX_EARLY_CANDIDATES: usize = 64;
/// Most candidates added after the answer, per ICE round.
pub const MAX_LATE_CANDIDATES: usize = 64;

/// What to do with one remote candidate.
#[derive(Debug, PartialEq, Eq)]
pub enum Push<T> {
    /// The remote description is set: add it now.
    AddNow(T),
    /// Kept until the answer is applied.
    Buffered,
    /// Buffer full, or the cap after the answer reached: dropped (log it).
    Dropped,
}

/// Candidates waiting for the remote description, in arrival order.
#[derive(Debug)]
pub struct CandidateBuffer<T> {
    remote_set: bool,
    pending: VecDeque<T>,
    cap: usize,
    /// Candidates added after the answer in this ICE round.
    added_late: usize,
    late_cap: usize,
    /// Candidates dropped in this ICE round.
    dropped: usize,
}

impl<T> Default for CandidateBuffer<T> {
    fn default() -> Self {
        Self::with_caps(MAX_EARLY_CANDIDATES, MAX_LATE_CANDIDATES)
    }
}

impl<T> CandidateBuffer<T> {
    /// A buffer holding at most `cap` candidates before the answer, and
    /// letting [`MAX_LATE_CANDIDATES`] through after it.
    pub fn new(cap: usize) -> Self {
        Self::with_caps(cap, MAX_LATE_CANDIDATES)
    }

    /// At most `early` buffered before the answer and `late` added after it.
    pub fn with_caps(early: usize, late: usize) -> Self {
        Self {
            remote_set: false,
            pending: VecDeque::new(),
            cap: early,
            added_late: 0,
            late_cap: late,
            dropped: 0,
        }
    }

    /// A candidate arrived from the phone.
    pub fn push(&mut self, c: T) -> Push<T> {
        if self.remote_set {
            if self.added_late >= self.late_cap {
                self.dropped += 1;
                return Push::Dropped;
            }
            self.added_late += 1;
            Push::AddNow(c)
        } else if self.pending.len() >= self.cap {
            self.dropped += 1;
            Push::Dropped
        } else {
            self.pending.push_back(c);
            Push::Buffered
        }
    }

    /// The remote description was set: returns the buffered candidates in
    /// arrival order; later candidates are added at once.
    pub fn set_remote(&mut self) -> Vec<T> {
        self.remote_set = true;
        self.pending.drain(..).collect()
    }

    /// An ICE restart offer was sent: wait for the new answer again and forget
    /// candidates of the previous round.
    pub fn reset(&mut self) {
        self.remote_set = false;
        self.pending.clear();
        self.added_late = 0;
        self.dropped = 0;
    }

    /// Candidates dropped in this ICE round (for logs).
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Number of buffered candidates.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_candidates_buffered_in_order_then_flushed() {
        let mut b = CandidateBuffer::default();
        assert_eq!(b.push(1), Push::Buffered);
        assert_eq!(b.push(2), Push::Buffered);
        assert_eq!(b.set_remote(), vec![1, 2]);
        assert_eq!(b.push(3), Push::AddNow(3));
        assert!(b.is_empty());
    }

    #[test]
    fn at_most_64_buffered() {
        let mut b = CandidateBuffer::default();
        for i in 0..64 {
            assert_eq!(b.push(i), Push::Buffered);
        }
        assert_eq!(b.push(64), Push::Dropped);
        assert_eq!(b.len(), 64);
        assert_eq!(b.set_remote(), (0..64).collect::<Vec<_>>());
    }

    #[test]
    fn at_most_64_added_after_the_answer() {
        let mut b = CandidateBuffer::default();
        assert_eq!(b.push(0), Push::Buffered);
        assert_eq!(b.set_remote(), vec![0]);
        for i in 1..=64 {
            assert_eq!(b.push(i), Push::AddNow(i), "{i}");
        }
        assert_eq!(b.push(65), Push::Dropped);
        assert_eq!(b.push(66), Push::Dropped);
        assert_eq!(b.dropped(), 2);
        // An ICE restart starts a new round with fresh bounds.
        b.reset();
        assert_eq!(b.dropped(), 0);
        b.set_remote();
        assert_eq!(b.push(1), Push::AddNow(1));
    }

    #[test]
    fn both_bounds_hold_together() {
        let mut b = CandidateBuffer::with_caps(2, 3);
        assert_eq!(b.push(1), Push::Buffered);
        assert_eq!(b.push(2), Push::Buffered);
        assert_eq!(b.push(3), Push::Dropped);
        assert_eq!(b.set_remote(), vec![1, 2]);
        for i in 4..7 {
            assert_eq!(b.push(i), Push::AddNow(i));
        }
        assert_eq!(b.push(7), Push::Dropped);
        assert_eq!(b.dropped(), 2);
    }

    #[test]
    fn ice_restart_resets_remote_set_and_clears() {
        let mut b = CandidateBuffer::default();
        b.set_remote();
        b.reset();
        assert_eq!(b.push(7), Push::Buffered);
        b.reset();
        assert!(b.is_empty());
        assert_eq!(b.push(8), Push::Buffered);
        assert_eq!(b.set_remote(), vec![8]);
    }
}
