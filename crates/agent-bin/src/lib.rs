//! The muxlink host agent as a library: config, identity and pairing storage,
//! the CLI commands, the terminal-protocol handler over the tmux bridge, and the
//! daemon that wires signaling, peers and handler together. The `muxlink` binary
//! in `main.rs` only parses arguments and calls [`commands::dispatch`].
//!
//! Not here: wire formats (signaling-proto, terminal-protocol), WebRTC
//! (rtc-transport via peer-manager), tmux I/O (tmux-bridge), the server itself
//! (signaling-server, only run in-process by `muxlink serve`).
//!
//! Layout:
//! - `cli`: clap definitions of every command and global option.
//! - `commands`: one module per command (`init`, `pair`, `unpair`, `status`,
//!   `start`/`stop`, `serve`, `web`, `service`, `completions` and the man
//!   pages, tmux passthrough). `serve` and `web export` link the signaling-server
//!   crate (the server and its embedded web client) and exist only with the
//!   cargo feature `serve`, on by default; without it the binary is the agent
//!   alone and both words get one line saying so.
//! - `config`: `config.toml` + `MUXLINK_*` env + flags → [`config::Config`]
//!   (`api_version` / `MUXLINK_API_VERSION` among them; checks in `config/checks.rs`).
//! - `store`: identity key, pairing secrets and `paired_devices.json`, and the
//!   file rules: dirs 0700 and ours (looser tightened with a warning, another
//!   user's refused), files 0600 written atomically through `tempfile`.
//! - `pairing`: pairing v2 on the host: X25519 key and token per attempt, QR
//!   payload and web URL, the check of each relayed `pair_complete`.
//! - `printable`: escaping of names from elsewhere before they are printed.
//! - `http`: the CLI's signed HTTP steps (challenge, token, pair/initiate,
//!   unpair) over `signaling_client::http`, on the configured `api_version`.
//! - `qr`: QR code rendering for the terminal.
//! - `handler`: the `ProtocolHandler` (attachments, output streaming, every request).
//! - `daemon`: `muxlink run` (wiring, signals, status file).
//! - `pidfile`: the flock'd pidfile (runtime dir) and data-dir lock so two
//!   agents never run.
//! - `status`: the JSON status file shared by the daemon and `muxlink status`.
//! - `entry`: [`main_entry`], the process entry of the binary (typos of our
//!   commands are refused before anything goes to tmux).
//! - `pane_pipe`: `muxlink __pane-pipe`, the binary as tmux's pane pipe
//!   helper (hands the pipe to the bridge, so no `cat` copies pane output).
//! - `tmux_commands`: which words pass through to tmux (the installed tmux's
//!   own commands, aliases and unique prefixes).
//! - `error`: [`error::CliError`], one clear line per failure.
//! - `logging`: tracing (`RUST_LOG` / `-v`) to stderr, the journal's stderr, or
//!   the background agent's size-rotated log file.

#![warn(missing_docs)]

pub use entry::main_entry;
pub use pane_pipe::{PANE_PIPE_WORD, pane_pipe_helper};

pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
mod entry;
pub mod error;
pub mod handler;
pub mod http;
pub mod logging;
pub mod pairing;
mod pane_pipe;
pub mod pidfile;
pub mod printable;
pub mod qr;
pub mod readiness;
pub mod status;
pub mod store;
pub mod tmux_commands;
