//! Fuzzes one `Decompressor` fed a sequence of arbitrary frames (output bounded
//! by MAX_OUTPUT_SIZE, no panic), and checks each frame round-trips through a
//! persistent `Compressor` / `Decompressor` pair.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terminal_protocol::{Compressor, Decompressor, MAX_OUTPUT_SIZE};

fuzz_target!(|frames: Vec<Vec<u8>>| {
    let mut inflater = Decompressor::new();
    for frame in &frames {
        match inflater.decompress(frame) {
            Ok(out) => assert!(out.len() <= MAX_OUTPUT_SIZE),
            Err(_) => break,
        }
    }
    let mut c = Compressor::new();
    let mut d = Decompressor::new();
    for frame in &frames {
        let packed = c
            .compress(frame)
            .expect("compressing in-memory bytes cannot fail");
        assert!(packed.ends_with(&[0, 0, 0xff, 0xff]));
        assert_eq!(&d.decompress(&packed).expect("own stream inflates"), frame);
    }
});
