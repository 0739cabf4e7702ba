//! The muxlink host agent as a library: config, identity, pairing, the protocol
//! handler and supervision. The `muxlink` binary in `main.rs` only parses the CLI.

#![warn(missing_docs)]
