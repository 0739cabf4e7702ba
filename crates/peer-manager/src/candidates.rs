//! Bounded buffer for remote ICE candidates that arrive before the remote
//! description is set (peer-lifecycle.md §2: at most 64 per peer, extra dropped).

use std::collections::VecDeque;

/// Most candidates kept while waiting for the answer.
pub const MAX_EARLY_CANDIDATES: usize = 64;

/// What to do with one remote candidate.
#[derive(Debug, PartialEq, Eq)]
pub enum Push<T> {
    /// The remote description is set: add it now.
    AddNow(T),
    /// Kept until the answer is applied.
    Buffered,
    /// Buffer full: dropped (log it).
    Dropped,
}

/// Candidates waiting for the remote description, in arrival order.
#[derive(Debug)]
pub struct CandidateBuffer<T> {
    remote_set: bool,
    pending: VecDeque<T>,
    cap: usize,
}

impl<T> Default for CandidateBuffer<T> {
    fn default() -> Self {
        Self::new(MAX_EARLY_CANDIDATES)
    }
}

impl<T> CandidateBuffer<T> {
    /// A buffer holding at most `cap` candidates.
    pub fn new(cap: usize) -> Self {
        Self {
            remote_set: false,
            pending: VecDeque::new(),
            cap,
        }
    }

    /// A candidate arrived from the phone.
    pub fn push(&mut self, c: T) -> Push<T> {
        if self.remote_set {
            Push::AddNow(c)
        } else if self.pending.len() >= self.cap {
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
