//! Which deflate level an attachment's next output piece is compressed at
//! (docs/stream-v2.md §6 is why it matters): the usual
//! [`DEFLATE_LEVEL`], or [`FAST_DEFLATE_LEVEL`] while deflate itself is what
//! holds the sender back. A plain type fed what each sent piece cost; the
//! output sender asks it after every piece.
//!
//! Deflate is the bottleneck when the sender falls behind the pane (a backlog
//! of read but unsent bytes builds up) while handing pieces to the channel
//! took less time than compressing them: the link keeps up, the CPU does
//! not. On a slow link the sends wait for room instead, the rule never
//! fires, and every byte keeps the better compression the link needs. Once
//! the sender has caught up (or the lag rule skipped it to the head), the
//! usual level returns.

use std::time::Duration;

use terminal_protocol::{DEFLATE_LEVEL, FAST_DEFLATE_LEVEL};

/// Backlog from which a sender that outpaces its link switches to the fast
/// level: a quarter of the lag bound (1 MiB), so it acts well before a skip.
const FAST_FROM: u64 = 256 * 1024;
/// Backlog below which the sender has caught up and the usual level returns.
const NORMAL_BELOW: u64 = 64 * 1024;

/// The level decision of one attachment's sender.
#[derive(Debug, Default)]
pub(super) struct LevelChooser {
    fast: bool,
}

impl LevelChooser {
    /// The level for the next piece, after one went out: `backlog` bytes are
    /// read from the pane and not yet sent; compressing the piece took
    /// `compressing` and handing it to the channel `sending`.
    pub(super) fn after_piece(
        &mut self,
        backlog: u64,
        compressing: Duration,
        sending: Duration,
    ) -> u32 {
        if self.fast {
            self.fast = backlog >= NORMAL_BELOW;
        } else {
            self.fast = backlog >= FAST_FROM && sending < compressing;
        }
        if self.fast {
            FAST_DEFLATE_LEVEL
        } else {
            DEFLATE_LEVEL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const US: Duration = Duration::from_micros(50);

    #[test]
    fn a_sender_that_keeps_up_stays_at_the_usual_level() {
        let mut c = LevelChooser::default();
        assert_eq!(c.after_piece(0, MS, US), DEFLATE_LEVEL);
        assert_eq!(c.after_piece(FAST_FROM - 1, MS, US), DEFLATE_LEVEL);
    }

    #[test]
    fn falling_behind_a_fast_link_switches_until_caught_up() {
        let mut c = LevelChooser::default();
        assert_eq!(c.after_piece(FAST_FROM, MS, US), FAST_DEFLATE_LEVEL);
        // At the fast level compressing is cheap; the sends' time no longer decides.
        assert_eq!(c.after_piece(FAST_FROM / 2, US, MS), FAST_DEFLATE_LEVEL);
        assert_eq!(c.after_piece(NORMAL_BELOW, US, MS), FAST_DEFLATE_LEVEL);
        assert_eq!(c.after_piece(NORMAL_BELOW - 1, US, MS), DEFLATE_LEVEL);
        assert_eq!(c.after_piece(NORMAL_BELOW, MS, US), DEFLATE_LEVEL);
    }

    #[test]
    fn a_slow_link_keeps_the_usual_level_however_far_behind() {
        let mut c = LevelChooser::default();
        for backlog in [FAST_FROM, 4 * FAST_FROM, 1 << 20] {
            assert_eq!(c.after_piece(backlog, MS, 20 * MS), DEFLATE_LEVEL);
        }
    }
}
