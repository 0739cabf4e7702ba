//! The per-attach deflate stream (spec §7): many messages on one stream, the
//! 1 MiB inflate bound, and frames from a different deflater.
#![allow(clippy::unwrap_used)]

use proptest::collection::vec;
use proptest::prelude::*;
use terminal_protocol::{Compressor, DecompressError, Decompressor, Event, MAX_OUTPUT_SIZE};

/// Terminal-like output: repetitive lines, escapes, and some noise.
fn screenful(i: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for line in 0..(i % 40) {
        out.extend_from_slice(
            format!("\x1b[32m{i:05}\x1b[0m line {line} of output\r\n").as_bytes(),
        );
    }
    out.extend((0..(i * 7919 % 300)).map(|k| (k * 31 + i) as u8));
    out
}

#[test]
fn many_messages_on_one_stream() {
    let mut c = Compressor::new();
    let mut d = Decompressor::new();
    let (mut plain, mut packed) = (0usize, 0usize);
    for i in 0..2_000 {
        let msg = screenful(i);
        let frame = c.compress(&msg).unwrap();
        assert!(frame.ends_with(&[0, 0, 0xff, 0xff]));
        // Each frame travels as its own `output` event.
        let Event::Output { data, .. } = Event::decode(
            &Event::Output {
                data: frame.clone(),
                offset: None,
                snapshot: false,
                pane_id: None,
            }
            .encode(),
        )
        .unwrap() else {
            panic!("not output");
        };
        assert_eq!(d.decompress(&data).unwrap(), msg, "message {i}");
        plain += msg.len();
        packed += frame.len();
    }
    assert!(
        packed * 2 < plain,
        "{packed} vs {plain}: the window must persist"
    );
}

#[test]
fn a_new_attach_needs_a_new_inflater() {
    let mut c = Compressor::new();
    let _ = c.compress(b"hello\r\n").unwrap();
    let second = c.compress(b"hello\r\n").unwrap();
    // A fresh compressor restarts the stream; a fresh inflater can read it.
    let mut c2 = Compressor::new();
    let mut d2 = Decompressor::new();
    assert_eq!(
        d2.decompress(&c2.compress(b"hello\r\n").unwrap()).unwrap(),
        b"hello\r\n"
    );
    // The old stream's continuation is not the new stream's.
    let mut fresh = Decompressor::new();
    assert_ne!(
        fresh.decompress(&second).ok().as_deref(),
        Some(&b"hello\r\n"[..])
    );
}

#[test]
fn inflate_bound_at_and_past_the_limit() {
    let mut c = Compressor::new();
    let mut d = Decompressor::new();
    let exact = vec![b'a'; MAX_OUTPUT_SIZE];
    let frame = c.compress(&exact).unwrap();
    assert!(frame.len() < 4096, "a small frame: {}", frame.len());
    assert_eq!(d.decompress(&frame).unwrap().len(), MAX_OUTPUT_SIZE);

    let mut c = Compressor::new();
    let mut d = Decompressor::new();
    let bomb = c.compress(&vec![0u8; MAX_OUTPUT_SIZE + 1]).unwrap();
    assert!(matches!(
        d.decompress(&bomb),
        Err(DecompressError::TooLarge)
    ));
    // The stream is now unusable until a new attach.
    assert!(matches!(d.decompress(&[]), Err(DecompressError::Failed)));

    // A much bigger bomb fails the same way (and stops at the bound).
    let mut c = Compressor::new();
    let big = c.compress(&vec![0u8; 8 * MAX_OUTPUT_SIZE]).unwrap();
    assert!(matches!(
        Decompressor::new().decompress(&big),
        Err(DecompressError::TooLarge)
    ));
}

#[test]
fn frames_split_anywhere_still_inflate() {
    // Not what hosts send, but an inflater must not lose bytes when a chunk
    // ends mid-block: output appears once the rest arrives.
    let mut c = Compressor::new();
    let frame = c.compress(b"split me across two frames, please").unwrap();
    for cut in 0..frame.len() {
        let mut d = Decompressor::new();
        let mut out = d.decompress(&frame[..cut]).unwrap();
        out.extend(d.decompress(&frame[cut..]).unwrap());
        assert_eq!(out, b"split me across two frames, please", "cut {cut}");
    }
}

#[test]
fn zlib_framing_is_not_raw_deflate() {
    // A zlib header (78 9c) is not a valid raw stream start for this text.
    let zlib = hex::decode("789ccb48cdc9c9e7e50200").unwrap();
    let got = Decompressor::new().decompress(&zlib);
    assert_ne!(got.ok().as_deref(), Some(&b"hello\r\n"[..]));
}

proptest! {
    #[test]
    fn round_trip_random_messages(msgs in vec(vec(any::<u8>(), 0..3000), 1..30)) {
        let mut c = Compressor::new();
        let mut d = Decompressor::new();
        for m in &msgs {
            let frame = c.compress(m).unwrap();
            prop_assert_eq!(&d.decompress(&frame).unwrap(), m);
        }
    }

    #[test]
    fn arbitrary_frames_never_panic(frames in vec(vec(any::<u8>(), 0..200), 1..5)) {
        let mut d = Decompressor::new();
        for f in &frames {
            let _ = d.decompress(f);
        }
    }
}
