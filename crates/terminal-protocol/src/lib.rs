//! The muxlink DataChannel protocol: MessagePack messages, bounds, the
//! per-attach deflate stream and the key-possession MAC. No I/O.

#![warn(missing_docs)]

pub mod tree;

pub use tree::{Pane, PaneSize, Session, Window};
