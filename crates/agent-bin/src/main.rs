//! The `muxlink` binary.
fn main() {}
