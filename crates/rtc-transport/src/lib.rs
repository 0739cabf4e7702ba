//! The only wrapper of WebRTC in muxlink: peer connections, the "terminal"
//! DataChannel and the unordered, unreliable fast channel of stream v2,
//! trickle ICE queueing, sending with backpressure and without waiting. It
//! runs the `rtc` 0.21 sans-IO core (the protocol stack of the webrtc crate's
//! 0.21 line) with a driver of our own: one task per peer owns the core and
//! the peer's UDP sockets (docs/transport-sansio.md has the measurements
//! behind the move from `webrtc` 0.17.2).
//!
//! Both ends use it: the host (peer-manager, always the offerer) and the phone
//! (mobile-client, always the answerer). No other muxlink crate names the
//! WebRTC library, so a move to another one touches this crate alone.
//!
//! It is NOT a protocol crate: it moves opaque binary messages. Framing, key
//! possession and the terminal protocol live in `terminal-protocol` and its users.
//!
//! Layout:
//! - `config`: [`RtcConfig`] and [`IceServer`].
//! - `sansio`: [`RtcPeer`] and [`RtcChannel`] on the core: the peer handle,
//!   the driver task, host, STUN and TURN gathering (its own `mod.rs` lists
//!   the files).
//! - `chan_state`: a channel's lifecycle and its waits (open, close, room
//!   below the high-water mark).
//! - `options`: [`ChannelOptions`]: reliable and ordered, or fast (unordered,
//!   no retransmissions); either side may open a channel on a connected peer
//!   (SCTP announces it in band, no renegotiation). [`FAST_COPY_LEAD`]: how
//!   long a reliable original waits after its fast copy, since SCTP bundles
//!   every channel's queued chunks into one packet.
//! - `sdp`: small SDP text helpers (advertise and read `a=max-message-size`;
//!   outgoing SDP without candidate lines).
//! - `stack`: the "rtc-stack" thread, a current-thread runtime on which every
//!   peer's driver runs whatever runtime the caller uses.
//! - `dtls`: [`DtlsFingerprints`]: SHA-256 of our DTLS certificate and of the one
//!   the remote end presented, for channel authentication v2.
//! - `event`: [`RtcEvent`], [`Candidate`], [`PeerState`].
//! - `error`: [`RtcError`].
//!
//! Call contract: create a peer with [`RtcPeer::new`], drain its event receiver
//! from a task of your own (the queue is bounded; events are dropped with a log
//! when it is full), forward [`RtcEvent::LocalCandidate`]s to the remote side
//! ([`RtcEvent::GatheringComplete`] follows the last one of an ICE generation,
//! for a side that waits to put them all in its description) and feed the
//! remote side's candidates to [`RtcPeer::add_remote_candidate`] in any order
//! relative to the descriptions.
//!
//! Facts of the `rtc` 0.21.1 core this crate works around:
//! - it sends and reassembles messages of at most 256 KiB
//!   ([`MAX_TRANSPORT_MESSAGE`]), below the protocol's 1 MiB that the host
//!   advertises (spec peer-lifecycle §3): a larger send is refused before it
//!   reaches the core, and a larger received message is dropped by the core
//!   (spec terminal-protocol §13 allows a transport that cannot reassemble
//!   it). The product's messages are at most 64 KiB;
//! - it writes `a=max-message-size` (its own ceiling) and the local candidates
//!   it already has into every description: our outgoing SDP carries the
//!   protocol's 1 MiB and no candidate line (each is trickled once);
//! - its ICE checks run every 200 ms by default: ours every 10 ms, which opens
//!   a loopback channel one check after the offer;
//! - a peer-reflexive pair waits 1 s before it is nominated: zero for
//!   loopback-only peers;
//! - the system's default UDP buffers (~208 KiB) drop bursts: every socket of
//!   ours asks for 4 MiB each way;
//! - a channel the other side opened reports only `ordered`, not its
//!   `max_retransmits` (delivery follows the real options);
//! - the side that closes a channel answers the other side's reset of that
//!   stream with a second reset of its own, while the other side has already
//!   freed the stream id: a channel the other side opens on that id in the
//!   meantime is reset with it, or never opens. Only a phone that opens a
//!   channel right after the host refused one meets it (the product's phones
//!   open one fast channel, after `auth_ok`, and are never refused).

#![warn(missing_docs)]

mod chan_state;
mod config;
mod dtls;
mod error;
mod event;
mod options;
mod sansio;
mod sdp;
mod stack;

pub use config::{IceServer, RtcConfig};
pub use dtls::{
    DtlsFingerprints, FINGERPRINT_LEN, fingerprint_of_der, parse_fingerprint, sdp_fingerprints,
};
pub use error::RtcError;
pub use event::{Candidate, PeerState, RtcEvent};
pub use options::{ChannelOptions, FAST_COPY_LEAD};
pub use sansio::{RtcChannel, RtcPeer};
pub use sdp::{MAX_MESSAGE_SIZE, parse_max_message_size};

/// Below this many buffered bytes a waiting sender is woken (spec peer-lifecycle §6).
pub const LOW_WATER_MARK: usize = 4096;
/// A send waits while more than this many bytes are buffered (512 KiB).
pub const HIGH_WATER_MARK: usize = 512 * 1024;
/// [`RtcChannel::try_send`] drops a message that would leave more than this
/// many bytes buffered on its channel (64 KiB).
pub const TRY_SEND_LIMIT: usize = 64 * 1024;
/// How long a send may wait for room while the remote side acknowledges
/// nothing (spec peer-lifecycle §6; a slow reader that keeps acknowledging
/// bytes is waited for, see `chan_state::wait_for_room`).
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The largest message the core sends or reassembles (its fixed ceiling,
/// 256 KiB): a larger send fails with [`RtcError::TooLarge`] whatever the
/// remote side advertises.
pub const MAX_TRANSPORT_MESSAGE: usize =
    rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize::MAX_MESSAGE_SIZE
        as usize;
/// Remote candidates held until the remote description is set; extra ones are dropped.
pub const MAX_PENDING_CANDIDATES: usize = 64;
/// The remote peer's max-message-size when its SDP does not advertise one (RFC 8841).
pub const DEFAULT_REMOTE_MAX_MESSAGE: usize = 65_536;
