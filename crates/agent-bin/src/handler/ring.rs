//! The pane stream's ring (docs/stream-v2.md §2, §5, §6): the last `capacity`
//! bytes read from a pane, numbered by stream offset from a base. The reader
//! appends at full speed; every attachment reads from its own offset and
//! learns when the bytes it still needed were overwritten. Pure: no I/O, no
//! clock, no waiting.

/// What [`Ring::read_from`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read<'a> {
    /// The bytes from the offset on (at most the asked maximum, possibly
    /// fewer where the ring wraps); never empty.
    Bytes(&'a [u8]),
    /// The offset is no longer held (overwritten, or before the base, or
    /// beyond the head): the reader fell behind; the stream is at `head`.
    Lagged {
        /// The offset of the next byte to be appended.
        head: u64,
    },
    /// The offset is the head: nothing new yet.
    Wait,
}

/// A byte ring indexed by stream offset.
///
/// Invariant: `buf.len() == min(head - base, capacity)`, and the byte at
/// offset `o` (for `start() <= o < head`) is `buf[(o - base) % capacity]`.
#[derive(Debug)]
pub(crate) struct Ring {
    buf: Vec<u8>,
    capacity: usize,
    base: u64,
    head: u64,
}

impl Ring {
    /// An empty ring of `capacity` bytes (at least 1) whose first byte will
    /// have offset `base`. Memory grows with what is appended, up to `capacity`.
    pub(crate) fn new(capacity: usize, base: u64) -> Ring {
        Ring {
            buf: Vec::new(),
            capacity: capacity.max(1),
            base,
            head: base,
        }
    }

    /// The offset of the next byte to be appended.
    pub(crate) fn head(&self) -> u64 {
        self.head
    }

    /// The offset of the oldest byte held.
    pub(crate) fn start(&self) -> u64 {
        self.head - self.buf.len() as u64
    }

    /// Whether every byte from `offset` up to the head is held (the head
    /// itself counts: nothing is missing from there).
    pub(crate) fn holds(&self, offset: u64) -> bool {
        (self.start()..=self.head).contains(&offset)
    }

    fn index(&self, offset: u64) -> usize {
        // The remainder is below `capacity`, a usize.
        ((offset - self.base) % self.capacity as u64) as usize
    }

    /// Appends `bytes`, overwriting the oldest bytes beyond the capacity.
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        // Only the last `capacity` bytes can be held; the rest pass through.
        let keep = &bytes[bytes.len().saturating_sub(self.capacity)..];
        if keep.len() == self.capacity {
            // Every slot is written below, wherever the head lands.
            self.buf.resize(self.capacity, 0);
        }
        self.head += (bytes.len() - keep.len()) as u64;
        let mut rest = keep;
        while !rest.is_empty() {
            let at = self.index(self.head);
            if at == self.buf.len() && self.buf.len() < self.capacity {
                // Still growing: the free tail is contiguous.
                let n = rest.len().min(self.capacity - self.buf.len());
                self.buf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                self.head += n as u64;
            } else {
                let n = rest.len().min(self.capacity - at);
                self.buf[at..at + n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
                self.head += n as u64;
            }
        }
    }

    /// Up to `max` (at least 1) bytes from `offset` on.
    pub(crate) fn read_from(&self, offset: u64, max: usize) -> Read<'_> {
        if offset == self.head {
            return Read::Wait;
        }
        if !self.holds(offset) {
            return Read::Lagged { head: self.head };
        }
        let at = self.index(offset);
        // Bytes up to the head, up to the physical end of the buffer.
        let available = (self.head - offset).min((self.buf.len() - at) as u64) as usize;
        Read::Bytes(&self.buf[at..at + available.min(max.max(1))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads everything from `offset` to the head in pieces of at most `max`.
    fn drain(ring: &Ring, mut offset: u64, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            match ring.read_from(offset, max) {
                Read::Bytes(b) => {
                    assert!(!b.is_empty() && b.len() <= max);
                    out.extend_from_slice(b);
                    offset += b.len() as u64;
                }
                Read::Wait => return out,
                Read::Lagged { head } => panic!("lagged at {offset}, head {head}"),
            }
        }
    }

    #[test]
    fn reads_back_what_was_appended_from_any_held_offset() {
        let mut ring = Ring::new(16, 1000);
        assert_eq!(ring.read_from(1000, 4), Read::Wait);
        ring.append(b"hello ");
        ring.append(b"world");
        assert_eq!(ring.head(), 1011);
        assert_eq!(drain(&ring, 1000, 4), b"hello world");
        assert_eq!(drain(&ring, 1006, 100), b"world");
        assert_eq!(ring.read_from(1011, 4), Read::Wait);
    }

    #[test]
    fn wrapping_keeps_the_last_capacity_bytes_in_order() {
        let mut ring = Ring::new(8, 0);
        let all: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for piece in all.chunks(3) {
            ring.append(piece);
        }
        assert_eq!(ring.head(), 1000);
        assert_eq!(ring.start(), 992);
        assert_eq!(drain(&ring, 992, 3), &all[992..]);
        assert_eq!(drain(&ring, 995, 8), &all[995..]);
        assert_eq!(ring.read_from(991, 8), Read::Lagged { head: 1000 });
    }

    #[test]
    fn an_append_larger_than_the_ring_keeps_its_tail() {
        let mut ring = Ring::new(4, 7);
        ring.append(b"ab");
        ring.append(b"0123456789");
        assert_eq!(ring.head(), 19);
        assert_eq!(ring.start(), 15);
        assert_eq!(drain(&ring, 15, 10), b"6789");
        assert_eq!(ring.read_from(7, 1), Read::Lagged { head: 19 });
    }

    #[test]
    fn holds_is_exactly_the_window_from_start_to_head() {
        let mut ring = Ring::new(10, 100);
        assert!(ring.holds(100));
        assert!(!ring.holds(99) && !ring.holds(101));
        ring.append(&[1; 25]);
        assert_eq!((ring.start(), ring.head()), (115, 125));
        assert!(ring.holds(115) && ring.holds(120) && ring.holds(125));
        assert!(!ring.holds(114) && !ring.holds(126));
        // Beyond the head is never held: a phone cannot be ahead of the pane.
        assert_eq!(ring.read_from(126, 1), Read::Lagged { head: 125 });
    }

    #[test]
    fn a_reader_that_keeps_up_never_lags_across_many_wraps() {
        let mut ring = Ring::new(64, u64::from(u32::MAX));
        let mut cursor = ring.head();
        let mut want = Vec::new();
        let mut got = Vec::new();
        for i in 0..500u32 {
            let piece: Vec<u8> = (0..(i % 50 + 1)).map(|j| (i + j) as u8).collect();
            ring.append(&piece);
            want.extend_from_slice(&piece);
            let read = drain(&ring, cursor, 7);
            cursor += read.len() as u64;
            got.extend(read);
        }
        assert_eq!(got, want);
    }
}
