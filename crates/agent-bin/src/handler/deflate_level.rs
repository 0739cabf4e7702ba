//! Which deflate level an attachment's next output piece is compressed at
//! (docs/stream-v2.md §6 is why it matters): the usual
//! [`DEFLATE_LEVEL`], or [`FAST_DEFLATE_LEVEL`] while deflate itself is what
//! holds the sender back. A plain type fed what each sent piece cost; the
//! output sender asks it after every piece.
//!
//! Deflate is the bottleneck when the sender falls behind the pane (a backlog
//! of read but unsent bytes builds up) while compressing a piece took longer
//! than the link time its compression saved: the time the piece's bytes took
//! to hand to the channel, scaled by how many more bytes the plain piece
//! would have been. Random-letter lines at level 2 keep 0.61 of their bytes
//! for about 20 ms of CPU per MB; that pays on a mobile link and costs
//! throughput on a loopback one, where the agent's CPU is also the phone's
//! and tmux's (the bench's 2 cores). Log lines shrink to a seventh, so their
//! saving outweighs the CPU on any link and they keep the usual level. On a
//! slow link the sends wait for room, the saving is large, and every byte
//! keeps the better compression the link needs. The fast level then stays:
//! every sixteenth piece goes at the usual level as a probe, and the usual
//! level returns when a probe's compression pays (the link slowed down, or
//! the output became compressible).

use std::time::Duration;

use terminal_protocol::{DEFLATE_LEVEL, FAST_DEFLATE_LEVEL};

/// Backlog from which a sender whose compression does not pay switches to
/// the fast level: a quarter of the lag bound (1 MiB), so it acts well
/// before a skip.
const FAST_FROM: u64 = 256 * 1024;
/// At the fast level, every this many pieces one goes at the usual level
/// again, to see whether compression now pays (the output or the link
/// changed): a sixteenth of the pieces, about 1 MiB of bulk output apart.
const PROBE_EVERY: u32 = 16;

/// What sending one piece cost (the output sender's `send_output`):
/// building (and compressing) its events, and handing them to the channel
/// (waiting for room included); the piece's bytes before and after
/// compression.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PieceCost {
    pub compressing: Duration,
    pub sending: Duration,
    pub plain: usize,
    pub wire: usize,
}

/// Where one attachment's sender stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The usual level.
    #[default]
    Usual,
    /// The fast level, this many pieces since the last at the usual level.
    Fast(u32),
    /// One piece at the usual level while the fast level is in use.
    Probe,
}

/// The level decision of one attachment's sender.
#[derive(Debug, Default)]
pub(super) struct LevelChooser {
    mode: Mode,
}

impl LevelChooser {
    /// The level for the next piece, after one went out: `backlog` bytes are
    /// read from the pane and not yet sent; `cost` is what the piece took.
    ///
    /// The fast level is kept once chosen, until a probe piece at the usual
    /// level shows compression paying again: going back as soon as the
    /// sender caught up made it fall behind again at once, and the swings
    /// took it past the lag bound (skips) where uncompressed output kept up.
    pub(super) fn after_piece(&mut self, backlog: u64, cost: &PieceCost) -> u32 {
        let does_not_pay = cost.compressing > link_time_saved(cost);
        self.mode = match self.mode {
            Mode::Usual if backlog >= FAST_FROM && does_not_pay => Mode::Fast(0),
            Mode::Usual => Mode::Usual,
            // The sender was behind when it went fast; the probe's own costs decide.
            Mode::Probe if does_not_pay => Mode::Fast(0),
            Mode::Probe => Mode::Usual,
            Mode::Fast(n) if n + 1 >= PROBE_EVERY => Mode::Probe,
            Mode::Fast(n) => Mode::Fast(n + 1),
        };
        match self.mode {
            Mode::Fast(_) => FAST_DEFLATE_LEVEL,
            Mode::Usual | Mode::Probe => DEFLATE_LEVEL,
        }
    }
}

/// How much longer the piece would have taken to hand to the channel
/// uncompressed, at the rate its compressed bytes went.
fn link_time_saved(cost: &PieceCost) -> Duration {
    if cost.wire == 0 {
        return Duration::MAX;
    }
    let saved = cost.plain.saturating_sub(cost.wire) as f64 / cost.wire as f64;
    // Finite and not negative; a product past what a Duration holds is "a lot".
    Duration::try_from_secs_f64(cost.sending.as_secs_f64() * saved).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const US: Duration = Duration::from_micros(50);
    const PIECE: usize = 64 * 1024;

    /// A piece of random-letter lines at level 2: 0.61 of its bytes left.
    fn letters(compressing: Duration, sending: Duration) -> PieceCost {
        PieceCost {
            compressing,
            sending,
            plain: PIECE,
            wire: PIECE * 61 / 100,
        }
    }

    #[test]
    fn a_sender_that_keeps_up_stays_at_the_usual_level() {
        let mut c = LevelChooser::default();
        assert_eq!(c.after_piece(0, &letters(MS, US)), DEFLATE_LEVEL);
        assert_eq!(
            c.after_piece(FAST_FROM - 1, &letters(MS, US)),
            DEFLATE_LEVEL
        );
    }

    #[test]
    fn falling_behind_while_compression_does_not_pay_stays_fast_between_probes() {
        let mut c = LevelChooser::default();
        // 1 ms of CPU saved 0.64 x 1 ms of link time.
        assert_eq!(
            c.after_piece(FAST_FROM, &letters(MS, MS)),
            FAST_DEFLATE_LEVEL
        );
        // At the fast level neither the costs nor catching up decide: the
        // sender stays fast until a probe.
        for _ in 1..PROBE_EVERY {
            assert_eq!(c.after_piece(0, &letters(US, MS)), FAST_DEFLATE_LEVEL);
        }
        assert_eq!(c.after_piece(0, &letters(US, MS)), DEFLATE_LEVEL);
        // The probe still does not pay: fast again, whatever the backlog.
        assert_eq!(c.after_piece(0, &letters(MS, MS)), FAST_DEFLATE_LEVEL);
    }

    #[test]
    fn a_probe_that_pays_returns_to_the_usual_level() {
        let mut c = LevelChooser::default();
        assert_eq!(
            c.after_piece(FAST_FROM, &letters(MS, MS)),
            FAST_DEFLATE_LEVEL
        );
        for _ in 1..PROBE_EVERY {
            c.after_piece(FAST_FROM, &letters(US, MS));
        }
        assert_eq!(c.after_piece(FAST_FROM, &letters(US, MS)), DEFLATE_LEVEL);
        // The link got slow: 1 ms of CPU saved 0.64 x 20 ms.
        assert_eq!(
            c.after_piece(FAST_FROM, &letters(MS, 20 * MS)),
            DEFLATE_LEVEL
        );
        // Back at the usual level, a sender that keeps up stays there.
        assert_eq!(c.after_piece(0, &letters(MS, MS)), DEFLATE_LEVEL);
    }

    #[test]
    fn a_slow_link_keeps_the_usual_level_however_far_behind() {
        let mut c = LevelChooser::default();
        for backlog in [FAST_FROM, 4 * FAST_FROM, 1 << 20] {
            assert_eq!(c.after_piece(backlog, &letters(MS, 20 * MS)), DEFLATE_LEVEL);
        }
    }

    #[test]
    fn output_that_compresses_well_keeps_the_usual_level_on_a_fast_link() {
        let mut c = LevelChooser::default();
        // Log lines: a seventh of the bytes; 1 ms of CPU saves 6 x 0.5 ms.
        let logs = PieceCost {
            compressing: MS,
            sending: MS / 2,
            plain: PIECE,
            wire: PIECE / 7,
        };
        assert_eq!(c.after_piece(1 << 20, &logs), DEFLATE_LEVEL);
    }

    #[test]
    fn a_piece_that_grew_never_pays() {
        let mut c = LevelChooser::default();
        let grew = PieceCost {
            compressing: US,
            sending: 20 * MS,
            plain: PIECE,
            wire: PIECE + 5,
        };
        assert_eq!(c.after_piece(FAST_FROM, &grew), FAST_DEFLATE_LEVEL);
    }

    #[test]
    fn extreme_costs_do_not_panic() {
        let mut c = LevelChooser::default();
        let huge = PieceCost {
            compressing: MS,
            sending: Duration::MAX,
            plain: usize::MAX,
            wire: 1,
        };
        assert_eq!(c.after_piece(FAST_FROM, &huge), DEFLATE_LEVEL);
        let empty = PieceCost::default();
        assert_eq!(c.after_piece(FAST_FROM, &empty), DEFLATE_LEVEL);
    }
}
