//! Screens captured apart from the stream (docs/stream-v2.md §6): a
//! snapshot of a pane whose stream is already open is `capture-pane` now and
//! the ring's head after it, and the two are not one moment. tmux draws a
//! byte when it reads it but hands it to `pipe-pane` later, through its own
//! buffer and its pipe socket (and `cat` and the FIFO when the pipe helper is
//! not used); a byte in that pipeline as the screen is captured ends up in
//! the screen and again in the stream after the head (a line drawn twice),
//! and one drawn during the capture may miss both. Under
//! load the pipeline is milliseconds long and a flooding pane always has
//! bytes in it, so a lag snapshot is usually off by part of a row.
//!
//! tmux offers no count of the bytes it has piped, so the moment cannot be
//! made exact. What can be known is when it did not matter: a capture taken
//! while the stream had been quiet for [`SETTLE_QUIET`] and did not move
//! during it matches its head. A snapshot taken otherwise is *unsettled*,
//! and its attachment sends one more snapshot once the pane has been quiet
//! that long, so the phone ends on the pane's true screen when the output
//! stops.

use std::time::Duration;

use tmux_bridge::{BridgeError, TmuxBridge};
use tokio::time::Instant;

use super::stream::PaneStream;

/// How long the stream must have had no new bytes before a capture is
/// trusted to match its head: longer than the pipeline from tmux to the
/// ring takes under load (a fraction of a millisecond when idle), short
/// enough that a phone shows a wrong screen only briefly after a flood.
pub(super) const SETTLE_QUIET: Duration = Duration::from_millis(50);

/// A screen captured from a pane and the stream offset it stands for.
#[derive(Debug)]
pub(super) struct Captured {
    /// The screen, or why it could not be taken.
    pub screen: Result<Vec<u8>, BridgeError>,
    /// The stream's head as the capture returned: where the stream continues.
    pub head: u64,
    /// The screen is known to match `head` (see the module doc).
    pub settled: bool,
}

/// Captures `stream`'s pane and notes whether the capture is settled.
pub(super) async fn capture(bridge: &TmuxBridge, stream: &PaneStream) -> Captured {
    let before = stream.head();
    let quiet = is_quiet(stream.last_append(), Instant::now());
    let screen = bridge.snapshot(stream.pane_id()).await;
    let head = stream.head();
    Captured {
        screen,
        head,
        settled: quiet && head == before,
    }
}

/// Whether a stream whose last append was at `last` has been quiet long
/// enough at `now` for a capture to match its head.
pub(super) fn is_quiet(last: Option<Instant>, now: Instant) -> bool {
    quiet_from(last).is_none_or(|at| at <= now)
}

/// When a stream whose last append was at `last` will have been quiet for
/// [`SETTLE_QUIET`] (`None`: it never had a byte, so it is quiet already).
pub(super) fn quiet_from(last: Option<Instant>) -> Option<Instant> {
    last.map(|t| t + SETTLE_QUIET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_quiet_only_settle_quiet_after_its_last_byte() {
        let t = Instant::now();
        assert!(is_quiet(None, t));
        assert!(!is_quiet(Some(t), t));
        assert!(!is_quiet(
            Some(t),
            t + SETTLE_QUIET - Duration::from_millis(1)
        ));
        assert!(is_quiet(Some(t), t + SETTLE_QUIET));
        assert_eq!(quiet_from(Some(t)), Some(t + SETTLE_QUIET));
        assert_eq!(quiet_from(None), None);
    }
}
