//! The deterministic output the bench makes a pane produce: fixed-width lines
//! whose bytes depend only on their offset, so a receiver can check every byte
//! in order without storing the stream, plus an FNV-1a checksum both ends compute.
//! Two kinds: random letters (deflates ~1.7×, the hard case) and log lines
//! (deflates ~7×, like busy terminal output).

/// Written by the generator just before the first pattern byte (never in the pattern).
pub const START: u8 = 0x02;
/// Written by the generator just after the last pattern byte (never in the pattern).
pub const END: u8 = 0x03;

/// Bytes per pattern line: 12 digits, a space, 50 letters, a newline.
const LINE: usize = 64;

/// FNV-1a, 64 bit: streaming, independent of how the bytes are chunked.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// Which text the pattern is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// Line number and 50 pseudo-random letters: deflates ~1.7×.
    #[default]
    Letters,
    /// Web-server-like log lines: deflates ~7×.
    Log,
}

impl Kind {
    /// Name on the generator's command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Letters => "letters",
            Kind::Log => "log",
        }
    }

    /// Parses [`Kind::as_str`].
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "letters" => Some(Kind::Letters),
            "log" => Some(Kind::Log),
            _ => None,
        }
    }
}

/// An endless source of pattern bytes, starting at offset 0.
#[derive(Debug, Clone)]
pub struct Pattern {
    kind: Kind,
    line_no: u64,
    line: [u8; LINE],
    pos: usize,
}

impl Default for Pattern {
    fn default() -> Self {
        Pattern::new(Kind::Letters)
    }
}

fn mix(n: u64) -> u64 {
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

impl Pattern {
    /// The pattern of `kind` from offset 0.
    pub fn new(kind: Kind) -> Self {
        let mut p = Pattern {
            kind,
            line_no: 0,
            line: [b' '; LINE],
            pos: 0,
        };
        p.render();
        p
    }

    /// The pattern of `kind` from `offset` on.
    pub fn at(kind: Kind, offset: u64) -> Self {
        let mut p = Pattern::new(kind);
        p.line_no = offset / LINE as u64;
        // `offset % LINE` is below `LINE`, a usize.
        p.pos = (offset % LINE as u64) as usize;
        p.render();
        p
    }

    /// Renders line `line_no` (always `LINE` bytes ending in a newline).
    fn render(&mut self) {
        let n = self.line_no;
        match self.kind {
            Kind::Letters => {
                let digits = format!("{n:012}");
                self.line[..12].copy_from_slice(digits.as_bytes());
                self.line[12] = b' ';
                let mut x = mix(n);
                for b in &mut self.line[13..LINE - 1] {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = b'a' + (x % 26) as u8;
                }
            }
            Kind::Log => {
                let x = mix(n);
                let level = if x.is_multiple_of(10) { "WARN" } else { "INFO" };
                let method = if (x >> 12).is_multiple_of(4) {
                    "POST"
                } else {
                    "GET "
                };
                let status = ["200", "200", "200", "404"][((x >> 36) % 4) as usize];
                let text = format!(
                    "2024-05-01 12:{:02}:{:02}.{:03} {level} w{} {method} /api/items/{:05} {status} {:3}ms",
                    (n / 60_000) % 60,
                    (n / 1000) % 60,
                    n % 1000,
                    (x >> 8) % 8,
                    (x >> 16) % 100_000,
                    (x >> 40) % 1000,
                );
                let body = &mut self.line[..LINE - 1];
                body.fill(b' ');
                let len = text.len().min(body.len());
                body[..len].copy_from_slice(&text.as_bytes()[..len]);
            }
        }
        self.line[LINE - 1] = b'\n';
    }

    /// Compares `bytes` with the pattern's next bytes (advancing it past
    /// them, `scratch` reused between calls): the index of the first
    /// difference, `None` when all match.
    pub fn first_mismatch(&mut self, bytes: &[u8], scratch: &mut Vec<u8>) -> Option<usize> {
        scratch.resize(bytes.len(), 0);
        self.fill(scratch);
        bytes.iter().zip(scratch.iter()).position(|(a, b)| a != b)
    }

    /// Fills `out` with the next bytes of the pattern.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            let n = (LINE - self.pos).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.line[self.pos..self.pos + n]);
            done += n;
            self.pos += n;
            if self.pos == LINE {
                self.pos = 0;
                self.line_no += 1;
                self.render();
            }
        }
    }
}

/// Bytes at the start of a line that [`line_number`] needs.
pub fn line_head(kind: Kind) -> usize {
    match kind {
        Kind::Letters => 12,
        // "2024-05-01 12:MM:SS.mmm"
        Kind::Log => 23,
    }
}

/// The number of the pattern line that `head` starts (at least
/// [`line_head`] bytes), `None` if it is not the start of one. Log lines
/// carry their number as a time of day (minutes, seconds, milliseconds), so
/// it is found only within the first 3.6 million lines (230 MB).
pub fn line_number(kind: Kind, head: &[u8]) -> Option<u64> {
    let digits = |b: &[u8]| -> Option<u64> {
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(b).ok()?.parse().ok()
    };
    match kind {
        Kind::Letters => digits(head.get(..12)?),
        Kind::Log => {
            let h = head.get(..23)?;
            if !h.starts_with(b"2024-05-01 12:") || h[16] != b':' || h[19] != b'.' {
                return None;
            }
            let (m, s, ms) = (
                digits(&h[14..16])?,
                digits(&h[17..19])?,
                digits(&h[20..23])?,
            );
            Some(m * 60_000 + s * 1000 + ms)
        }
    }
}

/// Bytes per pattern line.
pub const LINE_BYTES: u64 = LINE as u64;

/// Compares a received stream with the pattern, byte by byte and in order.
#[derive(Debug)]
pub struct Checker {
    expected: Pattern,
    scratch: Vec<u8>,
    /// Bytes received (between the markers).
    pub received: u64,
    /// Length of the received prefix that equals the pattern.
    pub matched: u64,
    /// True once a byte differed (everything after it counts as lost).
    pub diverged: bool,
    /// Checksum of everything received.
    pub hash: Fnv,
}

impl Checker {
    /// A checker for the pattern of `kind`.
    pub fn new(kind: Kind) -> Self {
        Checker {
            expected: Pattern::new(kind),
            scratch: Vec::new(),
            received: 0,
            matched: 0,
            diverged: false,
            hash: Fnv::default(),
        }
    }

    /// Feeds received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.received += bytes.len() as u64;
        self.hash.update(bytes);
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
}

/// Where a stream is relative to its markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before `START` (screen snapshot, anything else): ignored.
    Before,
    /// Between the markers: checked.
    Inside,
    /// `END` seen.
    Done,
}

/// Splits a marker-delimited stream out of whatever a pane prints.
#[derive(Debug)]
pub struct Framed {
    /// Current phase.
    pub phase: Phase,
    /// The checked content.
    pub checker: Checker,
}

impl Framed {
    /// Waits for `START`, then checks against the pattern of `kind`.
    pub fn new(kind: Kind) -> Self {
        Framed {
            phase: Phase::Before,
            checker: Checker::new(kind),
        }
    }

    /// Feeds a chunk of pane output; returns the phase after it.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Phase {
        if self.phase == Phase::Before {
            match bytes.iter().position(|&b| b == START) {
                Some(i) => {
                    bytes = &bytes[i + 1..];
                    self.phase = Phase::Inside;
                }
                None => return self.phase,
            }
        }
        if self.phase == Phase::Inside {
            match bytes.iter().position(|&b| b == END) {
                Some(i) => {
                    self.checker.feed(&bytes[..i]);
                    self.phase = Phase::Done;
                }
                None => self.checker.feed(bytes),
            }
        }
        self.phase
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_does_not_change_the_pattern_or_the_hash() {
        let mut a = vec![0; 1000];
        Pattern::default().fill(&mut a);
        let mut p = Pattern::default();
        let mut b = Vec::new();
        for n in [1, 63, 64, 65, 7, 800] {
            let mut c = vec![0; n];
            p.fill(&mut c);
            b.extend(c);
        }
        assert_eq!(a, b);
        let mut c = Checker::new(Kind::Letters);
        for piece in a.chunks(37) {
            c.feed(piece);
        }
        assert_eq!((c.matched, c.diverged), (1000, false));
        let mut h = Fnv::default();
        h.update(&a);
        assert_eq!(c.hash.value(), h.value());
        assert!(!a.contains(&START) && !a.contains(&END));
    }

    #[test]
    fn log_lines_have_the_fixed_width() {
        let mut a = vec![0; 64 * 3];
        Pattern::new(Kind::Log).fill(&mut a);
        let text = String::from_utf8(a).unwrap();
        assert!(text.lines().all(|l| l.len() == 63), "{text}");
        assert!(text.starts_with("2024-05-01 12:00:00.000 "));
    }

    #[test]
    fn a_pattern_from_an_offset_and_line_numbers() {
        for kind in [Kind::Letters, Kind::Log] {
            let mut all = vec![0; 64 * 40];
            Pattern::new(kind).fill(&mut all);
            for off in [0u64, 1, 63, 64, 65, 700, 64 * 39] {
                let mut tail = vec![0; all.len() - off as usize];
                Pattern::at(kind, off).fill(&mut tail);
                assert_eq!(tail, all[off as usize..], "{kind:?} at {off}");
            }
            for n in [0u64, 1, 17, 39] {
                let start = (n * LINE_BYTES) as usize;
                assert_eq!(
                    line_number(kind, &all[start..]),
                    Some(n),
                    "{kind:?} line {n}"
                );
            }
            assert_eq!(line_number(kind, &all[5..]), None);
        }
    }

    #[test]
    fn a_changed_byte_ends_the_matched_prefix() {
        let mut a = vec![0; 300];
        Pattern::default().fill(&mut a);
        a[100] ^= 1;
        let mut f = Framed::new(Kind::Letters);
        let mut s = b"snapshot".to_vec();
        s.push(START);
        s.extend(&a);
        s.push(END);
        assert_eq!(f.feed(&s), Phase::Done);
        assert_eq!(f.checker.matched, 100);
        assert_eq!(f.checker.received, 300);
    }
}
