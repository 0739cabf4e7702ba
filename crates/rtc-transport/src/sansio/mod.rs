//! The sans-IO stack (cargo feature `sansio`): the same [`RtcPeer`] and
//! [`RtcChannel`] API on the `rtc` 0.21 core, each peer driven by one task of
//! ours on the stack thread that owns the core and the peer's UDP socket
//! (docs/transport-sansio.md has the measurements behind the move and the
//! plan). So far it gathers host candidates (one socket per local address)
//! and server-reflexive ones from STUN servers; it has no TURN client yet,
//! and [`RtcPeer::new`] refuses a TURN server or a relay-only policy.
//!
//! - `peer`: the peer handle; it starts the driver.
//! - `gather`: which local addresses get a socket, and the STUN queries.
//! - `shared`: what a peer's handles and driver share (state, queues).
//! - `channel`: the channel handle, the state it shares with the driver and
//!   its `ChannelOp`s (sends, close).
//! - `command`: what the peer handle asks the driver.
//! - `driver`: the task (events, then received messages, then datagrams,
//!   after every input); `driver/apply` carries out commands and channel ops.

mod channel;
mod command;
mod driver;
mod gather;
mod peer;
mod shared;

pub use channel::RtcChannel;
pub use peer::RtcPeer;
