//! Helpers for the end-to-end tests in this folder: starting the bundled server,
//! a private tmux server and the `muxlink` binary.
