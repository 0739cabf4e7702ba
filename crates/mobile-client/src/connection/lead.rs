//! The reliable channel's send queue under stream v2's copy lead
//! (docs/stream-v2.md §4), sans IO: a fast copy and its reliable original
//! must not leave in one datagram (SCTP bundles every channel's queued
//! chunks into its next packet, so they would be lost together), so after a
//! copy, reliable messages are held until [`FAST_COPY_LEAD`] has passed since
//! the last copy before them, and keep their order: a message pushed while
//! others wait queues behind them, copied or not. Each held message keeps the
//! deadline it got when pushed, so under fast typing the first key's
//! original still leaves one lead after its own copy instead of waiting for
//! a pause (as the host's output `held` in `agent-bin`'s pump). No clock and
//! no tokio here: the sender task (`sender.rs`) feeds it `Instant`s and
//! sleeps until [`LeadQueue::next_deadline`]; the web client's `LeadQueue`
//! (`web/src/net/lead.ts`) is the same rule.
//!
//! [`FAST_COPY_LEAD`]: rtc_transport::FAST_COPY_LEAD

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most this many messages are held; a full queue hands the message back
/// ([`Push::Full`]) so the sender stops taking more and callers wait.
pub(super) const MAX_HELD: usize = 256;
/// At most this many bytes are held (one message may go over it: a full
/// queue is one that has reached it).
pub(super) const MAX_HELD_BYTES: usize = 1 << 20;

/// What [`LeadQueue::push`] decided.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Push {
    /// Nothing waits and no copy is within the lead: send it now.
    Send(Vec<u8>),
    /// Held; [`LeadQueue::due`] hands it out at its deadline.
    Held,
    /// The queue is full: the message is handed back, to be pushed again
    /// once [`LeadQueue::due`] has made room.
    Full(Vec<u8>),
}

/// Reliable messages held behind the last fast copy, in push order.
#[derive(Debug)]
pub(super) struct LeadQueue {
    lead: Duration,
    /// Each message with the instant it may leave; deadlines never decrease
    /// front to back, so the front is the next one due.
    held: VecDeque<(Instant, Vec<u8>)>,
    held_bytes: usize,
    /// When the latest fast copy went out.
    last_copy: Option<Instant>,
}

impl LeadQueue {
    /// An empty queue holding messages `lead` after a copy.
    pub(super) fn new(lead: Duration) -> LeadQueue {
        LeadQueue {
            lead,
            held: VecDeque::new(),
            held_bytes: 0,
            last_copy: None,
        }
    }

    /// A fast copy went out at `at`: messages pushed from now on wait until
    /// `at + lead`. An earlier instant than one already seen changes nothing.
    pub(super) fn copied(&mut self, at: Instant) {
        self.last_copy = Some(self.last_copy.map_or(at, |t| t.max(at)));
    }

    /// A reliable message at `now`: sent now unless a copy went out less
    /// than the lead ago or earlier messages are held; held otherwise, or
    /// handed back when the queue is full.
    pub(super) fn push(&mut self, msg: Vec<u8>, now: Instant) -> Push {
        let lead_over = self.last_copy.map(|t| t + self.lead);
        if self.held.is_empty() && lead_over.is_none_or(|t| now >= t) {
            return Push::Send(msg);
        }
        if !self.has_room() {
            return Push::Full(msg);
        }
        // Behind everything held (order), and not before the lead is over.
        let after_held = self.held.back().map(|(t, _)| *t);
        let due = match (lead_over, after_held) {
            (Some(a), Some(b)) => a.max(b),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => now,
        };
        self.held_bytes += msg.len();
        self.held.push_back((due, msg));
        Push::Held
    }

    /// The held messages whose deadline is at or before `now`, in order.
    pub(super) fn due(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let n = self.held.iter().take_while(|(t, _)| *t <= now).count();
        let out: Vec<Vec<u8>> = self.held.drain(..n).map(|(_, m)| m).collect();
        self.held_bytes -= out.iter().map(Vec::len).sum::<usize>();
        out
    }

    /// When the next held message is due (`None`: nothing is held).
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.held.front().map(|(t, _)| *t)
    }

    /// True while another message may be held.
    pub(super) fn has_room(&self) -> bool {
        self.held.len() < MAX_HELD && self.held_bytes < MAX_HELD_BYTES
    }

    /// True when nothing is held.
    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAD: Duration = Duration::from_millis(3);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn msg(b: u8) -> Vec<u8> {
        vec![b]
    }

    #[test]
    fn without_a_copy_every_message_goes_at_once() {
        let t0 = Instant::now();
        let mut q = LeadQueue::new(LEAD);
        assert_eq!(q.push(msg(1), t0), Push::Send(msg(1)));
        assert_eq!(q.push(msg(2), t0), Push::Send(msg(2)));
        assert_eq!(q.next_deadline(), None);
        assert!(q.due(t0 + ms(100)).is_empty());
    }

    #[test]
    fn an_original_waits_one_lead_after_its_copy_and_order_holds() {
        let t0 = Instant::now();
        let mut q = LeadQueue::new(LEAD);
        q.copied(t0);
        assert_eq!(q.push(msg(1), t0), Push::Held);
        // Not copied, but behind the held original.
        assert_eq!(q.push(msg(2), t0 + ms(1)), Push::Held);
        q.copied(t0 + ms(1));
        assert_eq!(q.push(msg(3), t0 + ms(1)), Push::Held);
        assert_eq!(q.next_deadline(), Some(t0 + LEAD));
        assert!(q.due(t0 + ms(2)).is_empty());
        // The second message waits for the lead of the copy before it (t0),
        // the third for its own copy's (t0 + 1 ms).
        assert_eq!(q.due(t0 + LEAD), vec![msg(1), msg(2)]);
        assert_eq!(q.next_deadline(), Some(t0 + ms(1) + LEAD));
        assert_eq!(q.due(t0 + ms(1) + LEAD), vec![msg(3)]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_message_after_the_lead_goes_straight_out() {
        let t0 = Instant::now();
        let mut q = LeadQueue::new(LEAD);
        q.copied(t0);
        assert_eq!(q.push(msg(1), t0 + LEAD), Push::Send(msg(1)));
        assert_eq!(q.push(msg(2), t0 + ms(50)), Push::Send(msg(2)));
        assert!(q.is_empty());
    }

    #[test]
    fn a_message_after_the_lead_still_waits_behind_held_ones() {
        let t0 = Instant::now();
        let mut q = LeadQueue::new(LEAD);
        q.copied(t0);
        assert_eq!(q.push(msg(1), t0), Push::Held);
        // The lead is over, but the sender has not flushed yet: never overtake.
        assert_eq!(q.push(msg(2), t0 + ms(10)), Push::Held);
        assert_eq!(q.due(t0 + ms(10)), vec![msg(1), msg(2)]);
    }

    #[test]
    fn a_copy_during_the_wait_moves_the_deadline_of_what_follows_it() {
        let t0 = Instant::now();
        let mut q = LeadQueue::new(LEAD);
        q.copied(t0);
        assert_eq!(q.push(msg(1), t0), Push::Held);
        q.copied(t0 + ms(2));
        assert_eq!(q.push(msg(2), t0 + ms(2)), Push::Held);
        // A resize after that copy waits for it too, not only for the first.
        assert_eq!(q.push(msg(3), t0 + ms(4)), Push::Held);
        assert_eq!(q.due(t0 + LEAD), vec![msg(1)]);
        assert_eq!(q.next_deadline(), Some(t0 + ms(2) + LEAD));
        assert!(q.due(t0 + ms(4)).is_empty());
        assert_eq!(q.due(t0 + ms(5)), vec![msg(2), msg(3)]);
        // Once it passed, messages go straight out again.
        assert_eq!(q.push(msg(4), t0 + ms(5)), Push::Send(msg(4)));
    }

    #[test]
    fn an_older_copy_instant_does_not_move_the_lead_back() {
        let t0 = Instant::now();
        let mut q = LeadQueue::new(LEAD);
        q.copied(t0 + ms(5));
        q.copied(t0);
        assert_eq!(q.push(msg(1), t0 + LEAD), Push::Held);
        assert_eq!(q.next_deadline(), Some(t0 + ms(5) + LEAD));
    }

    #[test]
    fn a_full_queue_hands_the_message_back_until_room_is_made() {
        let t0 = Instant::now();
        let mut q = LeadQueue::new(LEAD);
        q.copied(t0);
        for i in 0..MAX_HELD {
            assert_eq!(q.push(vec![0; i % 7 + 1], t0), Push::Held);
        }
        assert!(!q.has_room());
        assert_eq!(q.push(msg(9), t0), Push::Full(msg(9)));
        assert_eq!(q.due(t0 + LEAD).len(), MAX_HELD);
        assert!(q.has_room());
        assert_eq!(q.push(msg(9), t0 + LEAD), Push::Send(msg(9)));
    }

    #[test]
    fn the_held_bytes_are_bounded_too() {
        let t0 = Instant::now();
        let mut q = LeadQueue::new(LEAD);
        q.copied(t0);
        let big = 64 * 1024;
        for _ in 0..MAX_HELD_BYTES / big {
            assert_eq!(q.push(vec![0; big], t0), Push::Held);
        }
        assert!(!q.has_room());
        assert_eq!(q.push(msg(1), t0), Push::Full(msg(1)));
        q.due(t0 + LEAD);
        assert!(q.has_room());
        assert_eq!(q.held_bytes, 0);
    }
}
