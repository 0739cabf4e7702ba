//! The agent's binary as tmux's pane pipe helper: `muxlink __pane-pipe
//! <socket>` hands the pane's pipe (its stdin) to the agent's bridge and
//! exits, so pane output goes from tmux straight to the agent with no `cat`
//! in between (see `tmux_bridge::hand_off_pane_pipe`).

use std::ffi::OsString;
use std::process::ExitCode;

/// The hidden word tmux's `pipe-pane` runs this binary with, followed by a
/// socket path. `main_entry` checks for it before anything else, so the
/// helper starts no runtime, reads no config and logs nothing.
pub const PANE_PIPE_WORD: &str = "__pane-pipe";

/// The bridge's `pipe_helper` for this binary (`<exe> __pane-pipe`); None
/// when the path cannot be told (the bridge then uses `cat`).
pub(crate) fn helper() -> Option<Vec<String>> {
    let exe = std::env::current_exe().ok()?;
    Some(pane_pipe_helper(exe.to_str()?))
}

/// The bridge's `pipe_helper` words for the `muxlink` binary at `exe`.
pub fn pane_pipe_helper(exe: &str) -> Vec<String> {
    vec![exe.to_owned(), PANE_PIPE_WORD.to_owned()]
}

/// Runs the helper if `args` (the whole command line) asks for it.
pub(crate) fn run_if_asked(args: &[OsString]) -> Option<ExitCode> {
    let [_, word, socket] = args else {
        return None;
    };
    if word != PANE_PIPE_WORD {
        return None;
    }
    // Failure makes the pipe command fall back to `cat`; stderr is
    // /dev/null under tmux, so the exit code is the whole report.
    Some(
        match tmux_bridge::hand_off_pane_pipe(std::path::Path::new(socket)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        },
    )
}
