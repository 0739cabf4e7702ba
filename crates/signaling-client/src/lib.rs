//! The host agent's persistent signaling WebSocket client.

#![warn(missing_docs)]

pub mod core;
