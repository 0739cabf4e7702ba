//! Turning pane bytes into `output` events that fit the phone's message limit:
//! split, optionally deflate each piece (its own sync-flushed chunk), encode.

use terminal_protocol::{Compressor, Event, MAX_MESSAGE_SIZE};

/// Bytes reserved for the msgpack envelope of an `output` event
/// (map header, `type`, `output`, `data`, bin32 header) with room to spare.
const ENVELOPE: usize = 64;
/// Smallest budget used even if a phone advertises less (a phone that small cannot work).
const MIN_BUDGET: usize = 1024;

/// The largest `data` payload allowed for a phone with `max_message_size`.
pub fn data_budget(max_message_size: usize) -> usize {
    max_message_size
        .min(MAX_MESSAGE_SIZE)
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

/// Builds the `output` events carrying `bytes`, each within `budget` data bytes.
/// With a compressor, each plaintext piece is compressed as its own
/// sync-flushed chunk of the attachment's one stream.
pub fn output_events(
    bytes: &[u8],
    compressor: Option<&mut Compressor>,
    budget: usize,
) -> Result<Vec<Event>, OutputError> {
    let mut events = Vec::new();
    match compressor {
        None => {
            for piece in bytes.chunks(budget) {
                events.push(Event::Output {
                    data: piece.to_vec(),
                    offset: None,
                    snapshot: false,
                    pane_id: None,
                });
            }
        }
        Some(c) => {
            // Deflate can grow incompressible input a little (stored blocks plus
            // the sync marker); leave room so one piece compresses into one message.
            let plain = budget - budget / 16 - 32;
            for piece in bytes.chunks(plain.max(1)) {
                let z = c.compress(piece).map_err(|_| OutputError::Compression)?;
                // Still too big is impossible in practice; splitting the
                // compressed bytes keeps the stream valid for an in-order inflater.
                for part in z.chunks(budget) {
                    events.push(Event::Output {
                        data: part.to_vec(),
                        offset: None,
                        snapshot: false,
                        pane_id: None,
                    });
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
}
