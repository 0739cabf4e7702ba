//! The transport on the `rtc` 0.21 sans-IO core: [`RtcPeer`] and
//! [`RtcChannel`], each peer driven by one task of ours on the stack thread
//! that owns the core and the peer's UDP sockets
//! (docs/transport-sansio.md has the measurements behind the move and the
//! plan). It gathers host candidates (one socket per local address),
//! server-reflexive ones from STUN servers and relayed ones from TURN
//! servers over UDP.
//!
//! - `peer`: the peer handle; it starts the driver.
//! - `gather`: which local addresses get a socket, and the STUN queries.
//! - `turn`: one TURN client per server, its allocation and permissions.
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
mod turn;

pub use channel::RtcChannel;
pub use peer::RtcPeer;
