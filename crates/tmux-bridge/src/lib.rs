//! The host agent's bridge to tmux: one persistent control-mode client for
//! every command, all input and change notifications, plus `pipe-pane -O`
//! for each attached pane's output (tmux's pipe handed to the bridge, or
//! `cat` into a FIFO). The only crate that runs tmux.
//!
//! Not for: protocol decisions (which event to send the phone, validation of
//! ids and dims) — that is the agent's handler; this crate only does what it
//! is told and reports what tmux says.
//!
//! Layout:
//! - `bridge` — [`TmuxBridge`]: the control client started on demand and restarted;
//!   `bridge::commands` (tree, input, sizes, sessions), `bridge::screen` (output, snapshot).
//! - `control` — one `tmux -C` process: writer task, reader task, FIFO reply matching.
//! - `control_parser` — sans-IO split of control-mode lines into reply blocks and notifications.
//! - `notification` — [`Notification`], the typed change events.
//! - `output` — [`PaneOutput`]: a pane's output stream, atomic with its snapshot.
//! - `fifo_dir` — the FIFOs' private directories, pipe markers, clean-up after killed agents.
//! - `hand_off` — the pipe helper passing tmux's pipe socket to the bridge
//!   ([`hand_off_pane_pipe`]), so no `cat` copies pane output.
//! - `snapshot` — the attach snapshot bytes (terminal-protocol §6 step 8), captured
//!   through a private file, never through a control-mode reply.
//! - `title_filter` — [`TitleFilter`], strips `ESC k … ESC \` across chunks.
//! - `tree` — the `list-panes -a` format and its parser.
//! - `quote` — tmux argument quoting.
//! - `error` — [`BridgeError`].
//!
//! Call contract: every async call finishes within [`CALL_TIMEOUT`] (a hung
//! tmux gives [`BridgeError::Timeout`], never blocks other callers); calls
//! may run concurrently and are answered in the order tmux runs them.
//! Attach sequence for the agent: `force_size` → `open_output` (pipe and
//! snapshot in one atomic tmux command list) → send `attached` →
//! `snapshot`/`PaneOutput::take_snapshot` (exactly the screen before the
//! first streamed byte) → loop `PaneOutput::read` through a [`TitleFilter`];
//! on detach `PaneOutput::close` then `release_size`. Pane exit shows as
//! `read` → `None`; tree changes as [`Notification`]s.

#![warn(missing_docs)]

mod bridge;
mod control;
mod control_parser;
mod error;
mod fifo_dir;
mod hand_off;
mod notification;
mod output;
mod quote;
mod snapshot;
mod title_filter;
mod tree;

pub use bridge::{BridgeConfig, CALL_TIMEOUT, INPUT_BYTES_PER_COMMAND, TmuxBridge};
pub use error::{BridgeError, Result};
pub use hand_off::{hand_off_pane_pipe, receive_pane_pipe};
pub use notification::Notification;
pub use output::{MAX_CHUNK, PaneOutput};
pub use quote::quote;
pub use snapshot::{CursorState, build_snapshot};
pub use title_filter::{MAX_TITLE_BYTES, TitleFilter};
