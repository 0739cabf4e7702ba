//! The per-attach output compression stream of spec §7: raw DEFLATE (no zlib
//! or gzip framing), one persistent LZ77 window, a SYNC flush after every
//! message (each chunk ends `00 00 ff ff`), never a final block. The level is
//! the host's choice and may change between messages ([`DEFLATE_LEVEL`],
//! [`FAST_DEFLATE_LEVEL`]); the phone's inflater does not see it.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::limits::MAX_OUTPUT_SIZE;

/// The compressor failed; the host ends the attachment and sends
/// `error compression_failed`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompressError {
    /// The deflate engine reported an error.
    #[error("deflate failed: {0}")]
    Deflate(#[from] flate2::CompressError),
    /// The deflate engine stopped consuming input.
    #[error("deflate made no progress")]
    Stalled,
    /// An earlier call failed; the stream is unusable.
    #[error("the deflate stream failed earlier")]
    Failed,
}

/// A frame could not be inflated; the phone drops the attachment's stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecompressError {
    /// The bytes are not a valid raw deflate continuation.
    #[error("corrupt deflate data: {0}")]
    Corrupt(#[from] flate2::DecompressError),
    /// The frame inflates to more than [`MAX_OUTPUT_SIZE`] bytes.
    #[error("frame inflates to more than {MAX_OUTPUT_SIZE} bytes")]
    TooLarge,
    /// The stream had a final block (muxlink hosts never send one) and more
    /// data followed it.
    #[error("data after the end of the deflate stream")]
    AfterEnd,
    /// The inflater stopped consuming input.
    #[error("inflate made no progress")]
    Stalled,
    /// An earlier call failed; the stream is unusable until a new `attached`.
    #[error("the inflate stream failed earlier")]
    Failed,
}

/// A non-final empty stored block: what a sync flush writes on a
/// byte-aligned stream.
const EMPTY_SYNC_BLOCK: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];

/// Output buffer growth step bounds.
const MIN_CHUNK: usize = 4096;
const MAX_CHUNK: usize = 256 * 1024;

/// Counter difference as usize. Both counters are bounded by one call's
/// buffer lengths, so the conversion cannot saturate in practice.
fn delta(after: u64, before: u64) -> usize {
    usize::try_from(after.saturating_sub(before)).unwrap_or(usize::MAX)
}

/// The host's deflate level, chosen by measurement (zlib-rs, 4 KiB
/// sync-flushed chunks, this project's two-core machine): on log-like lines
/// level 2 compresses at 214 MB/s to 0.147 of the input where level 6 manages
/// 108 MB/s and 0.137; on random-letter lines 51 MB/s vs 43 MB/s at the same
/// 0.61. Level 1 is faster still but keeps 0.95 of random letters, which
/// costs more in DTLS and SCTP than it saves. The phone's inflater does not
/// care which level made the stream.
pub const DEFLATE_LEVEL: u32 = 2;

/// The level a host may switch to between messages while deflate, not the
/// link, is what holds its output back: 0, stored blocks, which cost a copy.
/// zlib-rs's level 1 keeps 0.95 of random-letter lines anyway (static
/// Huffman codes only) for a good part of level 2's CPU; with the host's
/// chooser keeping the fast level between probes, three `--throughput-only`
/// runs on the bench's loopback delivered 1.00, 0.86 and 0.82 of tmux's own
/// rate, where level 1 with the earlier chooser gave 0.66–0.80.
pub const FAST_DEFLATE_LEVEL: u32 = 0;

/// Host side: one per attachment with `compression: "deflate"`.
pub struct Compressor {
    inner: Compress,
    level: u32,
    /// The stream's latest plaintext, at least the last [`WINDOW`] bytes of
    /// it (at most twice that): what the phone's inflater has in its window,
    /// so a fresh engine primed with it may continue the stream.
    recent: Vec<u8>,
    failed: bool,
}

/// DEFLATE's window: the farthest back a match may reach.
const WINDOW: usize = 32 * 1024;

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("level", &self.level)
            .field("total_in", &self.inner.total_in())
            .field("total_out", &self.inner.total_out())
            .finish()
    }
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    /// A fresh raw-deflate stream at [`DEFLATE_LEVEL`].
    pub fn new() -> Self {
        Compressor {
            inner: Compress::new(Compression::new(DEFLATE_LEVEL), false),
            level: DEFLATE_LEVEL,
            recent: Vec::new(),
            failed: false,
        }
    }

    /// The level the next message is compressed at.
    pub fn level(&self) -> u32 {
        self.level
    }

    /// Compresses the following messages at `level` (0–9, higher is taken
    /// as 9). The stream goes on unchanged for the inflater: between messages
    /// it is sync-flushed, and a fresh engine at the new level starts with
    /// the stream's last 32 KiB as its dictionary, so its matches reach back
    /// into exactly what the phone has. (Changing the level of the running
    /// engine is not possible here: zlib-rs flushes a pending block when the
    /// level changes its strategy, which needs output space flate2 does not
    /// give it.)
    pub fn set_level(&mut self, level: u32) -> Result<(), CompressError> {
        if self.failed {
            return Err(CompressError::Failed);
        }
        let level = level.min(9);
        if level == self.level {
            return Ok(());
        }
        let mut fresh = Compress::new(Compression::new(level), false);
        let start = self.recent.len().saturating_sub(WINDOW);
        if let Err(e) = fresh.set_dictionary(&self.recent[start..]) {
            self.failed = true;
            return Err(e.into());
        }
        self.inner = fresh;
        self.level = level;
        Ok(())
    }

    /// Keeps the last [`WINDOW`] bytes of plaintext (amortised: trimmed to
    /// one window once it holds two).
    fn remember(&mut self, data: &[u8]) {
        if data.len() >= WINDOW {
            self.recent.clear();
            self.recent.extend_from_slice(&data[data.len() - WINDOW..]);
            return;
        }
        self.recent.extend_from_slice(data);
        if self.recent.len() > 2 * WINDOW {
            let cut = self.recent.len() - WINDOW;
            self.recent.drain(..cut);
        }
    }

    /// Compresses one `output` message's bytes into one sync-flushed chunk.
    /// After an error the stream is unusable (every later call fails).
    pub fn compress(&mut self, data: &[u8]) -> Result<Vec<u8>, CompressError> {
        if self.failed {
            return Err(CompressError::Failed);
        }
        let result = self.compress_inner(data);
        self.failed = result.is_err();
        if result.is_ok() {
            self.remember(data);
        }
        result
    }

    fn compress_inner(&mut self, data: &[u8]) -> Result<Vec<u8>, CompressError> {
        if data.is_empty() {
            // zlib refuses a second sync flush with no new input (it returns
            // a buffer error and writes nothing). Between messages the stream
            // is byte-aligned, so the empty stored block a sync flush would
            // write can be written here without touching the engine.
            return Ok(EMPTY_SYNC_BLOCK.to_vec());
        }
        let chunk = data.len().saturating_add(64).clamp(MIN_CHUNK, MAX_CHUNK);
        let mut out = Vec::new();
        let mut input = data;
        loop {
            let len = out.len();
            out.resize(len + chunk, 0);
            let (in0, out0) = (self.inner.total_in(), self.inner.total_out());
            let step = self
                .inner
                .compress(input, &mut out[len..], FlushCompress::Sync);
            let consumed = delta(self.inner.total_in(), in0);
            let produced = delta(self.inner.total_out(), out0);
            out.truncate(len + produced);
            step?;
            input = input.get(consumed..).unwrap_or_default();
            // Room left over after a sync flush means the flush is complete.
            if input.is_empty() && produced < chunk {
                return Ok(out);
            }
            if consumed == 0 && produced == 0 {
                return Err(CompressError::Stalled);
            }
        }
    }
}

/// Phone side: one persistent raw inflater per attachment; reset (make a new
/// one) on every `attached`.
pub struct Decompressor {
    inner: Decompress,
    ended: bool,
    failed: bool,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("total_in", &self.inner.total_in())
            .field("total_out", &self.inner.total_out())
            .field("ended", &self.ended)
            .finish()
    }
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Decompressor {
    /// A fresh raw inflater.
    pub fn new() -> Self {
        Decompressor {
            inner: Decompress::new(false),
            ended: false,
            failed: false,
        }
    }

    /// Inflates one `output` frame. The result is at most [`MAX_OUTPUT_SIZE`]
    /// bytes; a frame that would inflate further is an error and at most that
    /// much (plus one byte) is ever buffered. After an error the stream is
    /// unusable (every later call fails).
    pub fn decompress(&mut self, frame: &[u8]) -> Result<Vec<u8>, DecompressError> {
        if self.failed {
            return Err(DecompressError::Failed);
        }
        let result = self.decompress_inner(frame);
        self.failed = result.is_err();
        result
    }

    fn decompress_inner(&mut self, frame: &[u8]) -> Result<Vec<u8>, DecompressError> {
        if self.ended {
            return if frame.is_empty() {
                Ok(Vec::new())
            } else {
                Err(DecompressError::AfterEnd)
            };
        }
        let mut out: Vec<u8> = Vec::new();
        let mut input = frame;
        loop {
            let len = out.len();
            // One byte past the bound so overflow is seen, never more.
            let room = (MAX_OUTPUT_SIZE + 1).saturating_sub(len);
            let chunk = len.clamp(MIN_CHUNK, MAX_CHUNK).min(room);
            out.reserve_exact(chunk);
            out.resize(len + chunk, 0);
            let (in0, out0) = (self.inner.total_in(), self.inner.total_out());
            let step = self
                .inner
                .decompress(input, &mut out[len..], FlushDecompress::None);
            let consumed = delta(self.inner.total_in(), in0);
            let produced = delta(self.inner.total_out(), out0);
            out.truncate(len + produced);
            let status = step?;
            input = input.get(consumed..).unwrap_or_default();
            if out.len() > MAX_OUTPUT_SIZE {
                return Err(DecompressError::TooLarge);
            }
            if status == Status::StreamEnd {
                self.ended = true;
                return if input.is_empty() {
                    Ok(out)
                } else {
                    Err(DecompressError::AfterEnd)
                };
            }
            // Room left over means everything decodable so far was written.
            if input.is_empty() && produced < chunk {
                return Ok(out);
            }
            if consumed == 0 && produced == 0 {
                return Err(DecompressError::Stalled);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_with_a_sync_marker() {
        let mut c = Compressor::new();
        for msg in [&b"hello\r\n"[..], b"", &[0u8; 100_000], b"x"] {
            let out = c.compress(msg).unwrap();
            assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "{out:02x?}");
        }
    }

    #[test]
    fn the_level_can_change_between_messages_and_the_stream_inflates_unchanged() {
        let mut x: u32 = 7;
        let letters: Vec<u8> = (0..60_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b'a' + ((x >> 16) % 26) as u8
            })
            .collect();
        let lines = b"2026-12-01 INFO request served in 3 ms\n".repeat(1500);
        let mut c = Compressor::new();
        let mut d = Decompressor::new();
        let mut sizes = Vec::new();
        for level in [DEFLATE_LEVEL, FAST_DEFLATE_LEVEL, 0, DEFLATE_LEVEL, 9] {
            c.set_level(level).unwrap();
            for msg in [&letters[..], &lines[..]] {
                let z = c.compress(msg).unwrap();
                assert!(z.ends_with(&[0, 0, 0xff, 0xff]));
                assert_eq!(d.decompress(&z).unwrap(), msg);
                sizes.push(z.len());
            }
        }
        // Level 0 stores: the letters grow a little, where level 2 keeps
        // about 0.6 of them.
        assert!(
            sizes[4] > letters.len() && sizes[0] < letters.len() * 7 / 10,
            "{sizes:?}"
        );
    }

    #[test]
    fn empty_frame_inflates_to_nothing() {
        let mut d = Decompressor::new();
        assert_eq!(d.decompress(&[]).unwrap(), b"");
    }

    #[test]
    fn a_final_block_ends_the_stream() {
        // A stored final block holding "ab", then garbage.
        let mut d = Decompressor::new();
        assert_eq!(
            d.decompress(&[0x01, 0x02, 0x00, 0xfd, 0xff, b'a', b'b'])
                .unwrap(),
            b"ab"
        );
        assert!(matches!(
            d.decompress(b"more"),
            Err(DecompressError::AfterEnd)
        ));
        assert!(matches!(d.decompress(b""), Err(DecompressError::Failed)));
    }

    #[test]
    fn corrupt_data_poisons_the_stream() {
        let mut d = Decompressor::new();
        // Block type 3 is reserved.
        assert!(matches!(
            d.decompress(&[0x07]),
            Err(DecompressError::Corrupt(_))
        ));
        assert!(matches!(
            d.decompress(&[0x00]),
            Err(DecompressError::Failed)
        ));
    }
}
