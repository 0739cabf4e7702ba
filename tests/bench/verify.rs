//! The phone's side of a generator run under the lag rule (docs/stream-v2.md
//! §6), checked against the pattern. The phone gets stream bytes and, when
//! it fell more than 1 MiB behind, a snapshot (a fresh screen) in place of
//! the bytes it missed. So: between the markers, without a snapshot the
//! bytes must be exactly the generator's; a snapshot marks a gap, and the
//! bytes after it must again be the pattern at their true offsets, never a
//! byte twice. Those offsets come from the pattern itself (every line starts
//! with its number; the stretch that ends with the end marker ends at the
//! generator's total), independent of the offsets the protocol claims. It
//! also keeps the phone's last screen: the last snapshot and every byte
//! after it ([`LastScreen`]).

use crate::generator::Written;
use crate::pattern::{END, Fnv, Kind, LINE_BYTES, Pattern, Phase, START, line_head, line_number};
use crate::screen::LastScreen;

/// What the phone received of one generator run, and how it compares.
#[derive(Debug)]
pub struct Delivered {
    kind: Kind,
    /// Where the stream is relative to the markers.
    pub phase: Phase,
    /// Pattern bytes received between the markers (snapshots not counted).
    pub received: u64,
    /// Received bytes found equal to the pattern at their offsets.
    pub matched: u64,
    /// A received byte differed from the pattern at its offset, a stretch
    /// started before the previous one ended (a byte twice), or a stretch
    /// after a gap could not be the pattern at all.
    pub diverged: bool,
    /// Checksum of the received pattern bytes (the generator's only when
    /// nothing was skipped).
    pub hash: Fnv,
    /// Snapshots between the markers: each one a gap.
    pub gaps: u64,
    /// Pattern bytes missing at the gaps (from the stretches' offsets).
    pub skipped: u64,
    /// Bytes of stretches too short to find their offset (a gap followed
    /// before a whole line arrived); not checked.
    pub unlocated: u64,
    /// Offset of the next byte of the current stretch; `None` after a gap
    /// until the stretch is located.
    next: Option<u64>,
    /// The current stretch while it is not located yet.
    pending: Vec<u8>,
    /// Where the last located stretch ended.
    last_end: u64,
    /// The pattern at `next`.
    expected: Pattern,
    /// The last output was a snapshot part (the parts of one arrive back to back).
    in_snapshot: bool,
    scratch: Vec<u8>,
    /// The phone's last screen, when asked for.
    pub screen: Option<LastScreen>,
}

impl Delivered {
    /// A run of the pattern of `kind`; `screen` keeps the last screen too.
    pub fn new(kind: Kind, screen: bool) -> Self {
        Delivered {
            kind,
            phase: Phase::Before,
            received: 0,
            matched: 0,
            diverged: false,
            hash: Fnv::default(),
            gaps: 0,
            skipped: 0,
            unlocated: 0,
            next: Some(0),
            pending: Vec::new(),
            last_end: 0,
            expected: Pattern::new(kind),
            in_snapshot: false,
            scratch: Vec::new(),
            screen: screen.then(LastScreen::default),
        }
    }

    /// One `output` event: its bytes and whether it is (part of) a snapshot.
    /// Returns the phase after it.
    pub fn feed(&mut self, data: &[u8], snapshot: bool) -> Phase {
        if let Some(s) = self.screen.as_mut() {
            s.push(data, snapshot);
        }
        let first_part = snapshot && !self.in_snapshot;
        self.in_snapshot = snapshot;
        match (self.phase, snapshot) {
            (Phase::Inside, true) if first_part => self.gap(),
            (_, true) | (Phase::Done, false) => {}
            (Phase::Before, false) => {
                if let Some(i) = data.iter().position(|&b| b == START) {
                    self.phase = Phase::Inside;
                    self.stream(&data[i + 1..]);
                }
            }
            (Phase::Inside, false) => self.stream(data),
        }
        self.phase
    }

    /// Stream bytes between the markers (up to and including `END`).
    fn stream(&mut self, data: &[u8]) {
        let body = match data.iter().position(|&b| b == END) {
            Some(i) => {
                self.phase = Phase::Done;
                &data[..i]
            }
            None => data,
        };
        self.received += body.len() as u64;
        self.hash.update(body);
        if self.next.is_some() {
            self.check(body);
        } else {
            self.pending.extend_from_slice(body);
            self.locate();
        }
    }

    /// A snapshot between the markers: the stream continues elsewhere.
    fn gap(&mut self) {
        self.gaps += 1;
        match self.next.take() {
            Some(end) => self.last_end = end,
            None => {
                // Stretch of unknown place: its bytes cannot be checked.
                self.unlocated += self.pending.len() as u64;
                self.pending.clear();
            }
        }
    }

    /// Finds where the pending stretch starts from the first whole line in it.
    fn locate(&mut self) {
        let Some(nl) = self.pending.iter().position(|&b| b == b'\n') else {
            if self.pending.len() as u64 > LINE_BYTES {
                self.diverged = true;
            }
            return;
        };
        let head = &self.pending[nl + 1..];
        if head.len() < line_head(self.kind) {
            return;
        }
        let start = line_number(self.kind, head)
            .map(|n| n * LINE_BYTES)
            .and_then(|line| line.checked_sub(nl as u64 + 1));
        match start {
            Some(start) => self.place(start),
            None => self.diverged = true,
        }
    }

    /// The pending stretch starts at `start`: count the gap before it, check it.
    fn place(&mut self, start: u64) {
        if start < self.last_end {
            // Bytes the phone had already been given, again.
            self.diverged = true;
        }
        self.skipped += start.saturating_sub(self.last_end);
        self.next = Some(start);
        self.expected = Pattern::at(self.kind, start);
        let pending = std::mem::take(&mut self.pending);
        self.check(&pending);
    }

    /// Compares bytes at `next` with the pattern.
    fn check(&mut self, bytes: &[u8]) {
        let Some(next) = self.next.as_mut() else {
            return;
        };
        *next += bytes.len() as u64;
        if self.diverged {
            return;
        }
        match self.expected.first_mismatch(bytes, &mut self.scratch) {
            Some(i) => {
                self.matched += i as u64;
                self.diverged = true;
            }
            None => self.matched += bytes.len() as u64,
        }
    }

    /// After the end marker, with the generator's own account: the last
    /// stretch ends where the pattern ended, so an unlocated one is placed
    /// there, and whatever did not arrive after the last gap was skipped.
    pub fn finish(&mut self, written: &Written) {
        if self.next.is_none() && !self.pending.is_empty() {
            match written.bytes.checked_sub(self.pending.len() as u64) {
                Some(start) => self.place(start),
                None => self.diverged = true,
            }
        }
        let end = self.next.unwrap_or(self.last_end);
        if end > written.bytes {
            self.diverged = true;
        }
        self.skipped += written.bytes.saturating_sub(end);
    }

    /// Nothing skipped: length, order and checksum equal the generator's.
    pub fn byte_exact(&self, written: &Written) -> bool {
        self.phase == Phase::Done
            && self.gaps == 0
            && self.skipped == 0
            && !self.diverged
            && self.received == written.bytes
            && self.matched == written.bytes
            && self.hash.value() == written.hash
    }

    /// Every received byte is the pattern at its offset, none twice, and
    /// received plus skipped is what the generator wrote (after
    /// [`Delivered::finish`]). Without gaps this is [`Delivered::byte_exact`].
    pub fn intact(&self, written: &Written) -> bool {
        if self.gaps == 0 {
            return self.byte_exact(written);
        }
        self.phase == Phase::Done
            && !self.diverged
            && self.unlocated == 0
            && self.matched == self.received
            && self.received + self.skipped == written.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(kind: Kind, from: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        Pattern::at(kind, from).fill(&mut v);
        v
    }

    fn written(kind: Kind, len: u64) -> Written {
        let mut h = Fnv::default();
        h.update(&pattern(kind, 0, len as usize));
        Written {
            bytes: len,
            hash: h.value(),
        }
    }

    #[test]
    fn an_exact_stream_is_byte_exact() {
        let w = written(Kind::Letters, 5000);
        let mut d = Delivered::new(Kind::Letters, false);
        d.feed(b"screen", true);
        d.feed(&[START], false);
        for c in pattern(Kind::Letters, 0, 5000).chunks(333) {
            d.feed(c, false);
        }
        assert_eq!(d.feed(&[END], false), Phase::Done);
        d.finish(&w);
        assert!(d.byte_exact(&w) && d.intact(&w), "{d:?}");
    }

    #[test]
    fn gaps_at_snapshots_are_counted_and_the_rest_checked() {
        for kind in [Kind::Letters, Kind::Log] {
            let w = written(kind, 20_000);
            let mut d = Delivered::new(kind, true);
            d.feed(&[START], false);
            d.feed(&pattern(kind, 0, 3000), false);
            d.feed(b"\x1b[H\x1b[2Jscreen one", true);
            d.feed(b" part two", true);
            d.feed(&pattern(kind, 7001, 40), false);
            d.feed(&pattern(kind, 7041, 2000), false);
            d.feed(b"\x1b[H\x1b[2Jscreen two", true);
            // The last stretch is too short to locate: placed at the end.
            let mut last = pattern(kind, 19_990, 10);
            last.push(END);
            d.feed(&last, false);
            d.finish(&w);
            assert!(!d.byte_exact(&w) && d.intact(&w), "{kind:?} {d:?}");
            assert_eq!((d.gaps, d.skipped, d.received), (2, 4001 + 10_949, 5050));
            let screen = d.screen.as_ref().unwrap();
            assert!(screen.bytes.starts_with(b"\x1b[H\x1b[2Jscreen two"));
        }
    }

    #[test]
    fn a_splice_without_a_snapshot_or_a_repeat_is_caught() {
        let w = written(Kind::Letters, 10_000);
        let mut d = Delivered::new(Kind::Letters, false);
        d.feed(&[START], false);
        d.feed(&pattern(Kind::Letters, 0, 3000), false);
        d.feed(&pattern(Kind::Letters, 4000, 6000), false);
        d.feed(&[END], false);
        d.finish(&w);
        assert!(!d.intact(&w) && d.diverged);

        let mut d = Delivered::new(Kind::Letters, false);
        d.feed(&[START], false);
        d.feed(&pattern(Kind::Letters, 0, 3000), false);
        d.feed(b"screen", true);
        d.feed(&pattern(Kind::Letters, 2000, 8000), false);
        d.feed(&[END], false);
        d.finish(&w);
        assert!(!d.intact(&w) && d.diverged, "{d:?}");
    }

    #[test]
    fn an_end_marker_lost_in_a_gap_is_skipped_bytes() {
        let w = written(Kind::Letters, 10_000);
        let mut d = Delivered::new(Kind::Letters, false);
        d.feed(&[START], false);
        d.feed(&pattern(Kind::Letters, 0, 3000), false);
        d.feed(b"screen", true);
        // The marker the bench asks for again.
        d.feed(&[END], false);
        d.finish(&w);
        assert!(d.intact(&w), "{d:?}");
        assert_eq!(d.skipped, 7000);
    }
}
