//! Serde types of the muxlink signaling wire (WebSocket JSON, HTTP bodies, JWT
//! claims), request signing and device-id derivation. No I/O.

#![warn(missing_docs)]
