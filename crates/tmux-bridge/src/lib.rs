//! The host agent's bridge to tmux: one control-mode client and pipe-pane output.

#![warn(missing_docs)]
