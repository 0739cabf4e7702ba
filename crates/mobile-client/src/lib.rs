//! The phone side of muxlink in Rust: identity, pairing from a QR payload,
//! signaling, the WebRTC answerer and a typed async API for the terminal
//! protocol. Tests, the benchmark and the `muxlink-phone` viewer use it.
//!
//! Not a UI library and not a host: the terminal viewer is the `cli` module behind the `muxlink-phone` binary, and
//! the host side is `peer-manager` + `agent-bin`. WebRTC goes through
//! `rtc-transport` only.
//!
//! Layout:
//! - `identity`: [`PhoneIdentity`] (`signaling_client::Identity`), the Ed25519 key stored 0600.
//! - `store`: [`ConfigDir`] and [`PairingRecord`] (0600 JSON).
//! - `http`: runs `signaling_client::http` (signed calls, challenge → token) off the runtime.
//!   Every call and the socket use [`PhoneConfig::api_version`] (`--api-version`,
//!   `MUXLINK_API_VERSION`; default `v1`).
//! - `pairing`: [`pair`], pairing v2: the secret from the QR's host key and
//!   token, `POST /auth/pair/complete` with the confirmation MAC.
//! - `signaling`: [`Signaling`], the authenticated WebSocket (dialled by
//!   `signaling_client::ws::dial`, proxy environment included) with presence and routing.
//! - `connection`: [`PhoneConnection`], connect/answer, channel authentication v2
//!   (nothing is sent after our proof until the host's verifies) and the typed API;
//!   split into `connection::gather` (candidates trickled or in the answer: [`CandidateStyle`]),
//!   `connection::signal_pump`, `connection::handshake`,
//!   `connection::requests` and `connection::events` (the reader, which feeds
//!   `connection::stream`, the sans-IO stream v2 core). Stream v2
//!   (docs/stream-v2.md) is on by default ([`PhoneConfig::stream_v2`]): the
//!   fast channel after `auth_ok`, attach with offsets, numbered input sent
//!   first as fast copies, each output byte handed out once
//!   ([`StreamStats`]), and [`PhoneConnection::resume`] from an earlier
//!   connection's [`ResumePoint`].
//! - `misbehave`: [`Misbehave`], test-only deviations for hostile-peer tests.
//! - `client`: [`PhoneClient`], all of the above over one config directory.
//! - `cli`: [`cli::main_entry`], the `muxlink-phone` command line (the binary calls it);
//!   its viewer reconnects and resumes when the connection drops.
//! - `error`: [`ClientError`].
//!
//! Usage: `PhoneClient::open(config)?`, `pair(payload)` once, then
//! `let sig = client.signaling().await?; let conn = client.connect(sig).await?;`
//! and call `conn.list_sessions()`, `conn.attach(..)`, while a task drains
//! `conn.next_event()` (the event queue is bounded and pauses reading when full).

#![warn(missing_docs)]

pub mod cli;
mod client;
mod connection;
mod error;
mod http;
mod identity;
mod misbehave;
mod pairing;
mod signaling;
mod store;

pub use client::{PhoneClient, PhoneConfig};
pub use connection::{
    AttachOptions, Attachment, CandidateStyle, ConnectOptions, GATHER_LIMIT, INFLATE_FAILED,
    INVALID_EVENT, PhoneConnection, ResumePoint, StreamStats,
};
pub use error::ClientError;
pub use identity::PhoneIdentity;
pub use misbehave::{MacBehaviour, Misbehave};
pub use pairing::{ServerAccess, pair};
pub use rtc_transport::{PeerState, RtcConfig};
pub use signaling::{Signaling, SignalingOptions};
pub use store::{ConfigDir, PairingRecord};
pub use terminal_protocol::{Event, Request, Session};
