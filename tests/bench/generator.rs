//! `muxlink-bench gen`: the program the bench runs inside a pane. It waits for
//! one input byte (the start signal), prints the pattern between the markers,
//! then records how many bytes it wrote and their checksum in a file. After
//! that it answers every input byte with the end marker again: a phone that
//! fell behind may have had the first one skipped (docs/stream-v2.md §6), and
//! asks for another.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::pattern::{END, Fnv, Kind, Pattern, START};

/// Bytes per write.
const CHUNK: usize = 64 * 1024;

/// What the generator wrote, as recorded in its sum file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Pattern bytes between the markers.
    pub bytes: u64,
    /// Their FNV-1a checksum.
    pub hash: u64,
}

impl Written {
    /// Reads a sum file; `None` while the generator has not finished.
    pub fn read(path: &std::path::Path) -> Option<Written> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut it = text.split_whitespace();
        let bytes = it.next()?.parse().ok()?;
        let hash = u64::from_str_radix(it.next()?, 16).ok()?;
        Some(Written { bytes, hash })
    }
}

/// The shell command that runs the generator in a pane: raw mode (no newline
/// translation, no echo of the start byte), then `gen`.
pub fn pane_command(bench: &str, bytes: u64, seconds: u64, sum_file: &str, kind: Kind) -> String {
    format!(
        "stty raw -echo; exec '{bench}' gen {bytes} {seconds} '{sum_file}' {}",
        kind.as_str()
    )
}

/// Entry point of `gen <bytes> <seconds> <sum-file> <letters|log>`: stops
/// after `bytes` bytes when non-zero, else after `seconds`.
pub fn run(args: &[String]) -> Result<()> {
    let [bytes, seconds, sum_file, kind] = args else {
        bail!("usage: muxlink-bench gen <bytes> <seconds> <sum-file> <letters|log>");
    };
    let kind = Kind::parse(kind).context("kind must be letters or log")?;
    let limit: u64 = bytes.parse().context("bytes")?;
    let seconds: u64 = seconds.parse().context("seconds")?;
    if limit == 0 && seconds == 0 {
        bail!("give a byte count or a duration");
    }
    let mut stdin = std::io::stdin().lock();
    let mut one = [0u8; 1];
    if stdin.read(&mut one)? == 0 {
        bail!("stdin closed before the start signal");
    }

    let mut out = std::io::stdout().lock();
    out.write_all(&[START])?;
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(seconds);
    let mut pattern = Pattern::new(kind);
    let mut hash = Fnv::default();
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0u64;
    loop {
        let n = if limit > 0 {
            let left = limit - written;
            if left == 0 {
                break;
            }
            usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK))
        } else {
            if Instant::now() >= stop_at {
                break;
            }
            CHUNK
        };
        pattern.fill(&mut buf[..n]);
        out.write_all(&buf[..n])?;
        hash.update(&buf[..n]);
        written += n as u64;
    }
    out.write_all(&[END])?;
    out.flush()?;

    // Written to a temporary name and renamed, so a reader never sees half a file.
    let tmp = format!("{sum_file}.tmp");
    std::fs::write(&tmp, format!("{written} {:016x}\n", hash.value()))?;
    std::fs::rename(&tmp, sum_file)?;

    // Stay alive (the pane stays open) until the bench kills the pane,
    // printing the end marker once more for each read of input.
    let mut sink = [0u8; 256];
    while stdin.read(&mut sink).unwrap_or(0) > 0 {
        out.write_all(&[END])?;
        out.flush()?;
    }
    Ok(())
}
