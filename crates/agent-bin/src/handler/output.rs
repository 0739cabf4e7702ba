//! Turning pane bytes into `output` events that fit the phone's message limit:
//! split, optionally deflate each piece (its own sync-flushed chunk), number
//! them with stream offsets when the attachment asked for them.

use terminal_protocol::{Compressor, Event, MAX_MESSAGE_SIZE};

/// Bytes reserved for the msgpack envelope of an `output` event
/// (map header, `type`, `output`, `data`, bin32 header) with room to spare.
const ENVELOPE: usize = 64;
/// Smallest budget used even if a phone advertises less (a phone that small cannot work).
const MIN_BUDGET: usize = 1024;
/// The largest `output` message the host sends, whatever the phone accepts.
/// Chosen on the earlier transport (webrtc-sctp 0.17.2), which could hold back
/// the rest of a message of several hundred KiB until the phone sent a packet
/// (bench, random-letter bulk: most runs lost 26–47 MB of 48 to lag
/// snapshots; with this cap 6 of 6 runs lost at most 1.8 MB). Kept on the
/// `rtc` core: below its 256 KiB ceiling, and a message this size still
/// leaves the next keystroke's echo little to wait behind.
pub const OUTPUT_MESSAGE_CAP: usize = 64 * 1024;
const _: () = assert!(OUTPUT_MESSAGE_CAP <= rtc_transport::MAX_TRANSPORT_MESSAGE);

/// The largest `data` payload allowed for a phone with `max_message_size`.
pub fn data_budget(max_message_size: usize) -> usize {
    max_message_size
        .min(MAX_MESSAGE_SIZE)
        .min(OUTPUT_MESSAGE_CAP)
        .saturating_sub(ENVELOPE)
        .max(MIN_BUDGET)
}

/// Failure while building output events.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The deflate stream failed; the attachment must end (terminal-protocol.md §7).
    #[error("compression failed")]
    Compression,
}

/// How the `output` events of one call are numbered (docs/stream-v2.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numbering {
    /// No offsets: today's `output` (a phone that did not ask for them).
    Plain,
    /// Stream bytes whose first plaintext byte is at this offset; each event
    /// carries the offset of its own first plaintext byte.
    Stream(u64),
    /// A snapshot after which the stream continues at this offset; every part
    /// carries it, with `snapshot: true`.
    Snapshot(u64),
}

/// The largest plaintext piece that becomes one `output` event within
/// `budget` data bytes (with deflate: room for its worst-case growth).
pub fn plain_budget(budget: usize, compressed: bool) -> usize {
    if compressed {
        // Deflate can grow incompressible input a little (stored blocks plus
        // the sync marker); leave room so one piece compresses into one message.
        (budget - budget / 16 - 32).max(1)
    } else {
        budget
    }
}

/// Builds the `output` events carrying `bytes`, each within `budget` data bytes.
/// With a compressor, each plaintext piece is compressed as its own
/// sync-flushed chunk of the attachment's one stream.
pub fn output_events(
    bytes: &[u8],
    compressor: Option<&mut Compressor>,
    budget: usize,
) -> Result<Vec<Event>, OutputError> {
    numbered_events(bytes, compressor, budget, Numbering::Plain)
}

/// [`output_events`] numbered as `numbering` says.
pub fn numbered_events(
    bytes: &[u8],
    compressor: Option<&mut Compressor>,
    budget: usize,
    numbering: Numbering,
) -> Result<Vec<Event>, OutputError> {
    let event = |data: &[u8], at: usize| {
        let (offset, snapshot) = match numbering {
            Numbering::Plain => (None, false),
            Numbering::Stream(first) => (Some(first + at as u64), false),
            Numbering::Snapshot(next) => (Some(next), true),
        };
        Event::Output {
            data: data.to_vec(),
            offset,
            snapshot,
            pane_id: None,
        }
    };
    let mut events = Vec::new();
    let plain = plain_budget(budget, compressor.is_some());
    match compressor {
        None => {
            for (i, piece) in bytes.chunks(plain).enumerate() {
                events.push(event(piece, i * plain));
            }
        }
        Some(c) => {
            for (i, piece) in bytes.chunks(plain).enumerate() {
                let z = c.compress(piece).map_err(|_| OutputError::Compression)?;
                if z.len() > budget && matches!(numbering, Numbering::Stream(_)) {
                    // A piece split over two messages has no offset for its
                    // second part. Cannot happen: `plain_budget` leaves more
                    // room than deflate's worst-case growth.
                    return Err(OutputError::Compression);
                }
                // Still too big is impossible in practice; splitting the
                // compressed bytes keeps the stream valid for an in-order inflater.
                for part in z.chunks(budget) {
                    events.push(event(part, i * plain));
                }
            }
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use terminal_protocol::Decompressor;

    fn data(e: &Event) -> &[u8] {
        match e {
            Event::Output { data, .. } => data,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_output_is_split_to_the_budget() {
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let budget = data_budget(65_536);
        let events = output_events(&bytes, None, budget).unwrap();
        assert!(events.len() >= 3);
        let mut joined = Vec::new();
        for e in &events {
            assert!(e.encode().len() <= 65_536);
            joined.extend_from_slice(data(e));
        }
        assert_eq!(joined, bytes);
    }

    #[test]
    fn compressed_output_fits_and_inflates_back() {
        // Pseudo-random bytes do not compress: the worst case for the size bound.
        let mut x: u32 = 12345;
        let bytes: Vec<u8> = (0..300_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let budget = data_budget(65_536);
        let mut c = Compressor::new();
        let events = output_events(&bytes, Some(&mut c), budget).unwrap();
        let mut d = Decompressor::new();
        let mut joined = Vec::new();
        for e in &events {
            assert!(e.encode().len() <= 65_536, "{}", e.encode().len());
            let chunk = data(e);
            assert_eq!(&chunk[chunk.len() - 4..], &[0, 0, 0xff, 0xff]);
            joined.extend(d.decompress(chunk).unwrap());
        }
        assert_eq!(joined, bytes);
    }

    #[test]
    fn stream_numbering_follows_plaintext_lengths_through_deflate() {
        let bytes: Vec<u8> = (0..150_000u32).map(|i| (i * 31 % 253) as u8).collect();
        let budget = data_budget(16_384);
        let mut c = Compressor::new();
        let mut d = Decompressor::new();
        let events =
            numbered_events(&bytes, Some(&mut c), budget, Numbering::Stream(1 << 40)).unwrap();
        let mut next = 1u64 << 40;
        for e in &events {
            let Event::Output {
                data,
                offset,
                snapshot,
                ..
            } = e
            else {
                panic!("{e:?}")
            };
            assert!(!snapshot);
            assert_eq!(*offset, Some(next));
            next += d.decompress(data).unwrap().len() as u64;
        }
        assert_eq!(next, (1u64 << 40) + bytes.len() as u64);
    }

    #[test]
    fn snapshot_parts_all_carry_where_the_stream_continues() {
        let events = numbered_events(&[b'x'; 5000], None, 1024, Numbering::Snapshot(77)).unwrap();
        assert_eq!(events.len(), 5);
        for e in &events {
            let Event::Output {
                offset, snapshot, ..
            } = e
            else {
                panic!("{e:?}")
            };
            assert_eq!((*offset, *snapshot), (Some(77), true));
        }
        let plain = output_events(b"abc", None, 1024).unwrap();
        assert_eq!(plain, vec![Event::output(b"abc".to_vec())]);
    }
}
