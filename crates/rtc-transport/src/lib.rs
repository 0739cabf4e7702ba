//! The only wrapper of the `webrtc` crate in muxlink: peer connections, the
//! "terminal" DataChannel, trickle ICE queueing and sending with backpressure.

#![warn(missing_docs)]
