//! The bridge's error type.

use std::time::Duration;

/// Why a bridge call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// No tmux server runs on the socket (or it has no sessions).
    #[error("no tmux server is running")]
    NoServer,
    /// tmux did not answer in time.
    #[error("tmux did not answer within {0:?}")]
    Timeout(Duration),
    /// The control client ended while the command was in flight.
    #[error("the tmux control client exited")]
    ControlExited,
    /// tmux rejected the command; the text is tmux's message (do not show it to the phone).
    #[error("tmux error: {0}")]
    Tmux(String),
    /// The pane does not exist (any more).
    #[error("pane {0} not found")]
    PaneNotFound(String),
    /// The pane's output is already piped by someone else; it was left alone.
    #[error("pane {0} is already piped elsewhere")]
    AlreadyPiped(String),
    /// tmux answered something the bridge could not read.
    #[error("unexpected reply from tmux: {0}")]
    Protocol(String),
    /// Starting tmux or a file operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Short alias used across the crate.
pub type Result<T, E = BridgeError> = std::result::Result<T, E>;
