//! WebRTC peers of the host agent: admission, offer/answer, channel authentication, lifecycle.
//!
//! The host is always the offerer. [`PeerManager`] takes the signaling messages of
//! the host's signaling connection, admits the paired phone (peer-lifecycle.md §1),
//! creates a [`Peer`] with the ordered reliable DataChannel `terminal` through
//! `rtc-transport`, runs trickle ICE both ways, authenticates the channel on open
//! (terminal-protocol.md §12: the phone's proof over both nonces and both DTLS
//! fingerprints, then the host's own in `auth_ok`) and only then hands decoded requests to the
//! [`ProtocolHandler`], per peer, in arrival order, from a per-peer task.
//!
//! Not for: tmux, the meaning of requests (the handler's job), the signaling
//! socket itself (`signaling-client`), or naming `webrtc` (only `rtc-transport`).
//!
//! Layout:
//! - `admission` — pure `connect_request` rules: allowed device, secret, limit, reconnect.
//! - `auth_gate` — pure channel-authentication gate, direction gate, decode-error replies.
//! - `lifecycle` — pure per-peer timers: grace, ICE restart, watchdog, cleanup once.
//! - `candidates` — pure bounds on remote ICE candidates: 64 buffered before the
//!   answer, 64 added after it, per ICE round; extra ones dropped.
//! - `throttle` — pure per-phone `connect_request` rate (burst 6, then 1/s);
//!   requests over it are dropped with a log (the spec has no reason for them).
//! - `cleaner` — pure sweep rule and the periodic [`ConnectionCleaner`] task.
//! - `ice_servers` — TURN credential fetch, 10 min process-wide cache, STUN fallback.
//! - `peer` — [`Peer`]: send with backpressure and size limit, close.
//! - `manager` — [`PeerManager`]: routing, peer map with identity checks, `close_all`.
//! - `driver` — per-peer tokio tasks (control, reader, dispatcher) driving the cores.
//! - `handler`, `error` — the [`MessageSender`] / [`ProtocolHandler`] seams, errors.
//!
//! Core call contract (`Lifecycle`, `AuthGate`): feed every input with the current
//! `Instant` (and wall clock where asked), run the returned actions in order, then
//! sleep until `poll_timeout()` and call `handle_timeout(now)`; early calls are
//! harmless. Cores never read a clock. Terminal outcomes (cleanup, auth success or
//! failure) are reported exactly once.

#![warn(missing_docs)]

pub mod admission;
pub mod auth_gate;
pub mod candidates;
pub mod cleaner;
mod driver;
pub mod error;
mod handler;
pub mod ice_servers;
pub mod lifecycle;
mod manager;
mod peer;
pub mod throttle;

pub use cleaner::ConnectionCleaner;
pub use error::{PeerError, SendError};
pub use handler::{MessageSender, ProtocolHandler};
pub use manager::{DisconnectHook, JwtFn, NonceSource, PeerManager, SecretLoader};
pub use peer::Peer;
