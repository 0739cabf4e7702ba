//! The only wrapper of the `webrtc` crate in muxlink: peer connections, the
//! "terminal" DataChannel and the unordered, unreliable fast channel of stream
//! v2, trickle ICE queueing, sending with backpressure and without waiting.
//!
//! Both ends use it: the host (peer-manager, always the offerer) and the phone
//! (mobile-client, always the answerer). No other muxlink crate names `webrtc`, so a
//! move to another WebRTC library touches this crate alone.
//!
//! It is NOT a protocol crate: it moves opaque binary messages. Framing, key
//! possession and the terminal protocol live in `terminal-protocol` and its users.
//!
//! Layout:
//! - `config`: [`RtcConfig`] and [`IceServer`].
//! - `setting_engine`: how webrtc 0.17.2 takes an [`RtcConfig`] (its setting
//!   engine, `RTCConfiguration` and API object).
//! - `peer`: [`RtcPeer`], offer/answer, trickle ICE with a bounded queue, close.
//! - `chan_state`: a channel's lifecycle and the waits both stacks' channels
//!   share (open, close, room below the high-water mark).
//! - `channel`: [`RtcChannel`], the detached DataChannel with a bounded receive
//!   queue, send backpressure and a non-waiting [`RtcChannel::try_send`].
//! - `options`: [`ChannelOptions`]: reliable and ordered, or fast (unordered,
//!   no retransmissions); either side may open a channel on a connected peer
//!   (SCTP announces it in band, no renegotiation). [`FAST_COPY_LEAD`]: how
//!   long a reliable original waits after its fast copy, since SCTP bundles
//!   every channel's queued chunks into one packet.
//! - `sdp`: small SDP text helpers (advertise and read `a=max-message-size`;
//!   the sans-IO stack's outgoing SDP without candidate lines).
//! - `socket`: our own loopback host-candidate UDP sockets with 4 MiB buffers.
//! - `prflx`: trickled remote host candidates rank just below peer-reflexive
//!   ones, so a duplicate of a peer-reflexive address cannot delay nomination.
//! - `stack`: the "rtc-stack" thread, a current-thread runtime on which every
//!   peer's library tasks run whatever runtime the caller uses (fewer
//!   cross-thread wake-ups per message).
//! - `dtls`: [`DtlsFingerprints`]: SHA-256 of our DTLS certificate and of the one
//!   the remote end presented, for channel authentication v2.
//! - `event`: [`RtcEvent`], [`Candidate`], [`PeerState`].
//! - `error`: [`RtcError`].
//! - `sansio` (cargo feature `sansio`, off by default): the same [`RtcPeer`]
//!   and [`RtcChannel`] on the `rtc` 0.21 sans-IO core, each peer driven by
//!   one task of ours, with its own host, STUN and TURN gathering
//!   (docs/transport-sansio.md).
//!   With the feature on, `channel`, `peer`, `prflx`, `setting_engine` and
//!   `socket` are not built.
//!
//! Call contract: create a peer with [`RtcPeer::new`], drain its event receiver
//! from a task of your own (the queue is bounded; events are dropped with a log
//! when it is full), forward [`RtcEvent::LocalCandidate`]s to the remote side
//! ([`RtcEvent::GatheringComplete`] follows the last one of an ICE generation,
//! for a side that waits to put them all in its description) and feed the
//! remote side's candidates to [`RtcPeer::add_remote_candidate`] in any order
//! relative to the descriptions.

//!
//! webrtc 0.17.2 facts this crate works around (each has a test):
//! - it never writes `a=max-message-size`, and refuses a local description that
//!   differs from the one it generated: the attribute is added to the SDP text we
//!   send, not to the local description;
//! - the callback message API reads into a 64 KiB buffer and closes the channel on
//!   anything larger: channels are detached and read with a 1 MiB + 64 KiB buffer;
//! - the SCTP receive window is a fixed 1 MiB, so a message above ~1 MiB can never
//!   be reassembled and stalls that direction (peers never send one: the limit is
//!   1 MiB both ways);
//! - an empty message reads like end-of-stream: a zero-length read ends the channel;
//! - a message over [`STALL_FREE_MESSAGE_SIZE`] (~85 KiB) can stall until the
//!   peer sends a packet (a lost wake-up in its pending queue): our senders keep
//!   below it;
//! - `send` can block inside the library (its pending queue is 128 KiB) and is not
//!   cancel-safe for large messages: the wait for room races a 5 s deadline, the
//!   write itself that deadline plus time for the message's size at a floor rate
//!   (a 1 MiB write must first push ~900 KiB through SCTP), and a timed-out write
//!   closes the channel;
//! - a peer-reflexive pair waits 1 s before it is accepted: loopback settings set
//!   that wait to zero, which takes connect from ~1 s to a few ms.
//! - its own sockets keep the system's default buffers (~208 KiB on Linux), which
//!   a 1 MiB message over loopback overflows (then SCTP waits ≥ 1 s per loss):
//!   loopback-only peers without a STUN server gather on our sockets instead,
//!   4 MiB each way, a fresh one per ICE generation (the library's own UDP mux
//!   keeps routing a restarted peer's packets to the closed generation).
//! - a trickled candidate whose address the agent already learned from a check
//!   (peer-reflexive) becomes a second, never-succeeding pair that outranks the
//!   working one, so nomination waits for the 200 ms check tick: remote host
//!   candidates get type preference 109 (below peer-reflexive 110, above
//!   server-reflexive 100); trickled connects of the product on loopback took
//!   ~210 ms in 5 of 12 runs before, 9–17 ms in 20 of 20 after.
//! - it moves each message through a chain of tasks on each side, and its
//!   SCTP write loop marshals every packet in `spawn_blocking` (~25 µs per
//!   packet there and back on a busy 2-core machine, about half of a small
//!   message's send path): its tasks run on one thread of their own (`stack`),
//!   which took a two-process 1-byte round trip from 236–292 µs to 173–202 µs
//!   at p50 (`tests/bench.rs`).

#![warn(missing_docs)]

mod chan_state;
#[cfg(not(feature = "sansio"))]
mod channel;
mod config;
mod dtls;
mod error;
mod event;
mod options;
#[cfg(not(feature = "sansio"))]
mod peer;
#[cfg(not(feature = "sansio"))]
mod prflx;
#[cfg(feature = "sansio")]
mod sansio;
mod sdp;
#[cfg(not(feature = "sansio"))]
mod setting_engine;
#[cfg(not(feature = "sansio"))]
mod socket;
mod stack;

#[cfg(not(feature = "sansio"))]
pub use channel::RtcChannel;
pub use config::{IceServer, RtcConfig};
pub use dtls::{
    DtlsFingerprints, FINGERPRINT_LEN, fingerprint_of_der, parse_fingerprint, sdp_fingerprints,
};
pub use error::RtcError;
pub use event::{Candidate, PeerState, RtcEvent};
pub use options::{ChannelOptions, FAST_COPY_LEAD};
#[cfg(not(feature = "sansio"))]
pub use peer::RtcPeer;
#[cfg(feature = "sansio")]
pub use sansio::{RtcChannel, RtcPeer};
pub use sdp::{MAX_MESSAGE_SIZE, parse_max_message_size};

/// Below this many buffered bytes a waiting sender is woken (spec peer-lifecycle §6).
pub const LOW_WATER_MARK: usize = 4096;
/// A send waits while more than this many bytes are buffered (512 KiB).
pub const HIGH_WATER_MARK: usize = 512 * 1024;
/// [`RtcChannel::try_send`] drops a message that would leave more than this
/// many bytes buffered on its channel (64 KiB).
pub const TRY_SEND_LIMIT: usize = 64 * 1024;
/// How long a send may wait for room (spec peer-lifecycle §6).
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The slowest transfer rate a write is given time for, on top of
/// [`SEND_TIMEOUT`]: a message larger than the library's 128 KiB pending queue
/// returns only once most of it has been transmitted, which for 1 MiB can take
/// seconds on a loaded machine (13 s allowed at this rate).
pub const MIN_WRITE_RATE_BYTES_PER_SEC: u64 = 128 * 1024;
/// The largest message webrtc-sctp 0.17.2 queues in one step (two thirds of its
/// 128 KiB pending queue, less one byte). A larger message is queued chunk by
/// chunk as that queue drains, and nothing wakes the SCTP sender for chunks
/// added after it last found the queue empty: once everything sent before is
/// acknowledged, the rest of the message waits for the next packet from the
/// peer, past [`SEND_TIMEOUT`] when the peer is silent. Two peers in one
/// process on a loaded 2-core machine, the receiver reading but sending
/// nothing: 200 and 300 KiB messages stalled past the deadline in 3 of 4 runs,
/// 64 and 85 KiB messages never (700 messages a run). Our senders stay at or
/// below this size (the host's `output` events are at most 64 KiB); only tests
/// of the host's limits send more, with the host streaming meanwhile.
pub const STALL_FREE_MESSAGE_SIZE: usize = 87_380;
/// Remote candidates held until the remote description is set; extra ones are dropped.
pub const MAX_PENDING_CANDIDATES: usize = 64;
/// The remote peer's max-message-size when its SDP does not advertise one (RFC 8841).
pub const DEFAULT_REMOTE_MAX_MESSAGE: usize = 65_536;
