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
//! keeps the better compression the link needs. Once the sender has caught
//! up (or the lag rule skipped it to the head), the usual level returns.

use std::time::Duration;

use terminal_protocol::{DEFLATE_LEVEL, FAST_DEFLATE_LEVEL};

/// Backlog from which a sender whose compression does not pay switches to
/// the fast level: a quarter of the lag bound (1 MiB), so it acts well
/// before a skip.
const FAST_FROM: u64 = 256 * 1024;
/// Backlog below which the sender has caught up and the usual level returns.
const NORMAL_BELOW: u64 = 64 * 1024;

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

/// The level decision of one attachment's sender.
#[derive(Debug, Default)]
pub(super) struct LevelChooser {
    fast: bool,
}

impl LevelChooser {
    /// The level for the next piece, after one went out: `backlog` bytes are
    /// read from the pane and not yet sent; `cost` is what the piece took.
    pub(super) fn after_piece(&mut self, backlog: u64, cost: &PieceCost) -> u32 {
        if self.fast {
            self.fast = backlog >= NORMAL_BELOW;
        } else {
            self.fast = backlog >= FAST_FROM && cost.compressing > link_time_saved(cost);
        }
        if self.fast {
            FAST_DEFLATE_LEVEL
        } else {
            DEFLATE_LEVEL
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
    fn falling_behind_while_compression_does_not_pay_switches_until_caught_up() {
        let mut c = LevelChooser::default();
        // 1 ms of CPU saved 0.64 x 1 ms of link time.
        assert_eq!(
            c.after_piece(FAST_FROM, &letters(MS, MS)),
            FAST_DEFLATE_LEVEL
        );
        // At the fast level the costs no longer decide; catching up does.
        assert_eq!(
            c.after_piece(FAST_FROM / 2, &letters(US, MS)),
            FAST_DEFLATE_LEVEL
        );
        assert_eq!(
            c.after_piece(NORMAL_BELOW, &letters(US, MS)),
            FAST_DEFLATE_LEVEL
        );
        assert_eq!(
            c.after_piece(NORMAL_BELOW - 1, &letters(US, MS)),
            DEFLATE_LEVEL
        );
        assert_eq!(c.after_piece(NORMAL_BELOW, &letters(MS, US)), DEFLATE_LEVEL);
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
