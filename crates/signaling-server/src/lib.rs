//! The bundled muxlink signaling server.

#![warn(missing_docs)]
