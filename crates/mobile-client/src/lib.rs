//! The phone side of muxlink in Rust.

#![warn(missing_docs)]
